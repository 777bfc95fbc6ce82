// Turns a run of queued writes into one LevelDB batch and the matching changes to the in-memory mirror.
// The planner plays the writes forward on a small model of the log (first/last index, snapshot, hard
// state, terms of entries written in this batch) so that a later write in the same batch sees the earlier
// ones: a compaction after an append, a truncation of entries appended moments before. A write that breaks
// a rule of the log is refused on its own (InvalidWriteError) and leaves the model untouched.

import {
  type ConfState,
  type Entry,
  type HardState,
  type Index,
  index,
  type MemoryStorage,
  type Snapshot,
  type Term,
} from "../raft/index.js";
import { InvalidWriteError } from "./errors.js";
import { entryKey, frame, HARD_STATE_KEY, SNAPSHOT_KEY } from "./record.js";
import { encodeEntry, encodeHardState, encodeSnapshot } from "./values.js";

/** What one Ready asks to persist (Ready contract, step 2). */
export interface SaveRequest {
  readonly hardState?: HardState | undefined;
  readonly entries?: readonly Entry[] | undefined;
  readonly snapshot?: Snapshot | undefined;
  /**
   * The Ready's `mustSync`. Only an explicit false (the commit index moved, nothing else: etcd's
   * MustSync) lets the write skip its fsync; LevelDB appends its log in order, so the next synced batch
   * makes it durable too, and a crash before that loses only a commit index the leader will resend.
   */
  readonly mustSync?: boolean | undefined;
}

export type Write =
  | { readonly kind: "save"; readonly req: SaveRequest }
  | {
      readonly kind: "createSnapshot";
      readonly index: Index;
      readonly confState: ConfState;
      readonly data: Uint8Array;
    }
  | { readonly kind: "compact"; readonly index: Index };

export type BatchOp = { type: "put"; key: Buffer; value: Buffer } | { type: "del"; key: Buffer };

/** The durable state the mirror holds, which the planner starts from. */
export interface MirrorState {
  readonly log: MemoryStorage;
  readonly snapshot: Snapshot;
  readonly hardState: HardState;
}

/** A change to the mirror, made once the batch holding it is durable. */
export type Effect =
  | { kind: "snapshot"; snapshot: Snapshot; replaceLog: boolean }
  | { kind: "append"; entries: readonly Entry[] }
  | { kind: "hardState"; hardState: HardState }
  | { kind: "compact"; index: Index };

export class Planner {
  readonly ops: BatchOp[] = [];
  bytes = 0;
  private snap: Snapshot;
  private hs: HardState;
  /** The log's dummy: entries at or below it are compacted; its term is still known. */
  private dummy: Index;
  private dummyTerm: Term;
  private last: Index;
  /** Terms of entries written in this batch; below `last` and not here, the mirror's log is right. */
  private readonly written = new Map<number, Term>();
  /** False once a snapshot replaced the whole log in this batch: the mirror's entries no longer count. */
  private mirrorLogValid = true;

  constructor(private readonly mirror: MirrorState) {
    this.snap = mirror.snapshot;
    this.hs = mirror.hardState;
    this.dummy = index(mirror.log.firstIndex() - 1);
    this.dummyTerm = mirror.log.term(this.dummy);
    this.last = mirror.log.lastIndex();
  }

  /** Plans one write; returns its effects on the mirror, or throws InvalidWriteError having changed nothing. */
  plan(w: Write): Effect[] {
    switch (w.kind) {
      case "save":
        return this.save(w.req);
      case "createSnapshot":
        return this.createSnapshot(w.index, w.confState, w.data);
      case "compact":
        return this.compact(w.index);
    }
  }

  private term(i: Index): Term {
    if (i === this.dummy) return this.dummyTerm;
    const t = this.written.get(i);
    if (t !== undefined) return t;
    if (i < this.dummy || i > this.last || !this.mirrorLogValid) {
      throw new InvalidWriteError(`index ${i} is outside the log (${this.dummy}, ${this.last}]`);
    }
    return this.mirror.log.term(i);
  }

