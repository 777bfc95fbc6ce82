// The leader's view of one follower's log, with etcd's three replication states:
// Probe (one append in flight until the follower answers), Replicate (optimistic pipelining, bounded by
// Inflights) and Snapshot (a snapshot is on its way; appends pause until it lands).

import { assert } from "./errors.js";
import { type Index, index } from "./types.js";

export enum ProgressState {
  Probe = "probe",
  Replicate = "replicate",
  Snapshot = "snapshot",
}

/** A bounded FIFO of the last indexes of appends sent and not yet acknowledged (flow control). */
export class Inflights {
  private buf: Index[] = [];
  private bytesInFlight = 0;
  private sizes: number[] = [];

  constructor(
    readonly maxCount: number,
    readonly maxBytes: number,
  ) {}

  add(last: Index, bytes: number): void {
    assert(!this.full(), "cannot add to full inflights");
    assert(
      this.buf.length === 0 || last >= this.buf[this.buf.length - 1]!,
      "inflights must be added in order",
    );
    this.buf.push(last);
    this.sizes.push(bytes);
    this.bytesInFlight += bytes;
  }

  /** Frees every append whose last index is <= to (they were acknowledged). */
  freeLE(to: Index): void {
    let n = 0;
    while (n < this.buf.length && this.buf[n]! <= to) {
      this.bytesInFlight -= this.sizes[n]!;
      n++;
    }
    if (n > 0) {
      this.buf = this.buf.slice(n);
      this.sizes = this.sizes.slice(n);
    }
  }

  freeFirstOne(): void {
    if (this.buf.length === 0) return;
    this.bytesInFlight -= this.sizes[0]!;
    this.buf = this.buf.slice(1);
    this.sizes = this.sizes.slice(1);
  }

  full(): boolean {
    return this.buf.length >= this.maxCount || this.bytesInFlight >= this.maxBytes;
  }

  count(): number {
    return this.buf.length;
  }

  reset(): void {
    this.buf = [];
    this.sizes = [];
    this.bytesInFlight = 0;
  }
}

export class Progress {
  /** Highest index known to be replicated on the follower. */
  match: Index;
  /** Next index to send. */
  next: Index;
  state: ProgressState = ProgressState.Probe;
  /** In Snapshot state: the index of the snapshot being sent. */
  pendingSnapshot: Index = index(0);
  /** Ticks spent in Snapshot state; a lost snapshot is retried once this passes a bound. */
  snapshotTicks = 0;
  /** Set on any message from the follower; CheckQuorum reads and clears it each election timeout. */
  recentActive = false;
  /** In Probe state: an append was sent and its answer (or a heartbeat response) is awaited. */
  probeSent = false;
  readonly inflights: Inflights;
  isLearner: boolean;

  constructor(next: Index, inflights: Inflights, isLearner: boolean) {
    this.match = index(0);
    this.next = next;
    this.inflights = inflights;
    this.isLearner = isLearner;
  }

  private resetState(state: ProgressState): void {
    this.probeSent = false;
    this.pendingSnapshot = index(0);
    this.snapshotTicks = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    // After a snapshot, resume right after it (or after match if further); else after match.
    if (this.state === ProgressState.Snapshot) {
      const pending = this.pendingSnapshot;
      this.resetState(ProgressState.Probe);
      this.next = index(Math.max(this.match + 1, pending + 1));
    } else {
      this.resetState(ProgressState.Probe);
      this.next = index(this.match + 1);
    }
  }

  becomeReplicate(): void {
    this.resetState(ProgressState.Replicate);
    this.next = index(this.match + 1);
  }

  becomeSnapshot(snapshotIndex: Index): void {
    this.resetState(ProgressState.Snapshot);
    this.pendingSnapshot = snapshotIndex;
  }

  /** The follower acknowledged up to n. Returns false when the ack is stale (n <= match). */
  maybeUpdate(n: Index): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.probeSent = false;
    }
    this.next = index(Math.max(this.next, n + 1));
    return updated;
  }

  /** Optimistically advance next after sending entries up to n (Replicate state pipelining). */
  optimisticUpdate(n: Index): void {
    this.next = index(n + 1);
  }

  /**
   * The follower rejected an append at `rejected`; `matchHint` is where the logs may match. Returns false
   * when the rejection is stale (it answers an append we no longer care about).
   */
  maybeDecrTo(rejected: Index, matchHint: Index): boolean {
    if (this.state === ProgressState.Replicate) {
      // In pipelining, a rejection of anything at or below match is stale.
      if (rejected <= this.match) return false;
      this.next = index(this.match + 1);
      return true;
    }
    // In probe state only a rejection of the append just sent (next - 1) counts.
    if (this.next - 1 !== rejected) return false;
    this.next = index(Math.max(Math.min(rejected, matchHint + 1), this.match + 1));
    this.probeSent = false;
    return true;
  }

  /** Whether sending appends to this follower must wait (flow control). */
  isPaused(): boolean {
    switch (this.state) {
      case ProgressState.Probe:
        return this.probeSent;
      case ProgressState.Replicate:
        return this.inflights.full();
      case ProgressState.Snapshot:
        return true;
    }
  }
}
