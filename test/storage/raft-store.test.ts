import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  EMPTY_CONF_STATE,
  type Entry,
  type HardState,
  index,
  MemoryStorage,
  NONE,
  nodeId,
  type Snapshot,
  term,
} from "../../src/raft/index.js";
import {
  type BatchInfo,
  InvalidWriteError,
  RaftStore,
  StorageLockedError,
  StorageUnavailableError,
} from "../../src/storage/index.js";
import { entryKey } from "../../src/storage/record.js";
import { ent, ents, tempDir, withRawDb } from "./helpers.js";

const hs = (t: number, commit: number, vote = "a"): HardState => ({
  term: term(t),
  vote: nodeId(vote),
  commit: index(commit),
});
const CONF = { voters: [nodeId("a"), nodeId("b"), nodeId("c")], learners: [] };

function allEntries(s: RaftStore): Entry[] {
  if (s.lastIndex() < s.firstIndex()) return [];
  return s.entries(s.firstIndex(), index(s.lastIndex() + 1), Number.MAX_SAFE_INTEGER);
}

async function entryKeysOnDisk(dir: string): Promise<number[]> {
  return withRawDb(dir, async (db) => {
    const out: number[] = [];
    for await (const k of db.keys()) if (k.length === 9) out.push(Number(k.readBigUInt64BE(1)));
    return out;
  });
}

