// Entries and snapshot the core has accepted but the caller has not yet confirmed persisted (via advance).

import { assert } from "./errors.js";
import { type Entry, type Index, index, type Snapshot, type Term } from "./types.js";

export class Unstable {
  snapshot: Snapshot | undefined;
  entries: Entry[] = [];
  /** Index of entries[0]. */
  offset: Index;

  constructor(offset: Index) {
    this.offset = offset;
  }

  maybeFirstIndex(): Index | undefined {
    return this.snapshot ? index(this.snapshot.meta.index + 1) : undefined;
  }

  maybeLastIndex(): Index | undefined {
    if (this.entries.length > 0) return index(this.offset + this.entries.length - 1);
    return this.snapshot?.meta.index;
  }

  maybeTerm(i: Index): Term | undefined {
    if (i < this.offset) {
      if (this.snapshot && this.snapshot.meta.index === i) return this.snapshot.meta.term;
      return undefined;
    }
    const last = this.maybeLastIndex();
    if (last === undefined || i > last) return undefined;
    return this.entries[i - this.offset]?.term;
  }

  /** Entries up to (i, t) are now on stable storage. Ignored if the entry was replaced meanwhile. */
  stableTo(i: Index, t: Term): void {
    const gt = this.maybeTerm(i);
    if (gt === undefined || i < this.offset) return;
    if (gt === t) {
      this.entries = this.entries.slice(i + 1 - this.offset);
      this.offset = index(i + 1);
    }
  }

  stableSnapTo(i: Index): void {
    if (this.snapshot && this.snapshot.meta.index === i) this.snapshot = undefined;
  }

  restore(s: Snapshot): void {
    this.offset = index(s.meta.index + 1);
    this.entries = [];
    this.snapshot = s;
  }

  truncateAndAppend(ents: readonly Entry[]): void {
    if (ents.length === 0) return;
    const after = ents[0]!.index;
    if (after === this.offset + this.entries.length) {
      this.entries.push(...ents);
    } else if (after <= this.offset) {
      // Replaces everything unstable; the caller's storage truncates its own conflicting suffix on append.
      this.offset = after;
      this.entries = [...ents];
    } else {
      this.entries = [...this.slice(this.offset, after), ...ents];
    }
  }

  slice(lo: Index, hi: Index): Entry[] {
    assert(lo <= hi, () => `invalid unstable slice ${lo} > ${hi}`);
    const upper = this.offset + this.entries.length;
    assert(
      lo >= this.offset && hi <= upper,
      () => `unstable slice [${lo},${hi}) out of [${this.offset},${upper}]`,
    );
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}
