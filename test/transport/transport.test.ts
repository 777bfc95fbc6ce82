// The transport over real sockets: grpc-js servers on 127.0.0.1, one Transport per member.
import { randomBytes } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { RaftService } from "../../src/gen/zsha/raft/v1/raft_pb.js";
import { Code, createClient, RpcError } from "../../src/grpc/index.js";
import { index, MessageType, message, nodeId, term } from "../../src/raft/index.js";
import { connectAll, type Member, type MemberOptions, numbered, startMember, until } from "./harness.js";

const started: Member[] = [];
async function member(id: string, options: MemberOptions = {}): Promise<Member> {
  const m = await startMember(id, options);
  started.push(m);
  return m;
}

afterEach(async () => {
  await Promise.all(started.splice(0).map((m) => m.stop()));
});

const commits = (m: Member, from: string) =>
  m.received.filter((x) => x.from === from).map((x) => x.commit as number);
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

/** Opens a raw stream to `address`, says `hello`, and returns the status the server ends it with. */
async function refusal(address: string, hello: { from: string; to: string; clusterId: string }) {
  const client = createClient(RaftService, address, grpc.credentials.createInsecure());
  try {
    const call = client.stream({ deadlineMs: 5_000 });
    await call.send({ frame: { case: "hello", value: hello } });
    await call.send({
      frame: { case: "message", value: { type: "Heartbeat", from: hello.from, to: hello.to } },
    });
    for await (const _ of call.responses) {
      // Refused streams answer nothing before their status.
    }
    return undefined;
  } catch (err) {
    return err;
  } finally {
    client.close();
  }
}

