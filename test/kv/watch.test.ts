// Watch: replay from a revision, then live events, one batch per revision in order; prefix and prev_kv;
// a compacted start revision refused naming the oldest available one; cancel.
import { describe, expect, it } from "vitest";
import { Code, CompactedError, revision } from "../../src/kv/index.js";
import { b, compact, Driver, del, opDel, opPut, put, recorder, txn } from "./support.js";

describe("watch", () => {
  it("from now: delivers only new events, one batch per revision", () => {
    const d = new Driver();
    d.ok(put("a", "old"));
    const rec = recorder();
    d.store.watch({ key: b("a") }, rec.sink);
    expect(rec.seen).toEqual([]);
    d.ok(put("a", "1"));
    d.ok(put("b", "ignored"));
    d.ok(del("a"));
    expect(rec.seen).toEqual(["2: PUT a=1", "4: DELETE a"]);
  });

  it("replays history from a start revision, then streams, without gap or repeat", () => {
    const d = new Driver();
    d.ok(put("k", "1"));
    d.ok(put("k", "2"));
    d.ok(put("k", "3"));
    const rec = recorder();
    d.store.watch({ key: b("k"), startRevision: revision(2) }, rec.sink);
    expect(rec.seen).toEqual(["2: PUT k=2", "3: PUT k=3"]);
    d.ok(put("k", "4"));
    expect(rec.seen).toEqual(["2: PUT k=2", "3: PUT k=3", "4: PUT k=4"]);
  });

  it("groups a txn's events into one batch at its revision, in op order", () => {
    const d = new Driver();
    d.ok(put("p/x", "0"));
    const rec = recorder();
    d.store.watch({ key: b("p/"), prefix: true }, rec.sink);
    d.ok(txn([], [opPut("p/b", "1"), opDel("p/x"), opPut("p/a", "2"), opPut("q", "no")]));
    expect(rec.seen).toEqual(["2: PUT p/b=1, DELETE p/x, PUT p/a=2"]);
  });

  it("watches a prefix, and everything with an empty prefix", () => {
    const d = new Driver();
    const under = recorder();
    const all = recorder();
    d.store.watch({ key: b("dir/"), prefix: true }, under.sink);
    d.store.watch({ key: new Uint8Array(), prefix: true }, all.sink);
    d.ok(put("dir/a", "1"));
    d.ok(put("dir", "not under"));
    d.ok(put("dir/b/c", "2"));
    expect(under.seen).toEqual(["1: PUT dir/a=1", "3: PUT dir/b/c=2"]);
    expect(all.seen).toHaveLength(3);
  });

  it("includes the previous key-value only when asked", () => {
    const d = new Driver();
    d.ok(put("k", "1"));
    const with_ = recorder();
    const without = recorder();
    d.store.watch({ key: b("k"), prevKv: true }, with_.sink);
    d.store.watch({ key: b("k") }, without.sink);
    d.ok(put("k", "2"));
    d.ok(del("k"));
    expect(with_.seen).toEqual(["2: PUT k=2 (prev 1)", "3: DELETE k (prev 2)"]);
    expect(without.seen).toEqual(["2: PUT k=2", "3: DELETE k"]);
  });

  it("reports a delete as the key with the deleting revision as its mod revision", () => {
    const d = new Driver();
    d.ok(put("k", "1"));
    const rec = recorder();
    d.store.watch({ key: b("k") }, rec.sink);
    d.ok(del("k"));
    const kv = rec.batches[0]?.events[0]?.kv;
    expect([kv?.modRevision, kv?.version, kv?.createRevision, kv?.value.length]).toEqual([2n, 0n, 0n, 0]);
  });

  it("waits for a start revision in the future", () => {
    const d = new Driver();
    const rec = recorder();
    d.store.watch({ key: b("k"), startRevision: revision(3) }, rec.sink);
    d.ok(put("k", "1"));
    d.ok(put("k", "2"));
    d.ok(put("k", "3"));
    expect(rec.seen).toEqual(["3: PUT k=3"]);
  });

  it("stops delivering after cancel", () => {
    const d = new Driver();
    const rec = recorder();
    const w = d.store.watch({ key: b("k") }, rec.sink);
    d.ok(put("k", "1"));
    w.cancel();
    w.cancel();
    d.ok(put("k", "2"));
    expect(rec.seen).toEqual(["1: PUT k=1"]);
    expect(w.canceled).toBe(true);
    expect(d.store.watcherCount).toBe(0);
  });

  it("gives each watcher its own id", () => {
    const d = new Driver();
    const a = d.store.watch({ key: b("a") }, recorder().sink);
    const c = d.store.watch({ key: b("a") }, recorder().sink);
    expect(a.id).not.toBe(c.id);
  });

  it("cancels a watcher whose sink throws, and the store carries on", () => {
    const d = new Driver();
    const cancels: Error[] = [];
    const w = d.store.watch(
      { key: b("k") },
      {
        onEvents() {
          throw new Error("stream closed");
        },
        onCancel(e) {
          cancels.push(e);
        },
      },
    );
    expect(d.ok(put("k", "1")).revision).toBe(1);
    expect(w.canceled).toBe(true);
    expect(cancels.map((e) => e.message)).toEqual(["stream closed"]);
    expect(d.ok(put("k", "2")).revision).toBe(2);
  });
});

