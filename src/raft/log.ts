// The Raft log as the core sees it: stable entries (read through Storage) followed by unstable ones.

import { assert, CompactedError, UnavailableError } from "./errors.js";
import { limitSize, type Storage } from "./storage.js";
import { type Entry, type Index, index, type Snapshot, type Term, term } from "./types.js";
import { Unstable } from "./unstable.js";

export class RaftLog {
  readonly storage: Storage;
  readonly unstable: Unstable;
  /** Highest index known to be committed (on a quorum's stable storage). */
  committed: Index;
  /** Highest index handed to the caller for application. */
  applied: Index;
  private readonly maxApplyingSize: number;

  constructor(storage: Storage, maxApplyingSize: number) {
    this.storage = storage;
    this.maxApplyingSize = maxApplyingSize;
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.unstable = new Unstable(index(last + 1));
    this.committed = index(first - 1);
    this.applied = index(first - 1);
  }

  firstIndex(): Index {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): Index {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  lastTerm(): Term {
    const t = this.term(this.lastIndex());
    assert(t !== undefined, "the term of the last entry is always known");
    return t;
  }

  /** Term of entry i, or undefined when i is compacted away or beyond the last index. */
  term(i: Index): Term | undefined {
    const dummy = this.firstIndex() - 1;
    if (i < dummy || i > this.lastIndex()) return undefined;
    const ut = this.unstable.maybeTerm(i);
    if (ut !== undefined) return ut;
    try {
      return this.storage.term(i);
    } catch (e) {
      if (e instanceof CompactedError || e instanceof UnavailableError) return undefined;
      throw e;
    }
  }

  matchTerm(i: Index, t: Term): boolean {
    return this.term(i) === t;
  }

  /** Raft §5.4.1: a candidate's log is at least as up-to-date as ours. */
  isUpToDate(lastIndex: Index, lastTerm: Term): boolean {
    const ourTerm = this.lastTerm();
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());
  }

  /**
   * Follower side of AppendEntries (§5.3): if our entry at `prevIndex` has `prevTerm`, append `ents`
   * (dropping any conflicting suffix) and advance commit. Returns the index of the last new entry, or
   * undefined when the consistency check fails.
   */
  maybeAppend(prevIndex: Index, prevTerm: Term, committed: Index, ents: readonly Entry[]): Index | undefined {
    if (!this.matchTerm(prevIndex, prevTerm)) return undefined;
    const lastNew = index(prevIndex + ents.length);
    const ci = this.findConflict(ents);
    if (ci !== 0) {
      assert(
        ci > this.committed,
        () => `entry ${ci} conflicts with committed entry (committed ${this.committed})`,
      );
      this.append(ents.slice(ci - (prevIndex + 1)));
    }
    this.commitTo(index(Math.min(committed, lastNew)));
    return lastNew;
  }

  append(ents: readonly Entry[]): Index {
    if (ents.length === 0) return this.lastIndex();
    const after = ents[0]!.index - 1;
    assert(
      after >= this.committed,
      () => `append after ${after} would overwrite committed ${this.committed}`,
    );
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  /**
   * The first entry of `ents` whose index exists here with another term, or the first new index; 0 when
   * every entry is already present.
   */
  findConflict(ents: readonly Entry[]): Index {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return index(0);
  }

  /**
   * Fast back-off: the largest index <= i whose term is <= t (or the first unknown one). A leader probing
   * at (i, t) can skip every entry above it, since none of them can match.
   */
  findConflictByTerm(i: Index, t: Term): Index {
    let j = i;
    for (;;) {
      const jt = this.term(j);
      if (jt === undefined || jt <= t) return j;
      j = index(j - 1);
    }
  }

  commitTo(toCommit: Index): void {
    if (toCommit <= this.committed) return;
    assert(
      toCommit <= this.lastIndex(),
      () => `commit ${toCommit} is beyond the last index ${this.lastIndex()}`,
    );
    this.committed = toCommit;
  }

  /** Leader commit rule (§5.4.2): only an entry of the current term is committed by counting replicas. */
  maybeCommit(maxIndex: Index, currentTerm: Term): boolean {
    if (maxIndex > this.committed && this.term(maxIndex) === currentTerm) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  appliedTo(i: Index): void {
    if (i === 0) return;
    assert(
      i <= this.committed && i >= this.applied,
      () => `applied ${i} outside [${this.applied}, ${this.committed}]`,
    );
    this.applied = i;
  }

  stableTo(i: Index, t: Term): void {
    this.unstable.stableTo(i, t);
  }

  stableSnapTo(i: Index): void {
    this.unstable.stableSnapTo(i);
  }

  unstableEntries(): Entry[] {
    return [...this.unstable.entries];
  }

  hasNextCommittedEntries(): boolean {
    return this.committed > this.applied && this.applied + 1 >= this.firstIndex();
  }

  nextCommittedEntries(): Entry[] {
    const lo = index(Math.max(this.applied + 1, this.firstIndex()));
    if (this.committed + 1 <= lo) return [];
    return this.slice(lo, index(this.committed + 1), this.maxApplyingSize);
  }

  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  hasPendingSnapshot(): boolean {
    return this.unstable.snapshot !== undefined;
  }

  /** Entries from i to the end, at most maxSize bytes (at least one). Throws CompactedError. */
  entriesFrom(i: Index, maxSize: number): Entry[] {
    if (i > this.lastIndex()) return [];
    return this.slice(i, index(this.lastIndex() + 1), maxSize);
  }

  /** Entries in [lo, hi). Throws CompactedError when lo is compacted away. */
  slice(lo: Index, hi: Index, maxSize: number): Entry[] {
    assert(lo <= hi, () => `invalid slice ${lo} > ${hi}`);
    if (lo === hi) return [];
    if (lo < this.firstIndex()) throw new CompactedError();
    assert(hi <= this.lastIndex() + 1, () => `slice [${lo},${hi}) out of bound last ${this.lastIndex()}`);
    let ents: Entry[] = [];
    const uOffset = this.unstable.offset;
    if (lo < uOffset) {
      ents = this.storage.entries(lo, index(Math.min(hi, uOffset)), maxSize);
      // Storage returned fewer entries than asked: the size limit was hit.
      if (ents.length < Math.min(hi, uOffset) - lo) return ents;
    }
    if (hi > uOffset) {
      const u = this.unstable.slice(index(Math.max(lo, uOffset)), hi);
      ents = ents.length > 0 ? [...ents, ...u] : u;
    }
    return limitSize(ents, maxSize);
  }

  /** Replaces the log with a snapshot (follower receiving InstallSnapshot). */
  restore(s: Snapshot): void {
    this.committed = s.meta.index;
    this.unstable.restore(s);
  }

  /** Every entry from the first available index, for invariant checks and tests. */
  allEntries(): Entry[] {
    try {
      return this.slice(this.firstIndex(), index(this.lastIndex() + 1), Number.POSITIVE_INFINITY);
    } catch (e) {
      if (e instanceof CompactedError) return this.allEntries();
      throw e;
    }
  }
}

export const ZERO_TERM = term(0);
