// Unit tests of the core's building blocks: RaftLog (log.ts), Unstable, Progress/Inflights and
// MemoryStorage. Edge cases at the boundaries of compaction, truncation and flow control.

import { describe, expect, it } from "vitest";
import {
  AssertionError,
  CompactedError,
  type Entry,
  index,
  MemoryStorage,
  ProgressState,
  term,
  UnavailableError,
} from "../../src/raft/index.js";
import { RaftLog } from "../../src/raft/log.js";
import { Inflights, Progress } from "../../src/raft/progress.js";
import { Unstable } from "../../src/raft/unstable.js";
import { entry, ids } from "./harness.js";

const INF = Number.POSITIVE_INFINITY;
const terms = (es: readonly Entry[]) => es.map((e) => e.term);
const idx = (es: readonly Entry[]) => es.map((e) => e.index);

/** A RaftLog over a bootstrapped storage holding entries 2.. with `ts` terms (all stable). */
function logWith(ts: number[]): RaftLog {
  const s = MemoryStorage.bootstrap({ voters: ids("a"), learners: [] });
  s.append(ts.map((t, k) => entry(k + 2, t)));
  return new RaftLog(s, INF);
}

describe("RaftLog", () => {
  it("findConflict: 0 when every entry is present, else the first index with another term or the first new index", () => {
    const log = logWith([1, 2, 3]); // indexes 2, 3, 4
    const cases: [Entry[], number][] = [
      [[], 0],
      [[entry(2, 1), entry(3, 2), entry(4, 3)], 0],
      [[entry(3, 2), entry(4, 3)], 0],
      [[entry(3, 2), entry(4, 3), entry(5, 4)], 5], // new entries
      [[entry(4, 3), entry(5, 4), entry(6, 4)], 5],
      [[entry(2, 4), entry(3, 4)], 2], // conflict at the first
      [[entry(3, 2), entry(4, 4)], 4], // conflict in the middle
    ];
    for (const [ents, want] of cases) expect(log.findConflict(ents), JSON.stringify(idx(ents))).toBe(want);
  });

  it("findConflictByTerm: the largest index <= i whose term is <= t (or the first index it cannot tell)", () => {
    const log = logWith([2, 2, 5, 5, 5]); // indexes 2..6; index 1 (snapshot) has term 1
    const cases: [number, number, number][] = [
      [6, 6, 6],
      [6, 5, 6],
      [6, 4, 3],
      [6, 2, 3],
      [6, 1, 1],
      [3, 1, 1],
      [1, 0, 0], // the snapshot index has term 1 > 0, and nothing below it is known
      [0, 0, 0],
    ];
    for (const [i, t, want] of cases)
      expect(log.findConflictByTerm(index(i), term(t)), `(${i}, ${t})`).toBe(want);
  });

  it("maybeAppend: refuses on a mismatched (prevIndex, prevTerm), truncates a conflicting suffix, commits at most the last new entry", () => {
    const log = logWith([1, 1, 1]); // 2..4 term 1
    expect(log.maybeAppend(index(4), term(2), index(4), [])).toBeUndefined();
    expect(log.maybeAppend(index(9), term(1), index(4), [])).toBeUndefined();
    expect(log.maybeAppend(index(2), term(1), index(9), [entry(3, 2)])).toBe(3);
    expect(terms(log.allEntries())).toEqual([1, 2]);
    expect(log.committed).toBe(3);
    // An append that only repeats what we have changes nothing (no truncation of the tail behind it).
    log.append([entry(4, 2), entry(5, 2)]);
    expect(log.maybeAppend(index(2), term(1), index(3), [entry(3, 2)])).toBe(3);
    expect(log.lastIndex()).toBe(5);
  });

  it("maybeAppend: a conflict at or below the commit index is an invariant violation, never silently applied", () => {
    const log = logWith([1, 1]);
    log.commitTo(index(3));
    expect(() => log.maybeAppend(index(1), term(1), index(3), [entry(2, 2)])).toThrow(AssertionError);
  });

  it("commitTo never moves backwards and never past the last index; maybeCommit needs the current term", () => {
    const log = logWith([1, 2]);
    log.commitTo(index(2));
    log.commitTo(index(1));
    expect(log.committed).toBe(2);
    expect(() => log.commitTo(index(9))).toThrow(AssertionError);
    expect(log.maybeCommit(index(3), term(3))).toBe(false);
    expect(log.maybeCommit(index(3), term(2))).toBe(true);
    expect(log.committed).toBe(3);
  });

  it("isUpToDate compares last term first, then last index (§5.4.1)", () => {
    const log = logWith([1, 3]); // last (3, 3)
    expect(log.isUpToDate(index(2), term(4))).toBe(true);
    expect(log.isUpToDate(index(3), term(3))).toBe(true);
    expect(log.isUpToDate(index(2), term(3))).toBe(false);
    expect(log.isUpToDate(index(9), term(2))).toBe(false);
  });

  it("term() is undefined below the snapshot and beyond the last index; slice() of compacted entries throws CompactedError", () => {
    const s = MemoryStorage.bootstrap({ voters: ids("a"), learners: [] });
    s.append([entry(2, 1), entry(3, 2), entry(4, 2)]);
    s.compact(index(3));
    const log = new RaftLog(s, INF);
    expect(log.firstIndex()).toBe(4);
    expect(log.term(index(3))).toBe(2); // the compaction point's term is kept
    expect(log.term(index(2))).toBeUndefined();
    expect(log.term(index(5))).toBeUndefined();
    expect(() => log.slice(index(3), index(5), INF)).toThrow(CompactedError);
    expect(idx(log.slice(index(4), index(5), INF))).toEqual([4]);
  });

  it("slice spans stable and unstable entries and honours the size limit (at least one entry)", () => {
    const log = logWith([1, 1]); // stable 2..3
    log.append([entry(4, 1, "0123456789"), entry(5, 1, "0123456789")]);
    expect(idx(log.slice(index(2), index(6), INF))).toEqual([2, 3, 4, 5]);
    expect(idx(log.slice(index(3), index(6), 24 + 24 + 34))).toEqual([3, 4]);
    expect(idx(log.slice(index(4), index(6), 1))).toEqual([4]);
  });

  it("nextCommittedEntries hands out committed, unapplied entries only, bounded by maxCommittedSizePerReady", () => {
    const s = MemoryStorage.bootstrap({ voters: ids("a"), learners: [] });
    s.append([entry(2, 1, "aaaaaaaaaa"), entry(3, 1, "bbbbbbbbbb"), entry(4, 1, "cccccccccc")]);
    const log = new RaftLog(s, 70);
    expect(log.hasNextCommittedEntries()).toBe(false);
    log.commitTo(index(4));
    expect(idx(log.nextCommittedEntries())).toEqual([2, 3]);
    log.appliedTo(index(3));
    expect(idx(log.nextCommittedEntries())).toEqual([4]);
    expect(() => log.appliedTo(index(2))).toThrow(AssertionError);
  });

  it("restore(snapshot) replaces the log and sets commit to the snapshot index", () => {
    const log = logWith([1, 1]);
    log.restore({
      meta: { index: index(10), term: term(3), confState: { voters: ids("a"), learners: [] } },
      data: new Uint8Array(),
    });
    expect([log.firstIndex(), log.lastIndex(), log.committed, log.lastTerm()]).toEqual([11, 10, 10, 3]);
    expect(log.hasPendingSnapshot()).toBe(true);
  });
});