describe("Transport", () => {
  it("carries messages between three members, in order per sender", async () => {
    const ms = [await member("a"), await member("b"), await member("c")];
    connectAll(ms);
    for (let n = 0; n < 500; n++) {
      for (const from of ms) {
        from.transport.send(ms.filter((to) => to !== from).map((to) => numbered(from.id, to.id, n)));
      }
    }
    for (const to of ms) {
      await until(`${to.id} got 1000 messages`, () => to.received.length === 1000);
      for (const from of ms) if (from !== to) expect(commits(to, from.id)).toEqual(range(0, 500));
    }
    expect(ms.flatMap((m) => m.unreachable)).toEqual([]);
  });

  it("reconnects to a restarted peer; messages sent while it was down wait in the queue", async () => {
    const a = await member("a");
    let b = await member("b");
    const port = Number(b.address.split(":")[1]);
    a.transport.addPeer("b", b.address);
    b.transport.addPeer("a", a.address);
    a.transport.send([numbered("a", "b", 1)]);
    await until("b got the first message", () => b.received.length === 1);

    await b.stop();
    await until("a noticed b is down", () => a.unreachable.includes(nodeId("b")));
    a.transport.send(range(2, 12).map((n) => numbered("a", "b", n)));
    expect(a.transport.stats().get(nodeId("b"))?.queued).toBe(10);

    b = await member("b", { port });
    b.transport.addPeer("a", a.address);
    await until("the restarted b got the queued messages", () => b.received.length === 10);
    expect(commits(b, "a")).toEqual(range(2, 12));
    a.transport.send([numbered("a", "b", 12)]);
    await until("b got a new message", () => b.received.length === 11);
    expect(a.transport.stats().get(nodeId("b"))?.connected).toBe(true);
  });

  it("drops new messages when a peer's queue is full and reports the peer unreachable", async () => {
    const a = await member("a", { queueLimit: 5 });
    // A peer that never answers: nothing listens at this address.
    const b = await member("b");
    const address = b.address;
    await b.stop();
    a.transport.addPeer("b", address);
    a.transport.send(range(0, 8).map((n) => numbered("a", "b", n)));
    const stats = a.transport.stats().get(nodeId("b"));
    expect(stats?.queued).toBe(5);
    expect(stats?.dropped).toBe(3);
    expect(a.unreachable).toContain(nodeId("b"));
    expect(a.logs.some((l) => l.event === "transport.queue_full")).toBe(true);

    // The oldest five are kept: once the peer comes up, they arrive, and nothing else.
    const late = await member("b", { port: Number(address.split(":")[1]) });
    late.transport.addPeer("a", a.address);
    await until("b got the queued messages", () => late.received.length === 5);
    expect(commits(late, "a")).toEqual(range(0, 5));
  });

  it("sends a 3 MiB snapshot in chunks, reassembled exactly and acknowledged", async () => {
    const a = await member("a", { snapshotChunkBytes: 256 * 1024 });
    const b = await member("b");
    connectAll([a, b]);
    const data = new Uint8Array(randomBytes(3 * 1024 * 1024));
    const snap = message({
      type: MessageType.Snap,
      from: a.id,
      to: b.id,
      term: term(3),
      snapshot: {
        meta: { index: index(777), term: term(2), confState: { voters: [a.id, b.id], learners: [] } },
        data,
      },
    });
    a.transport.send([numbered("a", "b", 1), snap, numbered("a", "b", 2)]);
    await until("b got the snapshot and the message after it", () => b.received.length === 3);
    const got = b.received[1];
    expect(got?.type).toBe(MessageType.Snap);
    expect(got?.snapshot?.meta).toEqual(snap.snapshot?.meta);
    expect(Buffer.from(got?.snapshot?.data ?? []).equals(Buffer.from(data))).toBe(true);
    expect(commits(b, "a")).toEqual([1, 0, 2]);
    await until("a heard the ack", () => a.snapshotStatus.length === 1);
    expect(a.snapshotStatus).toEqual([{ peer: b.id, ok: true }]);
  });

  it("reports a snapshot failed when the receiver refuses its size", async () => {
    const a = await member("a");
    const b = await member("b", { maxSnapshotBytes: 1024 * 1024 });
    connectAll([a, b]);
    const snap = message({
      type: MessageType.Snap,
      from: a.id,
      to: b.id,
      snapshot: {
        meta: { index: index(5), term: term(1), confState: { voters: [], learners: [] } },
        data: new Uint8Array(2 * 1024 * 1024),
      },
    });
    a.transport.send([snap]);
    await until("a heard the snapshot failed", () => a.snapshotStatus.length === 1);
    expect(a.snapshotStatus).toEqual([{ peer: b.id, ok: false }]);
    expect(b.received).toEqual([]);
    // The stream comes back for what follows.
    a.transport.send([numbered("a", "b", 9)]);
    await until("b got the next message", () => b.received.length === 1);
  });

  it("drops a message over maxMessageBytes with a warning, and keeps the stream", async () => {
    const a = await member("a", { maxMessageBytes: 256 * 1024, snapshotChunkBytes: 64 * 1024 });
    const b = await member("b");
    connectAll([a, b]);
    a.transport.send([
      numbered("a", "b", 1, new Uint8Array(1000)),
      numbered("a", "b", 2, new Uint8Array(300 * 1024)),
      numbered("a", "b", 3, new Uint8Array(1000)),
    ]);
    await until("b got the two small messages", () => b.received.length === 2);
    expect(commits(b, "a")).toEqual([1, 3]);
    expect(a.transport.stats().get(b.id)?.oversized).toBe(1);
    expect(a.logs.find((l) => l.event === "transport.message_too_large")?.level).toBe("warn");
    expect(a.unreachable).toEqual([]);
  });

  it("refuses a stream from another cluster, to another member, or from an unknown peer", async () => {
    const b = await member("b");
    b.transport.addPeer("a", "127.0.0.1:1");
    const wrongCluster = await refusal(b.address, { from: "a", to: "b", clusterId: "other-cluster" });
    expect(wrongCluster).toBeInstanceOf(RpcError);
    expect((wrongCluster as RpcError).code).toBe(Code.FAILED_PRECONDITION);
    expect((wrongCluster as RpcError).message).toBe(
      "cluster id 'other-cluster' of the caller is not this member's cluster 'test-cluster'",
    );
    const wrongMember = await refusal(b.address, { from: "a", to: "c", clusterId: "test-cluster" });
    expect((wrongMember as RpcError).code).toBe(Code.FAILED_PRECONDITION);
    const stranger = await refusal(b.address, { from: "x", to: "b", clusterId: "test-cluster" });
    expect((stranger as RpcError).code).toBe(Code.NOT_FOUND);
    expect(b.received).toEqual([]);

    // Through a Transport: a member of another cluster never gets its messages in.
    const other = await member("a", { clusterId: "other-cluster" });
    other.transport.addPeer("b", b.address);
    other.transport.send([numbered("a", "b", 1)]);
    await until("the refusal was logged", () =>
      b.logs.some(
        (l) => l.event === "transport.stream_refused" && (l.fields as { peer?: string }).peer === "a",
      ),
    );
    expect(b.received).toEqual([]);
  });

  const hello = { case: "hello" as const, value: { from: "a", to: "b", clusterId: "test-cluster" } };
  const heartbeat = { case: "message" as const, value: { type: "Heartbeat", from: "a", to: "b" } };
  const firstChunk = {
    case: "snapshotChunk" as const,
    value: {
      message: { type: "Snap", from: "a", to: "b", snapshotMeta: { index: 3n, term: 1n } },
      offset: 0n,
      data: new Uint8Array(4),
      totalSize: 8n,
    },
  };
  it.each([
    [
      "an undecodable message",
      [hello, { ...heartbeat, value: { ...heartbeat.value, type: "NoSuchType" } }],
      "unknown message type 'NoSuchType'",
    ],
    [
      "a message for another member",
      [hello, { ...heartbeat, value: { ...heartbeat.value, to: "c" } }],
      "a message from 'a' to 'c' arrived on the stream from 'a' to 'b'",
    ],
    [
      "a message in the middle of a snapshot",
      [hello, firstChunk, heartbeat],
      "a message arrived in the middle of a snapshot",
    ],
    ["a second hello", [hello, hello], "a second hello arrived on the stream"],
    ["no hello first", [heartbeat], "the first frame of a peer stream must be a hello"],
  ])("ends a stream that carries %s with INVALID_ARGUMENT", async (_case, frames, sentence) => {
    const b = await member("b");
    b.transport.addPeer("a", "127.0.0.1:1");
    const client = createClient(RaftService, b.address, grpc.credentials.createInsecure());
    try {
      const call = client.stream({ deadlineMs: 5_000 });
      for (const frame of frames) await call.send({ frame });
      const err = await (async () => {
        try {
          for await (const _ of call.responses) {
            // No response is expected before the status.
          }
        } catch (e) {
          return e;
        }
      })();
      expect((err as RpcError).code).toBe(Code.INVALID_ARGUMENT);
      expect((err as RpcError).message).toBe(sentence);
    } finally {
      client.close();
    }
    expect(b.received).toEqual([]);
    expect(b.logs.some((l) => l.level === "warn" && /stream_(broken|refused)/.test(l.event))).toBe(true);
  });

  it("ends a removed peer's stream and refuses it from then on", async () => {
    const a = await member("a");
    const b = await member("b");
    connectAll([a, b]);
    a.transport.send([numbered("a", "b", 1)]);
    await until("b got the first message", () => b.received.length === 1);
    await b.transport.removePeer("a");
    expect(b.transport.stats().has(a.id)).toBe(false);
    await until("a's new stream was refused", () =>
      b.logs.some(
        (l) => l.event === "transport.stream_refused" && (l.fields as { peer?: string }).peer === "a",
      ),
    );
    a.transport.send([numbered("a", "b", 2)]);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(commits(b, "a")).toEqual([1]);
    expect(a.unreachable).toContain(b.id);
  });

  it("close() ends the streams both ways, so the server shuts down at once", async () => {
    const a = await member("a");
    const b = await member("b");
    connectAll([a, b]);
    a.transport.send([numbered("a", "b", 1)]);
    b.transport.send([numbered("b", "a", 1)]);
    await until("both streams carry", () => a.received.length === 1 && b.received.length === 1);
    const began = Date.now();
    await b.stop();
    expect(Date.now() - began).toBeLessThan(1_000);
    expect(b.transport.stats().size).toBe(0);
    expect(() => b.transport.addPeer("c", "127.0.0.1:1")).toThrow("the transport is closed");
  });

  it("never throws in send(): unknown peers and local messages are dropped", async () => {
    const a = await member("a");
    expect(() =>
      a.transport.send([numbered("a", "nobody", 1), message({ type: MessageType.Hup, to: nodeId("a") })]),
    ).not.toThrow();
  });

  it("follows a peer to its new address", async () => {
    const a = await member("a");
    const b1 = await member("b");
    const b2 = await member("b");
    a.transport.addPeer("b", b1.address);
    // Only a dials: two members named b dialing a would take turns replacing each other's stream.
    b1.transport.addPeer("a", "127.0.0.1:1");
    b2.transport.addPeer("a", "127.0.0.1:1");
    a.transport.send([numbered("a", "b", 1)]);
    await until("the first b got a message", () => b1.received.length === 1);
    a.transport.updatePeer("b", b2.address);
    a.transport.send([numbered("a", "b", 2)]);
    await until("the second b got a message", () => b2.received.length === 1);
    expect(commits(b2, "a")).toEqual([2]);
  });
});
