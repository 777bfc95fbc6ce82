// Damage written straight through a raw LevelDB handle, behind the store's back: open must report it as a
// StorageCorruptError naming the record, never use it.

import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { encodeEntry } from "../../src/codec/raft.js";
import { index, nodeId, term } from "../../src/raft/index.js";
import { RaftStore, StorageCorruptError } from "../../src/storage/index.js";
import { entryKey, frame, HARD_STATE_KEY, SNAPSHOT_KEY } from "../../src/storage/record.js";
import { encodeHardState, encodeSnapshot } from "../../src/storage/values.js";
import { ent, ents, tempDir, withRawDb } from "./helpers.js";

const CONF = { voters: [nodeId("a")], learners: [] };

describe("opening a damaged store", () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir());
    // A healthy store: snapshot at 1, entries 2..10 at term 2, commit 6.
    const s = await RaftStore.open(dir);
    await s.bootstrap(CONF);
    await s.save({
      entries: ents(2, 10, 2),
      hardState: { term: term(2), vote: nodeId("a"), commit: index(6) },
    });
    await s.close();
  });
  afterEach(() => cleanup());

  async function openFails(): Promise<StorageCorruptError> {
    const err = await RaftStore.open(dir).then(
      async (s) => {
        await s.close();
        return undefined;
      },
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StorageCorruptError);
    // The failed open released the directory: the operator's tools can still read it.
    await withRawDb(dir, async () => {});
    return err as StorageCorruptError;
  }

  const damage = (f: (db: Parameters<Parameters<typeof withRawDb>[1]>[0]) => Promise<void>) =>
    withRawDb(dir, f);

  it("a flipped byte in an entry is a checksum mismatch naming the entry", async () => {
    await damage(async (db) => {
      const v = Buffer.from(await db.get(entryKey(5)));
      v[v.length - 1]! ^= 0x20;
      await db.put(entryKey(5), v);
    });
    const e = await openFails();
    expect([e.record, e.index]).toEqual(["entry 5", 5]);
    expect(e.message).toMatch(
      new RegExp(`^raft store ${dir} is corrupt: entry 5: checksum mismatch \\(stored 0x`),
    );
  });

  it("a truncated value is reported as truncated", async () => {
    await damage(async (db) => {
      const v = await db.get(entryKey(7));
      await db.put(entryKey(7), v.subarray(0, v.length - 4));
    });
    expect((await openFails()).message).toMatch(
      /entry 7: value is truncated: header says \d+ payload bytes, found \d+/,
    );
  });

  it("a value cut inside its header is reported as truncated", async () => {
    await damage(async (db) => db.put(HARD_STATE_KEY, Buffer.from([1, 0, 0])));
    expect((await openFails()).message).toMatch(/hard state: value is truncated: 3 bytes/);
  });

  it("an unknown format version is reported, not guessed at", async () => {
    await damage(async (db) => {
      const v = Buffer.from(await db.get(SNAPSHOT_KEY));
      v[0] = 2;
      await db.put(SNAPSHOT_KEY, v);
    });
    expect((await openFails()).message).toMatch(/snapshot: format version 2 is unknown/);
  });

  it("a well-framed value that does not decode is undecodable", async () => {
    await damage(async (db) => db.put(entryKey(4), frame(entryKey(4), Buffer.from([0xff, 0xff, 0xff]))));
    const e = await openFails();
    expect([e.record, e.index]).toEqual(["entry 4", 4]);
    expect(e.problem).toMatch(/^undecodable: /);
  });

  it("an entry copied under another key fails its checksum; one framed for that key is caught by its index", async () => {
    await damage(async (db) => db.put(entryKey(8), await db.get(entryKey(9))));
    expect((await openFails()).message).toMatch(/entry 8: checksum mismatch/);
    await damage(async (db) => db.put(entryKey(8), frame(entryKey(8), encodeEntry(ent(9, 2)))));
    expect((await openFails()).message).toMatch(/entry 8: the record holds entry 9 instead/);
  });

  it("a missing entry is a gap in the log", async () => {
    await damage(async (db) => db.del(entryKey(6)));
    const e = await openFails();
    expect(e.message).toMatch(/entry 7: gap in the log: it follows entry 5 \(entries 6\.\.6 are missing\)/);
    expect(e.index).toBe(7);
  });

  it("entries that do not follow the snapshot are reported", async () => {
    await damage(async (db) => db.del(entryKey(2)));
    expect((await openFails()).message).toMatch(
      /entry 3: entries do not follow the snapshot at 1: entries 2\.\.2 are missing/,
    );
  });

  it("a term that goes backwards is reported", async () => {
    await damage(async (db) => db.put(entryKey(10), frame(entryKey(10), encodeEntry(ent(10, 1)))));
    expect((await openFails()).message).toMatch(/entry 10: term 1 is lower than term 2 of entry 9/);
  });

  it("a hard-state commit beyond the last index is reported", async () => {
    await damage(async (db) =>
      db.put(
        HARD_STATE_KEY,
        frame(HARD_STATE_KEY, encodeHardState({ term: term(2), vote: nodeId("a"), commit: index(11) })),
      ),
    );
    expect((await openFails()).message).toMatch(/hard state: commit 11 is beyond the last index 10/);
  });

  it("a hard-state commit before the snapshot is reported", async () => {
    const s = await RaftStore.open(dir);
    await s.createSnapshot(index(6), CONF, new Uint8Array([6]));
    await s.close();
    await damage(async (db) =>
      db.put(
        HARD_STATE_KEY,
        frame(HARD_STATE_KEY, encodeHardState({ term: term(2), vote: nodeId("a"), commit: index(5) })),
      ),
    );
    expect((await openFails()).message).toMatch(/hard state: commit 5 is before the snapshot at 6/);
  });

  it("a log kept below the snapshot must agree with it at the snapshot index", async () => {
    const s = await RaftStore.open(dir);
    await s.createSnapshot(index(6), CONF, new Uint8Array([6]));
    await s.compact(index(4));
    await s.close();
    await damage(async (db) => {
      const meta = { index: index(6), term: term(5), confState: CONF };
      await db.put(SNAPSHOT_KEY, frame(SNAPSHOT_KEY, encodeSnapshot({ meta, data: new Uint8Array([6]) })));
    });
    expect((await openFails()).message).toMatch(/entry 6: term 2 differs from term 5 of the snapshot at 6/);
  });

  it("a hard-state term below the log's last term is reported", async () => {
    await damage(async (db) =>
      db.put(
        HARD_STATE_KEY,
        frame(HARD_STATE_KEY, encodeHardState({ term: term(1), vote: nodeId("a"), commit: index(6) })),
      ),
    );
    expect((await openFails()).message).toMatch(/hard state: term 1 is lower than term 2 of the last entry/);
  });

  it("a missing snapshot for a non-empty log is reported", async () => {
    await damage(async (db) => db.del(SNAPSHOT_KEY));
    expect((await openFails()).message).toMatch(
      /snapshot: the record is missing, yet the store holds 9 entries and a hard state/,
    );
  });

  it("a missing hard state under a snapshot is reported", async () => {
    await damage(async (db) => db.del(HARD_STATE_KEY));
    expect((await openFails()).message).toMatch(
      /hard state: the record is missing, yet the snapshot is at index 1/,
    );
  });

  it("a key the store never writes is reported", async () => {
    await damage(async (db) => db.put(Buffer.from("zz"), Buffer.from("x")));
    expect((await openFails()).message).toMatch(/key 0x7a7a: this store never writes such a key/);
  });
});