describe("compaction", () => {
  function history() {
    const d = new Driver();
    for (let i = 1; i <= 6; i++) d.ok(put("k", String(i)));
    return d;
  }

  it("keeps history from the compact revision on and refuses older starts naming the oldest", () => {
    const d = history();
    const r = d.ok(compact(4));
    expect(r.revision).toBe(6);
    expect(d.store.compactRevision).toBe(4);
    const rec = recorder();
    d.store.watch({ key: b("k"), startRevision: revision(4) }, rec.sink);
    expect(rec.seen).toEqual(["4: PUT k=4", "5: PUT k=5", "6: PUT k=6"]);
    let err: unknown;
    try {
      d.store.watch({ key: b("k"), startRevision: revision(3) }, recorder().sink);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CompactedError);
    expect((err as CompactedError).oldest).toBe(4);
    expect((err as CompactedError).code).toBe(Code.OUT_OF_RANGE);
    expect((err as CompactedError).message).toBe(
      "watch: revision 3 has been compacted; the oldest available revision is 4",
    );
    expect(d.store.watcherCount).toBe(1);
  });

  it("does not disturb a running watch", () => {
    const d = history();
    const rec = recorder();
    d.store.watch({ key: b("k") }, rec.sink);
    d.ok(compact(6));
    d.ok(put("k", "7"));
    expect(rec.seen).toEqual(["7: PUT k=7"]);
  });

  it("refuses a compaction ahead of the store or not past the last one, changing nothing", () => {
    const d = history();
    const ahead = d.fail(compact(7));
    expect([ahead.error.code, ahead.error.message]).toEqual([
      Code.OUT_OF_RANGE,
      "compact: revision 7 is ahead of the current revision 6",
    ]);
    d.ok(compact(3));
    const again = d.fail(compact(3));
    expect(again.error.message).toBe(
      "compact: revision 3 has been compacted; the oldest available revision is 3",
    );
    const zero = d.fail(compact(0));
    expect(zero.error.code).toBe(Code.INVALID_ARGUMENT);
    expect(d.store.compactRevision).toBe(3);
  });

  it("does not change the values of live keys", () => {
    const d = history();
    d.ok(put("other", "x"));
    d.ok(compact(7));
    expect([d.kv("k")?.version, d.kv("other")?.createRevision]).toEqual([6n, 7n]);
  });
});

describe("automatic history trimming", () => {
  it("keeps at least historyRevisions revisions and compacts once history spans twice that", () => {
    const d = Driver.with({ historyRevisions: 5 });
    for (let i = 1; i <= 9; i++) d.ok(put("k", String(i)));
    expect(d.store.compactRevision).toBe(0);
    d.ok(put("k", "10"));
    expect(d.store.compactRevision).toBe(6);
    const rec = recorder();
    d.store.watch({ key: b("k"), startRevision: revision(6) }, rec.sink);
    expect(rec.seen).toEqual(["6: PUT k=6", "7: PUT k=7", "8: PUT k=8", "9: PUT k=9", "10: PUT k=10"]);
    expect(() => d.store.watch({ key: b("k"), startRevision: revision(5) }, recorder().sink)).toThrow(
      /oldest available revision is 6/,
    );
  });

  it("refuses a history bound that is not a positive integer", () => {
    expect(() => Driver.with({ historyRevisions: 0 })).toThrow(/historyRevisions must be a positive integer/);
    expect(() => Driver.with({ historyRevisions: Number.POSITIVE_INFINITY })).not.toThrow();
  });
});