describe("Unstable", () => {
  it("truncateAndAppend: appends after the end, replaces everything from an index at or before the offset, truncates in the middle", () => {
    const u = new Unstable(index(5));
    u.truncateAndAppend([entry(5, 1), entry(6, 1), entry(7, 1)]);
    u.truncateAndAppend([entry(8, 1)]);
    expect(idx(u.entries)).toEqual([5, 6, 7, 8]);
    u.truncateAndAppend([entry(7, 2)]);
    expect([idx(u.entries), terms(u.entries)]).toEqual([
      [5, 6, 7],
      [1, 1, 2],
    ]);
    u.truncateAndAppend([entry(4, 3), entry(5, 3)]);
    expect(u.offset).toBe(4);
    expect(terms(u.entries)).toEqual([3, 3]);
  });

  it("stableTo ignores a stale (index, term) whose entry was replaced meanwhile", () => {
    const u = new Unstable(index(5));
    u.truncateAndAppend([entry(5, 1), entry(6, 1)]);
    u.truncateAndAppend([entry(6, 2)]);
    u.stableTo(index(6), term(1)); // the Ready that carried (6, 1) is older than the rewrite
    expect(idx(u.entries)).toEqual([5, 6]);
    u.stableTo(index(5), term(1));
    expect([u.offset, idx(u.entries)]).toEqual([6, [6]]);
    u.stableTo(index(6), term(2));
    expect([u.offset, u.entries.length]).toEqual([7, 0]);
  });

  it("maybeTerm/maybeFirstIndex/maybeLastIndex with a pending snapshot", () => {
    const u = new Unstable(index(1));
    const snap = {
      meta: { index: index(9), term: term(4), confState: { voters: ids("a"), learners: [] } },
      data: new Uint8Array(),
    };
    u.restore(snap);
    expect([u.maybeFirstIndex(), u.maybeLastIndex(), u.maybeTerm(index(9)), u.maybeTerm(index(8))]).toEqual([
      10,
      9,
      4,
      undefined,
    ]);
    u.stableSnapTo(index(8));
    expect(u.snapshot).toBe(snap);
    u.stableSnapTo(index(9));
    expect(u.snapshot).toBeUndefined();
  });
});