describe("RaftStore", () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let store: RaftStore | undefined;
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir());
  });
  afterEach(async () => {
    await store?.close();
    store = undefined;
    await cleanup();
  });
  const reopen = async (opts = {}) => {
    await store?.close();
    store = await RaftStore.open(dir, opts);
    return store;
  };

  it("opens an empty directory as a fresh store, and again after a restart", async () => {
    for (let round = 0; round < 2; round++) {
      const s = await reopen();
      expect(s.lastIndex()).toBe(0);
      expect(s.firstIndex()).toBe(1);
      expect(s.term(index(0))).toBe(0);
      expect(s.initialState()).toEqual({
        hardState: { term: 0, vote: NONE, commit: 0 },
        confState: EMPTY_CONF_STATE,
      });
      expect(s.snapshot().meta.index).toBe(0);
    }
  });

  it("bootstrap gives the same state as MemoryStorage.bootstrap, durably, and only on a fresh store", async () => {
    const s = await reopen();
    await s.bootstrap(CONF);
    const m = MemoryStorage.bootstrap(CONF);
    const same = (x: RaftStore) => {
      expect(x.initialState()).toEqual(m.initialState());
      expect([x.firstIndex(), x.lastIndex(), x.term(index(1))]).toEqual([
        m.firstIndex(),
        m.lastIndex(),
        m.term(index(1)),
      ]);
      expect(x.snapshot().meta).toEqual(m.snapshot().meta);
    };
    same(s);
    same(await reopen());
    await expect(store!.bootstrap(CONF)).rejects.toThrow(InvalidWriteError);
  });

  it("a save is visible only once durable, and a restart recovers exactly what was saved", async () => {
    const s = await reopen();
    await s.bootstrap(CONF);
    const p = s.save({ entries: ents(2, 6, 1), hardState: hs(1, 4) });
    expect(s.lastIndex()).toBe(1); // not yet on disk, so not yet readable
    await p;
    expect(s.lastIndex()).toBe(6);
    const before = { entries: allEntries(s), init: s.initialState(), snap: s.snapshot() };
    const r = await reopen();
    expect(allEntries(r)).toEqual(before.entries);
    expect(r.initialState()).toEqual(before.init);
    expect(r.snapshot()).toEqual(before.snap);
    expect(r.entries(index(3), index(7), 1)).toHaveLength(1); // maxSize still honoured
  });

  it("appending over a conflicting suffix truncates it, on disk too", async () => {
    const s = await reopen();
    await s.bootstrap(CONF);
    await s.save({ entries: ents(2, 10, 1), hardState: hs(1, 3) });
    await s.save({ entries: ents(6, 7, 2), hardState: hs(2, 3) });
    expect(s.lastIndex()).toBe(7);
    expect(s.term(index(6))).toBe(2);
    await s.close();
    expect(await entryKeysOnDisk(dir)).toEqual([2, 3, 4, 5, 6, 7]);
    const r = await reopen();
    expect(allEntries(r).map((e) => [e.index, e.term])).toEqual([
      [2, 1],
      [3, 1],
      [4, 1],
      [5, 1],
      [6, 2],
      [7, 2],
    ]);
  });

  it("createSnapshot and compact are durable; the compaction point keeps its term across a restart", async () => {
    const s = await reopen();
    await s.bootstrap(CONF);
    await s.save({ entries: ents(2, 20, 1), hardState: hs(1, 15) });
    const conf = { voters: [nodeId("a")], learners: [nodeId("d")] };
    await s.createSnapshot(index(15), conf, new TextEncoder().encode("state@15"));
    await s.compact(index(12));
    const check = (x: RaftStore) => {
      expect(x.snapshot().meta).toEqual({ index: 15, term: 1, confState: conf });
      expect(new TextDecoder().decode(x.snapshot().data)).toBe("state@15");
      expect(x.firstIndex()).toBe(13);
      expect(x.lastIndex()).toBe(20);
      expect(x.term(index(12))).toBe(1);
      expect(() => x.term(index(11))).toThrow(/compaction/);
      expect(x.initialState().confState).toEqual(conf);
    };
    check(s);
    await s.close();
    expect(await entryKeysOnDisk(dir)).toEqual([12, 13, 14, 15, 16, 17, 18, 19, 20]);
    check(await reopen());
    // Compact up to the snapshot itself, then restart: the log now starts right after it.
    await store!.compact(index(15));
    const r = await reopen();
    expect([r.firstIndex(), r.lastIndex(), r.term(index(15))]).toEqual([16, 20, 1]);
  });

  it("refuses snapshots and compactions that would lose data, and keeps working after", async () => {
    const s = await reopen();
    await s.bootstrap(CONF);
    await s.save({ entries: ents(2, 10, 1), hardState: hs(1, 5) });
    await expect(s.createSnapshot(index(7), CONF, new Uint8Array())).rejects.toThrow(
      /beyond the commit index 5/,
    );
    await expect(s.compact(index(4))).rejects.toThrow(/snapshot at 1 does not cover/);
    await expect(s.save({ entries: ents(13, 14, 1) })).rejects.toThrow(/start at 13 but the log ends at 10/);
    await expect(s.save({ entries: [ent(11, 1), ent(13, 1)] })).rejects.toThrow(/not contiguous/);
    await expect(s.save({ hardState: hs(1, 11) })).rejects.toThrow(/commit 11 is beyond the last index 10/);
    await s.save({ entries: ents(11, 12, 1) });
    expect(s.lastIndex()).toBe(12);
    expect((await reopen()).lastIndex()).toBe(12);
  });

  it("a snapshot from the leader replaces the whole log; an older one is ignored", async () => {
    const s = await reopen();
    await s.bootstrap(CONF);
    await s.save({ entries: ents(2, 10, 1), hardState: hs(1, 4) });
    const snap: Snapshot = {
      meta: { index: index(50), term: term(3), confState: CONF },
      data: new Uint8Array([1, 2]),
    };
    await s.save({ snapshot: snap, hardState: hs(3, 50) });
    expect([s.firstIndex(), s.lastIndex(), s.term(index(50))]).toEqual([51, 50, 3]);
    await s.save({ entries: ents(51, 52, 3), hardState: hs(3, 51) });
    await s.save({ snapshot: { ...snap, meta: { ...snap.meta, index: index(40) } } });
    expect(s.snapshot().meta.index).toBe(50);
    await s.close();
    expect(await entryKeysOnDisk(dir)).toEqual([51, 52]);
    const r = await reopen();
    expect(r.snapshot()).toEqual(snap);
    expect([r.firstIndex(), r.lastIndex(), r.initialState().hardState.commit]).toEqual([51, 52, 51]);
  });

  it("keeps a large snapshot intact across a restart", async () => {
    const s = await reopen();
    await s.bootstrap(CONF);
    const data = new Uint8Array(8 * 1024 * 1024).map((_, i) => (i * 31 + (i >>> 11)) & 0xff);
    const snap: Snapshot = { meta: { index: index(1000), term: term(4), confState: CONF }, data };
    await s.save({ snapshot: snap, hardState: hs(4, 1000) });
    const r = await reopen();
    expect(r.snapshot().meta).toEqual(snap.meta);
    expect(Buffer.compare(r.snapshot().data, data)).toBe(0);
  });

  it("group commit: many concurrent saves share a few fsynced batches and resolve in order", async () => {
    const batches: BatchInfo[] = [];
    const s = await reopen({ onBatch: (b: BatchInfo) => batches.push(b) });
    await s.bootstrap(CONF);
    batches.length = 0;
    const n = 500;
    const order: number[] = [];
    const saves: Promise<void>[] = [];
    // Saves arrive over many event-loop turns, as Readies do, not all in one synchronous run.
    for (let i = 0; i < n; i++) {
      const idx = i + 2;
      saves.push(s.save({ entries: [ent(idx, 1)], hardState: hs(1, idx) }).then(() => void order.push(idx)));
      if (i % 10 === 9) await new Promise((r) => setImmediate(r));
    }
    await Promise.all(saves);
    expect(order).toEqual(Array.from({ length: n }, (_, i) => i + 2));
    expect(batches.reduce((a, b) => a + b.writes, 0)).toBe(n);
    expect(batches.length).toBeLessThan(n / 5);
    expect(batches.length).toBeGreaterThan(1); // the saves really did overlap a batch in flight
    expect((await reopen()).lastIndex()).toBe(n + 1);
  });

  it("a save made while a batch is being written goes into the next batch, after it", async () => {
    const batches: BatchInfo[] = [];
    const s = await reopen({ onBatch: (b: BatchInfo) => batches.push(b) });
    await s.bootstrap(CONF);
    batches.length = 0;
    const first = s.save({ entries: ents(2, 3, 1) });
    await new Promise((r) => setImmediate(r)); // the first batch is now in flight
    const later = [
      s.save({ entries: ents(4, 5, 1) }),
      s.save({ entries: ents(4, 4, 2) }),
      s.save({ hardState: hs(2, 4) }),
    ];
    await Promise.all([first, ...later]);
    expect(batches.map((b) => b.writes)).toEqual([1, 3]);
    expect(allEntries(s).map((e) => `${e.index}@${e.term}`)).toEqual(["2@1", "3@1", "4@2"]);
    expect(allEntries(await reopen()).map((e) => `${e.index}@${e.term}`)).toEqual(["2@1", "3@1", "4@2"]);
  });

  it("skips the fsync only for a batch whose every write says mustSync: false", async () => {
    const batches: BatchInfo[] = [];
    const s = await reopen({ onBatch: (b: BatchInfo) => batches.push(b) });
    await s.bootstrap(CONF);
    await s.save({ entries: ents(2, 4, 1), hardState: hs(1, 1) });
    await s.save({ hardState: hs(1, 3), mustSync: false }); // only the commit index moved
    await Promise.all([
      s.save({ hardState: hs(1, 4), mustSync: false }),
      s.save({ entries: [ent(5, 1)], mustSync: true }),
    ]);
    expect(batches.map((b) => [b.writes, b.synced])).toEqual([
      [1, true],
      [1, true],
      [1, false],
      [2, true],
    ]);
    expect((await reopen()).initialState().hardState.commit).toBe(4);
  });

  it("after a failed write every later write fails too, until the store is reopened", async () => {
    const s = await reopen();
    await s.bootstrap(CONF);
    // A real LevelDB error: the database handle goes away under the store.
    await (Reflect.get(s, "db") as { close(): Promise<void> }).close();
    const failed = await s.save({ entries: [ent(2, 1)] }).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(StorageUnavailableError);
    expect((failed as Error).message).toBe(`raft store ${dir} failed a write and must be reopened`);
    expect((failed as Error).cause).toBeInstanceOf(Error);
    await expect(s.save({ hardState: hs(1, 1) })).rejects.toThrow(/failed a write and must be reopened/);
    expect(s.lastIndex()).toBe(1); // the mirror never showed the failed write
    await s.close();
    expect((await reopen()).lastIndex()).toBe(1);
  });

  it("a second open of the same directory fails clearly until the first is closed", async () => {
    const s = await reopen();
    const err = await RaftStore.open(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageLockedError);
    expect((err as Error).message).toBe(
      `raft store ${dir} is already open (held by another process or another handle in this process)`,
    );
    await s.close();
    store = await RaftStore.open(dir);
  });

  it("refuses writes after close", async () => {
    const s = await reopen();
    await s.close();
    await expect(s.save({ entries: [ent(1, 1)] })).rejects.toThrow(StorageUnavailableError);
  });

  it("keys sort by index (big-endian), so the log reads back in order past byte boundaries", async () => {
    expect(Buffer.compare(entryKey(255), entryKey(256))).toBe(-1);
    expect(Buffer.compare(entryKey(2 ** 32 - 1), entryKey(2 ** 32))).toBe(-1);
    const s = await reopen();
    await s.bootstrap(CONF);
    await s.save({ entries: ents(2, 300, 1), hardState: hs(1, 300) });
    const r = await reopen();
    expect(allEntries(r).map((e) => e.index)).toEqual(Array.from({ length: 299 }, (_, i) => i + 2));
  });
});
