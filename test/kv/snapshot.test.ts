// Snapshots: restore(snapshot()) behaves exactly like the original, mid-history and after compaction;
// installing keeps watches going; malformed snapshots are refused; same commands give the same bytes.
import { create, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { StateSnapshotSchema, StoredLeaseSchema } from "../../src/gen/zsha/kv/v1/command_pb.js";
import { KeyValueSchema } from "../../src/gen/zsha/kv/v1/kv_pb.js";
import { Code, KvError, KvStore, revision } from "../../src/kv/index.js";
import { index } from "../../src/raft/index.js";
import {
  b,
  cmp,
  compact,
  Driver,
  del,
  expire,
  grant,
  type Op,
  opDel,
  opPut,
  opRange,
  put,
  R,
  rangeReq,
  recorder,
  revoke,
  txn,
} from "./support.js";

/** A deterministic pseudo-random command stream over a small key space (mulberry32). */
function commands(seed: number, n: number): Op[] {
  let a = seed >>> 0;
  const rnd = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
  const keys = ["a", "a/1", "a/2", "b", "b/x", "c"];
  const ops: Op[] = [];
  for (let i = 0; i < n; i++) {
    const lease = rnd() < 0.3 ? BigInt(1 + Math.floor(rnd() * 4)) : 0n;
    const k = pick(keys);
    const choice = rnd();
    if (choice < 0.4) ops.push(put(k, `v${i}`, { lease, prevKv: rnd() < 0.5 }));
    else if (choice < 0.55) ops.push(del(k, { prefix: rnd() < 0.5 }));
    else if (choice < 0.7)
      ops.push(
        txn(
          [
            cmp(k, pick([R.EQUAL, R.GREATER, R.LESS]), {
              case: "version",
              value: BigInt(Math.floor(rnd() * 3)),
            }),
          ],
          [opPut(pick(keys), `t${i}`, lease), opRange("a", true)],
          [opDel(pick(keys), true)],
        ),
      );
    else if (choice < 0.8) ops.push(grant(5 + Math.floor(rnd() * 20)));
    else if (choice < 0.87) ops.push(revoke(BigInt(1 + Math.floor(rnd() * 4))));
    else if (choice < 0.93) ops.push(expire(BigInt(1 + Math.floor(rnd() * 4))));
    else ops.push(compact(Math.max(1, i - Math.floor(rnd() * 10))));
  }
  return ops;
}

const outcome = (d: Driver, op: Op) => {
  const r = d.apply(op);
  return r.ok
    ? { ok: true, rev: r.revision, response: r.response }
    : { ok: false, rev: r.revision, err: r.error.message };
};

describe("snapshot", () => {
  it("two stores applying the same commands produce byte-identical snapshots, step by step", () => {
    for (const seed of [1, 2, 3]) {
      const x = new Driver();
      const y = new Driver();
      for (const op of commands(seed, 300)) {
        expect(outcome(x, op)).toEqual(outcome(y, op));
      }
      expect(Buffer.from(x.store.snapshot()).equals(Buffer.from(y.store.snapshot()))).toBe(true);
      expect(x.store.revision).toBeGreaterThan(50);
    }
  });

  it("restore(snapshot()) mid-history behaves identically from there on", () => {
    const ops = commands(7, 400);
    const original = new Driver();
    for (const op of ops.slice(0, 200)) original.apply(op);
    const copy = new Driver(
      KvStore.restore(original.store.snapshot(), { appliedIndex: original.store.appliedIndex }),
    );
    expect(copy.store.snapshot()).toEqual(original.store.snapshot());
    for (const op of ops.slice(200)) expect(outcome(copy, op)).toEqual(outcome(original, op));
    expect(copy.store.snapshot()).toEqual(original.store.snapshot());
    expect(copy.store.range(rangeReq("", { prefix: true }))).toEqual(
      original.store.range(rangeReq("", { prefix: true })),
    );
  });

  it("carries revision, compact revision, versions, leases, next lease id, history and member addresses", () => {
    const d = new Driver();
    const l = d.grant(30);
    d.ok(put("k", "1"));
    d.ok(put("k", "2", { lease: l }));
    d.ok(put("j", "1"));
    d.ok(compact(2));
    d.ok(put("k", "3", { lease: l }));
    d.store.memberAddresses = { n2: "10.0.0.2:2380", n1: "10.0.0.1:2380" };
    const r = KvStore.restore(d.store.snapshot());
    expect([r.revision, r.compactRevision, r.nextLeaseId]).toEqual([4, 2, 2n]);
    expect(r.get(b("k"))).toEqual(d.kv("k"));
    expect(r.lease(l)?.keys).toEqual([b("k")]);
    expect(r.memberAddresses).toEqual({ n1: "10.0.0.1:2380", n2: "10.0.0.2:2380" });
    const rec = recorder();
    r.watch({ key: b(""), prefix: true, startRevision: revision(2), prevKv: true }, rec.sink);
    expect(rec.seen).toEqual(["2: PUT k=2 (prev 1)", "3: PUT j=1", "4: PUT k=3 (prev 2)"]);
    expect(() => r.watch({ key: b("k"), startRevision: revision(1) }, recorder().sink)).toThrow(
      /oldest available revision is 2/,
    );
  });

  it("writes member addresses in name order, whatever order the server set them in", () => {
    const a = new KvStore();
    const c = new KvStore();
    a.memberAddresses = { x: "1", y: "2" };
    c.memberAddresses = { y: "2", x: "1" };
    expect(a.snapshot()).toEqual(c.snapshot());
  });

  it("keeps revoking a restored lease's keys", () => {
    const d = new Driver();
    const l = d.grant(30);
    d.ok(put("k", "1", { lease: l }));
    const copy = new Driver(KvStore.restore(d.store.snapshot(), { appliedIndex: d.store.appliedIndex }));
    copy.ok(revoke(l));
    expect(copy.kv("k")).toBeUndefined();
  });

  it("install keeps watches: a watcher catches up from the snapshot's history", () => {
    const leader = new Driver();
    const follower = new Driver();
    leader.ok(put("k", "1"));
    follower.ok(put("k", "1"));
    const rec = recorder();
    follower.store.watch({ key: b("k") }, rec.sink);
    leader.ok(put("k", "2"));
    leader.ok(put("k", "3"));
    follower.store.install(leader.store.snapshot(), index(10));
    expect(rec.seen).toEqual(["2: PUT k=2", "3: PUT k=3"]);
    expect(follower.store.appliedIndex).toBe(10);
  });

  it("install cancels a watcher whose next revision the snapshot compacted away", () => {
    const leader = new Driver();
    const follower = new Driver();
    leader.ok(put("k", "1"));
    follower.ok(put("k", "1"));
    const rec = recorder();
    const w = follower.store.watch({ key: b("k") }, rec.sink);
    leader.ok(put("k", "2"));
    leader.ok(put("k", "3"));
    leader.ok(compact(3));
    follower.store.install(leader.store.snapshot(), index(10));
    expect(w.canceled).toBe(true);
    expect(rec.cancels.map((e) => e.message)).toEqual([
      "watch: revision 2 has been compacted; the oldest available revision is 3",
    ]);
  });

  it("refuses malformed snapshots with DATA_LOSS and leaves the store unchanged", () => {
    const d = new Driver();
    d.ok(put("k", "1"));
    const before = d.store.snapshot();
    const bad = (init: Parameters<typeof create<typeof StateSnapshotSchema>>[1]) =>
      toBinary(StateSnapshotSchema, create(StateSnapshotSchema, { revision: 5n, nextLeaseId: 1n, ...init }));
    const kv = (key: string, extra = {}) =>
      create(KeyValueSchema, { key: b(key), createRevision: 1n, modRevision: 1n, version: 1n, ...extra });
    const cases: [Uint8Array, RegExp][] = [
      [new Uint8Array([0xff, 0xff, 0xff]), /cannot be decoded/],
      [bad({ kvs: [kv("b"), kv("a")] }), /out of key order/],
      [bad({ kvs: [kv("a", { lease: 3n })] }), /lease 0x3, which is not in the snapshot/],
      [bad({ kvs: [kv("a", { modRevision: 9n })] }), /revisions/],
      [bad({ compactRevision: 6n }), /compact_revision 6 is ahead/],
      [bad({ nextLeaseId: 0n }), /next_lease_id/],
      [bad({ leases: [create(StoredLeaseSchema, { id: 1n, ttl: 0n })] }), /ttl 0/],
    ];
    for (const [bytes, message] of cases) {
      let err: unknown;
      try {
        d.store.install(bytes, index(99));
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(KvError);
      expect((err as KvError).code).toBe(Code.DATA_LOSS);
      expect((err as KvError).message).toMatch(message);
    }
    expect(d.store.snapshot()).toEqual(before);
    expect(d.store.appliedIndex).toBe(1);
  });
});