describe("Progress and Inflights", () => {
  it("Inflights: full by count or by bytes; freeLE frees every acknowledged append; out-of-order adds are refused", () => {
    const inf = new Inflights(3, 100);
    inf.add(index(2), 10);
    inf.add(index(4), 10);
    expect(inf.full()).toBe(false);
    inf.add(index(6), 10);
    expect(inf.full()).toBe(true);
    expect(() => inf.add(index(7), 1)).toThrow(AssertionError);
    inf.freeLE(index(4));
    expect(inf.count()).toBe(1);
    expect(() => inf.add(index(5), 1)).toThrow(AssertionError);
    const bytes = new Inflights(10, 100);
    bytes.add(index(1), 60);
    bytes.add(index(2), 40);
    expect(bytes.full()).toBe(true);
    bytes.freeFirstOne();
    expect(bytes.full()).toBe(false);
  });

  it("maybeDecrTo in Probe: only a rejection of the append just sent counts; next moves to the hint but never below match+1", () => {
    const pr = new Progress(index(10), new Inflights(4, INF), false);
    pr.match = index(3);
    expect(pr.maybeDecrTo(index(5), index(4))).toBe(false); // stale: we sent prev 9
    expect(pr.maybeDecrTo(index(9), index(6))).toBe(true);
    expect(pr.next).toBe(7);
    pr.next = index(10);
    expect(pr.maybeDecrTo(index(9), index(1))).toBe(true);
    expect(pr.next).toBe(4);
  });

  it("maybeDecrTo in Replicate: a rejection at or below match is stale; otherwise next falls back to match+1", () => {
    const pr = new Progress(index(10), new Inflights(4, INF), false);
    pr.match = index(5);
    pr.becomeReplicate();
    pr.optimisticUpdate(index(9));
    expect(pr.maybeDecrTo(index(5), index(0))).toBe(false);
    expect(pr.maybeDecrTo(index(7), index(0))).toBe(true);
    expect(pr.next).toBe(6);
  });

  it("maybeUpdate ignores stale acks; Probe pauses after one append, Snapshot pauses until it lands, then resumes after it", () => {
    const pr = new Progress(index(5), new Inflights(2, INF), false);
    expect(pr.maybeUpdate(index(4))).toBe(true);
    expect(pr.maybeUpdate(index(3))).toBe(false);
    expect(pr.match).toBe(4);
    pr.probeSent = true;
    expect(pr.isPaused()).toBe(true);
    pr.becomeSnapshot(index(20));
    expect(pr.state).toBe(ProgressState.Snapshot);
    expect(pr.isPaused()).toBe(true);
    pr.becomeProbe();
    expect([pr.state, pr.next, pr.isPaused()]).toEqual([ProgressState.Probe, 21, false]);
  });
});

