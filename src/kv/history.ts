// The event history and the watchers fed from it. Every revision's events are kept, grouped, back to the
// compact revision; a watch replays them from its start revision and then receives each new revision as it
// is applied, in order, one batch per revision (etcd's watchable store, without its unsynced-watcher
// machinery: delivery here is synchronous, so a watcher never lags behind the store).
import { create } from "@bufbuild/protobuf";
import { type Event, EventSchema } from "../gen/zsha/kv/v1/kv_pb.js";
import { CompactedError, type KvError } from "./errors.js";
import { type KeySelector, keyString, selects } from "./keys.js";
import { type Revision, revision } from "./types.js";

/** All events of one revision, in the order the command produced them. */
export interface RevisionEvents {
  readonly revision: Revision;
  readonly events: readonly Event[];
}

export interface WatchOptions {
  readonly key: Uint8Array;
  /** Every key starting with `key`. */
  readonly prefix?: boolean;
  /** Replay from this revision; 0 or absent: only what happens from now on. */
  readonly startRevision?: Revision;
  /** Include each event's previous key-value. */
  readonly prevKv?: boolean;
}

/** Where a watcher's events go. Called synchronously while a command applies: it must not throw or block. */
export interface WatchSink {
  onEvents(batch: RevisionEvents): void;
  /** The store ended the watch (compaction passed it after a snapshot install, or the sink threw). */
  onCancel?(reason: KvError | Error): void;
}

export interface Watcher {
  readonly id: number;
  readonly canceled: boolean;
  cancel(): void;
}

class WatcherImpl implements Watcher {
  canceled = false;
  /** The next revision this watcher has not seen yet. */
  next: Revision;

  constructor(
    readonly id: number,
    readonly selector: KeySelector,
    readonly prevKv: boolean,
    start: Revision,
    readonly sink: WatchSink,
    private readonly hub: WatchHub,
  ) {
    this.next = start;
  }

  cancel(): void {
    if (this.canceled) return;
    this.canceled = true;
    this.hub.forget(this);
  }
}

export class WatchHub {
  /** Revisions in increasing order; only revisions that had events. */
  #history: RevisionEvents[] = [];
  #compactRevision: Revision = revision(0);
  readonly #watchers = new Map<number, WatcherImpl>();
  #nextWatchId = 1;

  get compactRevision(): Revision {
    return this.#compactRevision;
  }

  get watcherCount(): number {
    return this.#watchers.size;
  }

  /** Every kept event, oldest first. */
  history(): readonly RevisionEvents[] {
    return this.#history;
  }

  /** Replaces the history (snapshot install). Watchers catch up from it or are canceled as compacted. */
  reset(history: RevisionEvents[], compactRevision: Revision, current: Revision): void {
    this.#history = history;
    this.#compactRevision = compactRevision;
    for (const w of [...this.#watchers.values()]) {
      if (w.next < compactRevision) {
        w.cancel();
        w.sink.onCancel?.(new CompactedError("watch", w.next, compactRevision));
      } else {
        this.#replay(w, current);
      }
    }
  }

  /**
   * Starts a watch at `current` (the store's revision). Throws CompactedError when the start revision is
   * older than the oldest kept revision.
   */
  watch(opts: WatchOptions, sink: WatchSink, current: Revision): Watcher {
    const start = opts.startRevision && opts.startRevision > 0 ? opts.startRevision : revision(current + 1);
    if (start < this.#compactRevision) throw new CompactedError("watch", start, this.#compactRevision);
    const selector = { key: keyString(opts.key), prefix: opts.prefix ?? false };
    const w = new WatcherImpl(this.#nextWatchId++, selector, opts.prevKv ?? false, start, sink, this);
    this.#watchers.set(w.id, w);
    this.#replay(w, current);
    return w;
  }

  forget(w: WatcherImpl): void {
    this.#watchers.delete(w.id);
  }

  /** Records one applied revision and delivers it. */
  append(batch: RevisionEvents): void {
    const last = this.#history.at(-1);
    if (last && last.revision >= batch.revision) {
      throw new Error(`watch history: revision ${batch.revision} appended after ${last.revision}`);
    }
    this.#history.push(batch);
    for (const w of [...this.#watchers.values()]) {
      if (w.next <= batch.revision) this.#deliver(w, batch);
    }
  }

  /** Drops every event older than `rev`. */
  compact(rev: Revision): void {
    this.#compactRevision = rev;
    let drop = 0;
    while (drop < this.#history.length && (this.#history[drop] as RevisionEvents).revision < rev) drop++;
    if (drop > 0) this.#history = this.#history.slice(drop);
  }

  #replay(w: WatcherImpl, current: Revision): void {
    for (let i = this.#firstAtOrAfter(w.next); i < this.#history.length && !w.canceled; i++) {
      this.#deliver(w, this.#history[i] as RevisionEvents);
    }
    if (!w.canceled && w.next <= current) w.next = revision(current + 1);
  }

  #firstAtOrAfter(rev: Revision): number {
    let lo = 0;
    let hi = this.#history.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.#history[mid] as RevisionEvents).revision < rev) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  #deliver(w: WatcherImpl, batch: RevisionEvents): void {
    w.next = revision(batch.revision + 1);
    const events: Event[] = [];
    for (const e of batch.events) {
      if (!e.kv || !selects(w.selector, keyString(e.kv.key))) continue;
      events.push(w.prevKv || !e.prevKv ? e : create(EventSchema, { type: e.type, kv: e.kv }));
    }
    if (events.length === 0) return;
    try {
      w.sink.onEvents({ revision: batch.revision, events });
    } catch (err) {
      // A sink that throws must not stop the state machine: that watch ends, the store carries on.
      w.cancel();
      w.sink.onCancel?.(err instanceof Error ? err : new Error(String(err)));
    }
  }
}
