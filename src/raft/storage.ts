// The core reads persisted state through `Storage`; it never writes it. The caller writes (Ready contract)
// and may compact. `MemoryStorage` is the in-memory implementation used by the simulator and tests, and the
// read cache in front of the on-disk store.

import { assert, CompactedError, UnavailableError } from "./errors.js";
import {
  type ConfState,
  type Entry,
  EntryType,
  entrySize,
  type HardState,
  type Index,
  index,
  NONE,
  type Snapshot,
  type Term,
  term,
} from "./types.js";

export interface InitialState {
  readonly hardState: HardState;
  readonly confState: ConfState;
}

export interface Storage {
  initialState(): InitialState;
  /** Entries in [lo, hi), at least one if any, at most `maxSize` bytes. Throws Compacted/Unavailable. */
  entries(lo: Index, hi: Index, maxSize: number): Entry[];
  /** Term of entry i, for i in [firstIndex-1, lastIndex]. Throws Compacted/Unavailable otherwise. */
  term(i: Index): Term;
  lastIndex(): Index;
  firstIndex(): Index;
  /** The most recent snapshot (may throw SnapshotTemporarilyUnavailableError). */
  snapshot(): Snapshot;
}

export const EMPTY_CONF_STATE: ConfState = { voters: [], learners: [] };

export class MemoryStorage implements Storage {
  private hardState: HardState = { term: term(0), vote: NONE, commit: index(0) };
  private snap: Snapshot = {
    meta: { index: index(0), term: term(0), confState: EMPTY_CONF_STATE },
    data: new Uint8Array(0),
  };
  // ents[0] is a dummy entry standing for the snapshot: its index and term are the snapshot's.
  private ents: Entry[] = [
    { index: index(0), term: term(0), type: EntryType.Normal, data: new Uint8Array(0) },
  ];

  initialState(): InitialState {
    return { hardState: this.hardState, confState: this.snap.meta.confState };
  }

  setHardState(hs: HardState): void {
    this.hardState = hs;
  }

  entries(lo: Index, hi: Index, maxSize: number): Entry[] {
    const offset = this.ents[0]!.index;
    if (lo <= offset) throw new CompactedError();
    if (hi > this.lastIndex() + 1)
      throw new UnavailableError(`entries up to ${hi} requested, last is ${this.lastIndex()}`);
    return limitSize(this.ents.slice(lo - offset, hi - offset), maxSize);
  }

  term(i: Index): Term {
    const offset = this.ents[0]!.index;
    if (i < offset) throw new CompactedError();
    if (i - offset >= this.ents.length) throw new UnavailableError();
    return this.ents[i - offset]!.term;
  }

  lastIndex(): Index {
    return index(this.ents[0]!.index + this.ents.length - 1);
  }

  firstIndex(): Index {
    return index(this.ents[0]!.index + 1);
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** Replaces the whole log with a snapshot received from the leader. Older snapshots are refused. */
  applySnapshot(s: Snapshot): void {
    if (s.meta.index <= this.snap.meta.index) return;
    this.snap = s;
    this.ents = [{ index: s.meta.index, term: s.meta.term, type: EntryType.Normal, data: new Uint8Array(0) }];
  }

  /** Records a snapshot of the state machine at applied index i (<= lastIndex). */
  createSnapshot(i: Index, confState: ConfState, data: Uint8Array): Snapshot {
    assert(i > this.snap.meta.index, () => `snapshot at ${i} is not newer than ${this.snap.meta.index}`);
    assert(i <= this.lastIndex(), () => `snapshot at ${i} is beyond the last index ${this.lastIndex()}`);
    this.snap = { meta: { index: i, term: this.term(i), confState }, data };
    return this.snap;
  }

  /** Discards entries before `compactIndex`; the entry at compactIndex becomes the dummy. */
  compact(compactIndex: Index): void {
    const offset = this.ents[0]!.index;
    if (compactIndex <= offset) return;
    assert(
      compactIndex <= this.lastIndex(),
      () => `compact ${compactIndex} is beyond last ${this.lastIndex()}`,
    );
    const i = compactIndex - offset;
    const dummy = this.ents[i]!;
    this.ents = [
      { index: dummy.index, term: dummy.term, type: EntryType.Normal, data: new Uint8Array(0) },
      ...this.ents.slice(i + 1),
    ];
  }

  /** Appends entries, truncating any conflicting suffix (entries are contiguous and follow our first index). */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[entries.length - 1]!.index;
    if (last < first) return; // all already compacted
    const toAppend = first > entries[0]!.index ? entries.slice(first - entries[0]!.index) : entries;
    const offset = toAppend[0]!.index - this.ents[0]!.index;
    assert(
      offset <= this.ents.length,
      () => `missing log entry: last ${this.lastIndex()}, append at ${toAppend[0]!.index}`,
    );
    this.ents = [...this.ents.slice(0, offset), ...toAppend];
  }

  /** Bootstraps a founding member: a snapshot at index 1, term 1 holding the initial configuration. */
  static bootstrap(confState: ConfState, data: Uint8Array = new Uint8Array(0)): MemoryStorage {
    const s = new MemoryStorage();
    s.snap = { meta: { index: index(1), term: term(1), confState }, data };
    s.ents = [{ index: index(1), term: term(1), type: EntryType.Normal, data: new Uint8Array(0) }];
    s.hardState = { term: term(1), vote: NONE, commit: index(1) };
    return s;
  }
}

/** Keeps a prefix of entries within maxSize bytes, but always at least one entry. */
export function limitSize(ents: Entry[], maxSize: number): Entry[] {
  if (ents.length === 0) return ents;
  let size = entrySize(ents[0]!);
  let n = 1;
  for (; n < ents.length; n++) {
    size += entrySize(ents[n]!);
    if (size > maxSize) break;
  }
  return n === ents.length ? ents : ents.slice(0, n);
}