describe("MemoryStorage", () => {
  it("append truncates a conflicting suffix and ignores entries already compacted", () => {
    const s = MemoryStorage.bootstrap({ voters: ids("a"), learners: [] });
    s.append([entry(2, 1), entry(3, 1), entry(4, 1)]);
    s.append([entry(3, 2)]);
    expect([s.lastIndex(), s.term(index(3))]).toEqual([3, 2]);
    s.compact(index(3));
    s.append([entry(2, 9), entry(3, 9), entry(4, 2)]); // 2 and 3 are below the first index: skipped
    expect([s.firstIndex(), s.lastIndex(), s.term(index(3)), s.term(index(4))]).toEqual([4, 4, 2, 2]);
    s.append([entry(1, 5)]);
    expect(s.lastIndex()).toBe(4);
  });

  it("append with a gap after the last index is an invariant violation", () => {
    const s = MemoryStorage.bootstrap({ voters: ids("a"), learners: [] });
    expect(() => s.append([entry(5, 1)])).toThrow(/missing log entry/);
  });

  it("entries/term report CompactedError below the first index and UnavailableError beyond the last", () => {
    const s = MemoryStorage.bootstrap({ voters: ids("a"), learners: [] });
    s.append([entry(2, 1), entry(3, 1), entry(4, 2)]);
    s.compact(index(2));
    expect(() => s.entries(index(2), index(4), INF)).toThrow(CompactedError);
    expect(() => s.entries(index(3), index(9), INF)).toThrow(UnavailableError);
    expect(() => s.term(index(1))).toThrow(CompactedError);
    expect(() => s.term(index(5))).toThrow(UnavailableError);
    expect(s.term(index(2))).toBe(1);
    expect(idx(s.entries(index(3), index(5), 1))).toEqual([3]);
  });

  it("compact is idempotent below the first index and refuses to go past the last; createSnapshot must move forward", () => {
    const s = MemoryStorage.bootstrap({ voters: ids("a"), learners: [] });
    s.append([entry(2, 1), entry(3, 1)]);
    s.compact(index(3));
    s.compact(index(2));
    expect(s.firstIndex()).toBe(4);
    expect(() => s.compact(index(9))).toThrow(AssertionError);
    const snap = s.createSnapshot(index(3), { voters: ids("a"), learners: [] }, new Uint8Array([7]));
    expect(snap.meta).toMatchObject({ index: 3, term: 1 });
    expect(() => s.createSnapshot(index(3), { voters: ids("a"), learners: [] }, new Uint8Array())).toThrow(
      AssertionError,
    );
  });

  it("applySnapshot replaces the log, and an older snapshot is ignored", () => {
    const s = new MemoryStorage();
    const cs = { voters: ids("a", "b"), learners: [] };
    s.applySnapshot({ meta: { index: index(7), term: term(2), confState: cs }, data: new Uint8Array() });
    expect([s.firstIndex(), s.lastIndex(), s.term(index(7))]).toEqual([8, 7, 2]);
    s.applySnapshot({ meta: { index: index(5), term: term(2), confState: cs }, data: new Uint8Array() });
    expect(s.snapshot().meta.index).toBe(7);
    expect(s.initialState().confState).toEqual(cs);
  });

  it("bootstrap: a snapshot at (1, 1) holding the founding configuration, committed", () => {
    const s = MemoryStorage.bootstrap({ voters: ids("a", "b", "c"), learners: [] });
    expect(s.initialState()).toEqual({
      hardState: { term: 1, vote: "", commit: 1 },
      confState: { voters: ids("a", "b", "c"), learners: [] },
    });
    expect([s.firstIndex(), s.lastIndex()]).toEqual([2, 1]);
  });
});
