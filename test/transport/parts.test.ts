// The transport's small parts: reconnect backoff, the per-peer queue, option checks, certificate names.
import { describe, expect, it } from "vitest";
import { Backoff } from "../../src/transport/backoff.js";
import { TransportConfigError } from "../../src/transport/index.js";
import { settings } from "../../src/transport/options.js";
import { BoundedQueue } from "../../src/transport/queue.js";
import { certificateNames, identityError } from "../../src/transport/tls.js";

describe("Backoff", () => {
  it("doubles from the initial delay up to the maximum, and starts over after reset", () => {
    const b = new Backoff({ initialMs: 50, maxMs: 2_000, jitter: 0 });
    expect(Array.from({ length: 8 }, () => b.next())).toEqual([50, 100, 200, 400, 800, 1600, 2000, 2000]);
    b.reset();
    expect(b.next()).toBe(50);
  });

  it("spreads each delay by the jitter, never beyond the maximum", () => {
    const low = new Backoff({ initialMs: 100, maxMs: 1_000, jitter: 0.2 }, () => 0);
    const high = new Backoff({ initialMs: 100, maxMs: 1_000, jitter: 0.2 }, () => 0.999999);
    expect([low.next(), high.next()]).toEqual([90, 110]);
    for (let i = 0; i < 10; i++) high.next();
    expect(high.next()).toBe(1_000);
  });
});

describe("BoundedQueue", () => {
  it("keeps order, refuses beyond its limit, and stays in order across compaction", () => {
    const q = new BoundedQueue<number>(3000);
    for (let i = 0; i < 3000; i++) expect(q.push(i)).toBe(true);
    expect(q.push(3000)).toBe(false);
    const out: number[] = [];
    for (let i = 0; i < 2000; i++) out.push(q.shift() as number);
    for (let i = 3000; i < 5000; i++) q.push(i);
    for (let v = q.shift(); v !== undefined; v = q.shift()) out.push(v);
    expect(out).toEqual(Array.from({ length: 5000 }, (_, i) => i));
    expect(q.length).toBe(0);
  });
});

describe("settings", () => {
  const base = { selfId: "a", clusterId: "c", onMessage: () => {} };
  it("fills in the defaults", () => {
    expect(settings(base)).toEqual({
      maxMessageBytes: 4 * 1024 * 1024,
      snapshotChunkBytes: 512 * 1024,
      maxSnapshotBytes: 1024 * 1024 * 1024,
      queueLimit: 4096,
      keepaliveMs: 10_000,
      backoff: { initialMs: 50, maxMs: 2_000, jitter: 0.2 },
    });
  });

  it.each([
    [{ selfId: "" }, "selfId must be a non-empty member id"],
    [{ clusterId: "" }, "clusterId must be a non-empty string"],
    [{ queueLimit: 0 }, "queueLimit must be a positive integer, got 0"],
    [{ maxMessageBytes: 1.5 }, "maxMessageBytes must be a positive integer, got 1.5"],
    [
      { maxMessageBytes: 512 * 1024 },
      "snapshotChunkBytes (524288) must leave 65536 bytes of room under maxMessageBytes (524288)",
    ],
    [{ backoff: { initialMs: 100, maxMs: 10 } }, "backoff.maxMs must not be below backoff.initialMs"],
    [{ backoff: { jitter: 2 } }, "backoff.jitter must be between 0 and 1, got 2"],
  ])("refuses %j", (bad, sentence) => {
    expect(() => settings({ ...base, ...bad })).toThrow(new TransportConfigError(sentence));
  });
});

describe("certificate names", () => {
  const cert = (cn: unknown, san?: string) => ({ subject: { CN: cn }, subjectaltname: san }) as never;
  it("reads the CN and the DNS subjectAltNames, nothing else", () => {
    expect(certificateNames(cert("m1", "DNS:m1.example, IP Address:10.0.0.1, DNS:m1"))).toEqual([
      "m1",
      "m1.example",
      "m1",
    ]);
    expect(certificateNames(cert(["x", "y"]))).toEqual(["x", "y"]);
    expect(identityError(cert("m2", "IP Address:10.0.0.1"), "10.0.0.1")?.message).toBe(
      "the certificate names m2, not 10.0.0.1",
    );
    expect(identityError(undefined, "m1")?.message).toBe("no certificate was presented for m1");
    expect(identityError(cert("m1"), "m1")).toBeUndefined();
  });
});
