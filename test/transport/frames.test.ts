// Snapshot chunking and reassembly, and the message size bound that spares most messages an extra encoding.
import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { messageToProto } from "../../src/codec/raft.js";
import * as pb from "../../src/gen/zsha/raft/v1/raft_pb.js";
import { Code, RpcError } from "../../src/grpc/index.js";
import { index, type Message, MessageType, message, nodeId, term } from "../../src/raft/index.js";
import { exactSize, SnapshotAssembly, sizeBound, snapshotFrames } from "../../src/transport/frames.js";

function snap(data: Uint8Array): Message {
  return message({
    type: MessageType.Snap,
    from: nodeId("a"),
    to: nodeId("b"),
    term: term(4),
    snapshot: {
      meta: { index: index(10), term: term(3), confState: { voters: [nodeId("a")], learners: [] } },
      data,
    },
  });
}

const chunksOf = (m: Message, size: number) =>
  [...snapshotFrames(m, size)].map((f) => create(pb.StreamRequestSchema, f).frame.value as pb.SnapshotChunk);

function chunk(fields: {
  offset: number;
  data?: Uint8Array;
  last?: boolean;
  total: number;
  first?: boolean;
}) {
  return create(pb.SnapshotChunkSchema, {
    ...(fields.first ? { message: messageToProto(snap(new Uint8Array(fields.total))) } : {}),
    offset: BigInt(fields.offset),
    data: fields.data ?? new Uint8Array(0),
    last: fields.last ?? false,
    totalSize: BigInt(fields.total),
  });
}

function refusal(step: () => unknown): RpcError {
  try {
    step();
  } catch (err) {
    expect(err).toBeInstanceOf(RpcError);
    return err as RpcError;
  }
  throw new Error("expected the chunk to be refused");
}

describe("snapshotFrames", () => {
  it("cuts the data at the chunk size, the message on the first chunk only, last on the last", () => {
    const data = Uint8Array.from({ length: 10 }, (_, i) => i);
    const chunks = chunksOf(snap(data), 4);
    expect(chunks.map((c) => [Number(c.offset), c.data.length, c.last, c.message !== undefined])).toEqual([
      [0, 4, false, true],
      [4, 4, false, false],
      [8, 2, true, false],
    ]);
    expect(chunks.every((c) => c.totalSize === 10n)).toBe(true);
  });

  it("sends an empty snapshot as one last chunk", () => {
    const chunks = chunksOf(snap(new Uint8Array(0)), 4);
    expect(chunks).toHaveLength(1);
    expect(chunks[0]?.last).toBe(true);
    const whole = new SnapshotAssembly(100).add(chunks[0] as pb.SnapshotChunk);
    expect(whole?.data).toEqual(new Uint8Array(0));
  });
});

describe("SnapshotAssembly", () => {
  it("puts the chunks back together exactly", () => {
    const data = Uint8Array.from({ length: 1000 }, (_, i) => (i * 7) % 256);
    const assembly = new SnapshotAssembly(1000);
    const results = chunksOf(snap(data), 64).map((c) => assembly.add(c));
    expect(results.slice(0, -1).every((r) => r === undefined)).toBe(true);
    expect(results.at(-1)?.data).toEqual(data);
    expect(results.at(-1)?.message.type).toBe("Snap");
    expect(assembly.busy).toBe(false);
  });

  it("refuses a snapshot over its limit before allocating it", () => {
    const err = refusal(() => new SnapshotAssembly(100).add(chunk({ offset: 0, total: 101, first: true })));
    expect(err.code).toBe(Code.RESOURCE_EXHAUSTED);
    expect(err.message).toBe("the snapshot of 101 bytes is over this member's limit of 100 bytes");
  });

  it("refuses chunks out of order, overlapping, past the end, or without a start", () => {
    const started = () => {
      const a = new SnapshotAssembly(100);
      a.add(chunk({ offset: 0, data: new Uint8Array(10), total: 20, first: true }));
      return a;
    };
    expect(refusal(() => new SnapshotAssembly(100).add(chunk({ offset: 0, total: 20 }))).message).toBe(
      "a snapshot chunk at offset 0 arrived without a snapshot in progress",
    );
    expect(
      refusal(() => new SnapshotAssembly(100).add(chunk({ offset: 5, total: 20, first: true }))).message,
    ).toBe("the first snapshot chunk starts at offset 5, not 0");
    expect(refusal(() => started().add(chunk({ offset: 12, total: 20 }))).message).toBe(
      "snapshot chunk offset 12 does not follow the 10 bytes received",
    );
    expect(refusal(() => started().add(chunk({ offset: 5, total: 20 }))).message).toBe(
      "snapshot chunk offset 5 does not follow the 10 bytes received",
    );
    expect(
      refusal(() => started().add(chunk({ offset: 10, data: new Uint8Array(11), total: 20 }))).message,
    ).toBe("snapshot chunk at offset 10 runs past the announced 20 bytes");
    expect(refusal(() => started().add(chunk({ offset: 10, last: true, total: 20 }))).message).toBe(
      "the last snapshot chunk ended at 10 of 20 bytes",
    );
    expect(refusal(() => started().add(chunk({ offset: 10, total: 30 }))).message).toBe(
      "snapshot chunks disagree on the snapshot's total size",
    );
    expect(refusal(() => started().add(chunk({ offset: 10, total: 20, first: true }))).message).toBe(
      "a new snapshot started before the previous one's last chunk",
    );
    expect(refusal(() => started().add(chunk({ offset: 10, total: 20, first: true }))).code).toBe(
      Code.INVALID_ARGUMENT,
    );
  });
});

describe("sizeBound", () => {
  it("is never below the exact encoded size (random messages, wide varints, non-ASCII ids)", () => {
    // mulberry32: small, seeded, and its low bits are as random as its high ones.
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) % n;
    };
    const big = () => rand(2) * (Number.MAX_SAFE_INTEGER - rand(1000));
    let tightest = Number.POSITIVE_INFINITY;
    for (let i = 0; i < 2000; i++) {
      const id = (s: string) => nodeId(rand(2) ? s : `${s}-ü€😀`.repeat(1 + rand(3)));
      const m = message({
        type: Object.values(MessageType)[rand(14) + 5] as MessageType,
        from: id("node-a"),
        to: id("node-b"),
        term: term(big()),
        logTerm: term(big()),
        index: index(big()),
        commit: index(big()),
        reject: rand(2) === 1,
        rejectHint: index(big()),
        context: new Uint8Array(rand(40)),
        entries: Array.from({ length: rand(5) }, () => ({
          term: term(big()),
          index: index(big()),
          type: rand(2),
          data: new Uint8Array(rand(300)),
        })),
      });
      const { snapshot: _, ...plain } = m;
      const exact = exactSize(plain);
      expect(sizeBound(plain)).toBeGreaterThanOrEqual(exact);
      tightest = Math.min(tightest, sizeBound(plain) - exact);
    }
    // The bound is not slack for nothing: some message comes within 160 bytes of it.
    expect(tightest).toBeLessThan(160);
  });
});