  private save(req: SaveRequest): Effect[] {
    // Validate everything first, on local copies; commit to the model only at the end.
    let { snap, dummy, dummyTerm, last } = this;
    const replace = req.snapshot !== undefined && req.snapshot.meta.index > snap.meta.index;
    if (replace) {
      snap = req.snapshot!;
      dummy = snap.meta.index;
      dummyTerm = snap.meta.term;
      last = snap.meta.index;
    }
    let ents = req.entries ?? [];
    for (let k = 1; k < ents.length; k++) {
      if (ents[k]!.index !== ents[k - 1]!.index + 1) {
        throw new InvalidWriteError(
          `entries are not contiguous: entry ${ents[k]!.index} follows entry ${ents[k - 1]!.index}`,
        );
      }
    }
    if (ents.length > 0 && ents[ents.length - 1]!.index <= dummy) ents = []; // all compacted already
    if (ents.length > 0 && ents[0]!.index <= dummy) ents = ents.slice(dummy + 1 - ents[0]!.index);
    if (ents.length > 0 && ents[0]!.index > last + 1) {
      throw new InvalidWriteError(`entries start at ${ents[0]!.index} but the log ends at ${last}`);
    }
    const newLast = ents.length > 0 ? ents[ents.length - 1]!.index : last;
    const hs = req.hardState ?? this.hs;
    if (hs.commit > newLast) {
      throw new InvalidWriteError(`hard state commit ${hs.commit} is beyond the last index ${newLast}`);
    }
    if (hs.commit < snap.meta.index) {
      throw new InvalidWriteError(
        `hard state commit ${hs.commit} is before the snapshot at ${snap.meta.index}`,
      );
    }

    const effects: Effect[] = [];
    if (replace) {
      // InstallSnapshot: the snapshot replaces the whole log, so every entry key goes, in the same batch.
      for (let i = this.dummy; i <= this.last; i++) this.del(entryKey(i));
      this.put(SNAPSHOT_KEY, encodeSnapshot(snap));
      this.written.clear();
      this.mirrorLogValid = false;
      effects.push({ kind: "snapshot", snapshot: snap, replaceLog: true });
    }
    if (ents.length > 0) {
      for (const e of ents) {
        this.put(entryKey(e.index), encodeEntry(e));
        this.written.set(e.index, e.term);
      }
      // A conflicting suffix beyond the new last index must not survive on disk.
      for (let i = newLast + 1; i <= last; i++) {
        this.del(entryKey(i));
        this.written.delete(i);
      }
      effects.push({ kind: "append", entries: ents });
    }
    if (req.hardState) {
      this.put(HARD_STATE_KEY, encodeHardState(req.hardState));
      effects.push({ kind: "hardState", hardState: req.hardState });
    }
    this.snap = snap;
    this.dummy = dummy;
    this.dummyTerm = dummyTerm;
    this.last = newLast;
    this.hs = hs;
    return effects;
  }

  private createSnapshot(i: Index, confState: ConfState, data: Uint8Array): Effect[] {
    if (i <= this.snap.meta.index) {
      throw new InvalidWriteError(
        `snapshot at ${i} is not newer than the snapshot at ${this.snap.meta.index}`,
      );
    }
    if (i > this.hs.commit) {
      throw new InvalidWriteError(`snapshot at ${i} is beyond the commit index ${this.hs.commit}`);
    }
    const snap: Snapshot = { meta: { index: i, term: this.term(i), confState }, data };
    this.put(SNAPSHOT_KEY, encodeSnapshot(snap));
    this.snap = snap;
    return [{ kind: "snapshot", snapshot: snap, replaceLog: false }];
  }

  // Entries at or below the snapshot may go; the entry at `c` stays on disk as the log's dummy (its term is
  // what the leader compares against when it sends entry c+1).
  private compact(c: Index): Effect[] {
    if (c <= this.dummy) return [];
    if (c > this.snap.meta.index) {
      throw new InvalidWriteError(
        `compacting to ${c} would drop entries that the snapshot at ${this.snap.meta.index} does not cover`,
      );
    }
    const t = this.term(c);
    for (let i = this.dummy; i < c; i++) {
      this.del(entryKey(i));
      this.written.delete(i);
    }
    this.dummy = c;
    this.dummyTerm = t;
    return [{ kind: "compact", index: c }];
  }

  private put(key: Buffer, payload: Uint8Array): void {
    const value = frame(key, payload);
    this.bytes += key.length + value.length;
    this.ops.push({ type: "put", key, value });
  }

  private del(key: Buffer): void {
    this.ops.push({ type: "del", key });
  }
}
