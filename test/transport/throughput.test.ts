// How many Raft messages per second one stream carries on loopback. The figure is printed, not asserted
// (figures belong to benchmarks); the test asserts that every message arrived, in order.
import { afterEach, describe, expect, it } from "vitest";
import { type Member, numbered, startMember, until } from "./harness.js";

const started: Member[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((m) => m.stop()));
});

describe("throughput", () => {
  it.each([
    ["heartbeats", 0],
    ["appends of 256 bytes", 256],
  ])("carries 20,000 %s over one stream, in order", async (_kind, size) => {
    const count = 20_000;
    const a = await startMember("a", { queueLimit: count });
    const b = await startMember("b");
    started.push(a, b);
    a.transport.addPeer("b", b.address);
    b.transport.addPeer("a", a.address);
    a.transport.send([numbered("a", "b", 0)]);
    await until("the stream is up", () => b.received.length === 1);

    const data = size > 0 ? new Uint8Array(size) : undefined;
    const began = performance.now();
    // Batches of 64, the way a Raft leader hands over the messages of one Ready.
    for (let n = 0; n < count; n += 64) {
      a.transport.send(
        Array.from({ length: Math.min(64, count - n) }, (_, i) => numbered("a", "b", n + i + 1, data)),
      );
      if (n % 4096 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await until("b got every message", () => b.received.length === count + 1, 60_000);
    const seconds = (performance.now() - began) / 1000;
    console.log(`transport: ${Math.round(count / seconds)} ${_kind}/s over one stream on loopback`);
    expect(b.received.slice(1).every((m, i) => m.commit === i + 1)).toBe(true);
  });
});
