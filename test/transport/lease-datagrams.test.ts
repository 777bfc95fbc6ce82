// Lease renewals by datagram over real UDP sockets on loopback: answers, MAC checks, replays, and a relay
// that loses datagrams (the owner's re-sends must get one through).

import { randomBytes } from "node:crypto";
import { createSocket, type Socket } from "node:dgram";
import { afterEach, describe, expect, it } from "vitest";
import { LeaseDatagramServer } from "../../src/api/lease-datagrams.js";
import {
  decodeReply,
  decodeRequest,
  encodeReply,
  encodeRequest,
  LeaseDatagramClient,
} from "../../src/client/lease-datagrams.js";

const KEY = randomBytes(32);
const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0)) await f();
});

async function server(renew: (id: bigint) => Promise<number | undefined>, key: Uint8Array | null = KEY) {
  const s = await LeaseDatagramServer.listen({ listen: "127.0.0.1:0", renew });
  if (key) s.setKey(key);
  cleanup.push(() => s.close());
  return s;
}

function client(targets: string[], key: Uint8Array | null = KEY, resendMs = 50) {
  const c = new LeaseDatagramClient({ targets: () => targets, key: () => key ?? undefined, resendMs });
  cleanup.push(() => c.close());
  return c;
}

async function udp(): Promise<Socket> {
  const s = createSocket("udp4");
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
  cleanup.push(() => s.close());
  return s;
}

describe("lease datagram codec", () => {
  it("round-trips and refuses a datagram under another key or with any byte changed", () => {
    const req = {
      session: randomBytes(8),
      seq: 7,
      sentAtWallMs: 1_700_000_000_123,
      leaseId: 0x1234_5678_9abcn,
    };
    const msg = encodeRequest(KEY, req);
    expect(decodeRequest(KEY, msg)).toEqual(req);
    expect(decodeRequest(randomBytes(32), msg)).toBeUndefined();
    for (let i = 0; i < msg.length; i++) {
      const bad = Buffer.from(msg);
      bad[i] = bad[i]! ^ 1;
      expect(decodeRequest(KEY, bad), `byte ${i}`).toBeUndefined();
    }
    const rep = { session: req.session, seq: 7, ttl: 5 };
    expect(decodeReply(KEY, encodeReply(KEY, rep))).toEqual(rep);
    // A request is never taken for a reply, or the other way round.
    expect(decodeReply(KEY, msg)).toBeUndefined();
    expect(decodeRequest(KEY, encodeReply(KEY, rep))).toBeUndefined();
  });
});

describe("lease renewals by datagram", () => {
  it("renews through a member and resolves with the TTL it granted; 0 when the lease is gone", async () => {
    const seen: bigint[] = [];
    const s = await server(async (id) => {
      seen.push(id);
      return id === 42n ? 5 : 0;
    });
    const c = client([`127.0.0.1:${s.port}`]);
    expect(await c.keepAlive(42n, { deadlineMs: 2000 })).toBe(5n);
    expect(await c.keepAlive(43n, { deadlineMs: 2000 })).toBe(0n);
    expect(seen).toEqual([42n, 43n]);
  });

  it("the first member to answer wins; one that cannot tell (no leader) stays silent", async () => {
    const silent = await server(async () => undefined);
    const answering = await server(async () => 5);
    const c = client([`127.0.0.1:${silent.port}`, `127.0.0.1:${answering.port}`]);
    expect(await c.keepAlive(1n, { deadlineMs: 2000 })).toBe(5n);
  });

  it("a member under another key renews nothing and the renewal fails at its deadline", async () => {
    let renewed = 0;
    const s = await server(async () => {
      renewed++;
      return 5;
    }, randomBytes(32));
    const c = client([`127.0.0.1:${s.port}`]);
    await expect(c.keepAlive(1n, { deadlineMs: 300 })).rejects.toThrow(/no member answered .* within 300 ms/);
    expect(renewed).toBe(0);
  });

  it("a member without the key yet ignores requests; a client without it fails at once", async () => {
    let renewed = 0;
    const s = await server(async () => {
      renewed++;
      return 5;
    }, null);
    await expect(client([`127.0.0.1:${s.port}`]).keepAlive(1n, { deadlineMs: 300 })).rejects.toThrow(
      /no member answered/,
    );
    expect(renewed).toBe(0);
    await expect(client([`127.0.0.1:${s.port}`], null).keepAlive(1n, { deadlineMs: 300 })).rejects.toThrow(
      /no lease renewal key known yet/,
    );
  });

  it("a replayed or stale request renews nothing", async () => {
    let renewed = 0;
    const s = await server(async () => {
      renewed++;
      return 5;
    });
    const sock = await udp();
    const replies: Buffer[] = [];
    sock.on("message", (m) => replies.push(m));
    const session = randomBytes(8);
    const fresh = encodeRequest(KEY, { session, seq: 10, sentAtWallMs: Date.now(), leaseId: 9n });
    const send = (m: Buffer) => new Promise<void>((r) => sock.send(m, s.port, "127.0.0.1", () => r()));
    await send(fresh);
    await expect.poll(() => replies.length).toBe(1);
    expect(decodeReply(KEY, replies[0]!)).toEqual({ session, seq: 10, ttl: 5 });
    await send(fresh); // the same datagram again
    await send(encodeRequest(KEY, { session, seq: 9, sentAtWallMs: Date.now(), leaseId: 9n })); // an older one
    await send(
      encodeRequest(KEY, { session: randomBytes(8), seq: 1, sentAtWallMs: Date.now() - 60_000, leaseId: 9n }),
    );
    await send(encodeRequest(KEY, { session, seq: 11, sentAtWallMs: Date.now(), leaseId: 9n })); // a new one
    await expect.poll(() => replies.length).toBe(2);
    await new Promise((r) => setTimeout(r, 100));
    expect(renewed).toBe(2);
    expect(replies.length).toBe(2);
  });

  it("re-sends until a datagram gets through a relay that loses the first ones each way", async () => {
    let renewed = 0;
    const s = await server(async () => {
      renewed++;
      return 5;
    });
    // A relay between client and member that drops the first 3 requests and the first 2 replies.
    const relay = await udp();
    let clientAddr: { address: string; port: number } | undefined;
    let requests = 0;
    let replies = 0;
    relay.on("message", (m, from) => {
      if (from.port === s.port) {
        if (++replies > 2 && clientAddr) relay.send(m, clientAddr.port, clientAddr.address);
      } else {
        clientAddr = from;
        if (++requests > 3) relay.send(m, s.port, "127.0.0.1");
      }
    });
    const c = client([`127.0.0.1:${relay.address().port}`]);
    expect(await c.keepAlive(5n, { deadlineMs: 3000 })).toBe(5n);
    expect(requests).toBeGreaterThanOrEqual(6);
    expect(renewed).toBeGreaterThanOrEqual(3);
  });
});
