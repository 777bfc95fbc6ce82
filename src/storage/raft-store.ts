// The durable Raft store: the log, hard state and snapshot on LevelDB (npm `level`), behind the synchronous
// `Storage` interface the core reads. Like etcd's MemoryStorage in front of its WAL, reads come from an
// in-memory mirror; the mirror changes only once the write is on disk, so the core never sees state a
// crash could take back.
//
// Every write is a LevelDB batch with `sync: true` (the fsync that makes a vote or an acknowledged append
// binding: Raft paper §5.1, "updated on stable storage before responding to RPCs"), unless the Ready
// itself says no sync is needed (`mustSync: false`, see SaveRequest). Group commit: the
// writes queued while a batch is being written go together into the next single batch, so one fsync covers
// everything that arrived meanwhile; writes resolve in the order they were made.

import { Level } from "level";
import {
  type ConfState,
  type Entry,
  type HardState,
  type Index,
  type InitialState,
  index,
  MemoryStorage,
  NONE,
  type Snapshot,
  type Storage,
  type Term,
  term,
} from "../raft/index.js";
import { InvalidWriteError, StorageLockedError, StorageUnavailableError } from "./errors.js";
import { type LoadedState, loadState, type RaftDb } from "./load.js";
import {
  type BatchOp,
  type Effect,
  type MirrorState,
  Planner,
  type SaveRequest,
  type Write,
} from "./plan.js";
import { frame, SNAPSHOT_KEY } from "./record.js";
import { encodeSnapshot } from "./values.js";

export type { SaveRequest };

/** One durable batch, reported after its fsync. */
export interface BatchInfo {
  /** Writes (save/createSnapshot/compact calls) the batch carried. */
  readonly writes: number;
  /** LevelDB operations (puts and deletes) in it. */
  readonly ops: number;
  readonly bytes: number;
  /** Whether it was written with an fsync (false only when every write in it had `mustSync: false`). */
  readonly synced: boolean;
  readonly durationMs: number;
}

export interface RaftStoreOptions {
  /** Called after each durable batch (metrics, tests). */
  readonly onBatch?: (info: BatchInfo) => void;
  /** Monotonic clock in ms for batch durations; injected, defaults to performance.now. */
  readonly now?: () => number;
}

export interface RaftStoreStats {
  readonly batches: number;
  readonly writes: number;
}

interface Pending {
  readonly write: Write;
  readonly resolve: () => void;
  readonly reject: (e: Error) => void;
}

const ZERO_SNAPSHOT: Snapshot = {
  meta: { index: index(0), term: term(0), confState: { voters: [], learners: [] } },
  data: new Uint8Array(0),
};
const ZERO_HARD_STATE: HardState = { term: term(0), vote: NONE, commit: index(0) };

export class RaftStore implements Storage {
  private readonly log: MemoryStorage;
  private snap: Snapshot;
  private hs: HardState;
  private queue: Pending[] = [];
  /** The running flush loop, if any. */
  private flushing: Promise<void> | undefined;
  private failure: Error | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;
  private batches = 0;
  private writes = 0;

  private constructor(
    readonly dir: string,
    private readonly db: RaftDb,
    loaded: LoadedState,
    private readonly opts: RaftStoreOptions,
  ) {
    this.snap = loaded.snapshot ?? ZERO_SNAPSHOT;
    this.hs = loaded.hardState ?? ZERO_HARD_STATE;
    this.log = mirrorLog(this.snap, loaded.entries);
  }

  /**
   * Opens (or creates) the store in `dir`, reading and verifying everything in it. Throws
   * StorageCorruptError for data this store could not have written, StorageLockedError when the directory
   * is already open.
   */
  static async open(dir: string, opts: RaftStoreOptions = {}): Promise<RaftStore> {
    const db: RaftDb = new Level<Buffer, Buffer>(dir, { keyEncoding: "buffer", valueEncoding: "buffer" });
    try {
      await db.open();
    } catch (e) {
      const cause = (e as { cause?: { code?: string } }).cause;
      if (cause?.code === "LEVEL_LOCKED") throw new StorageLockedError(dir, { cause: e });
      throw e;
    }
    try {
      const loaded = await loadState(db, dir);
      if (loaded.empty) {
        // A fresh store records its (empty) snapshot at once, so that from now on a missing snapshot
        // record always means lost data.
        const value = frame(SNAPSHOT_KEY, encodeSnapshot(ZERO_SNAPSHOT));
        await db.batch([{ type: "put", key: SNAPSHOT_KEY, value }], { sync: true });
      }
      return new RaftStore(dir, db, loaded, opts);
    } catch (e) {
      await db.close();
      throw e;
    }
  }

  // --- Storage (synchronous reads of the durable state) ---

  initialState(): InitialState {
    return { hardState: this.hs, confState: this.snap.meta.confState };
  }
  entries(lo: Index, hi: Index, maxSize: number): Entry[] {
    return this.log.entries(lo, hi, maxSize);
  }
  term(i: Index): Term {
    return this.log.term(i);
  }
  lastIndex(): Index {
    return this.log.lastIndex();
  }
  firstIndex(): Index {
    return this.log.firstIndex();
  }
  snapshot(): Snapshot {
    return this.snap;
  }
  hardState(): HardState {
    return this.hs;
  }

  // --- Writes (each resolves once durable and visible through the reads above) ---

  /**
   * Persists one Ready: the snapshot (if newer than ours, it replaces the whole log), then the entries
   * (truncating any conflicting suffix), then the hard state.
   */
  save(req: SaveRequest): Promise<void> {
    return this.enqueue({ kind: "save", req });
  }

  /** Records a snapshot of the state machine at applied index i (committed, not newer than the last index). */
  createSnapshot(i: Index, confState: ConfState, data: Uint8Array): Promise<void> {
    return this.enqueue({ kind: "createSnapshot", index: i, confState, data });
  }

  /** Discards entries before `i` (which the snapshot must cover); entry i stays as the log's dummy. */
  compact(i: Index): Promise<void> {
    return this.enqueue({ kind: "compact", index: i });
  }

  /**
   * Founds a new cluster on a fresh store, as MemoryStorage.bootstrap does: a snapshot at index 1, term 1
   * holding the initial configuration, and hard state term 1, commit 1.
   */
  async bootstrap(confState: ConfState, data: Uint8Array = new Uint8Array(0)): Promise<void> {
    if (
      this.snap.meta.index !== 0 ||
      this.log.lastIndex() !== 0 ||
      this.hs.term !== 0 ||
      this.flushing !== undefined
    ) {
      throw new InvalidWriteError(`bootstrap needs a fresh store, and ${this.dir} already holds a log`);
    }
    await this.save({
      snapshot: { meta: { index: index(1), term: term(1), confState }, data },
      hardState: { term: term(1), vote: NONE, commit: index(1) },
    });
  }

  stats(): RaftStoreStats {
    return { batches: this.batches, writes: this.writes };
  }

  /** Waits for queued writes, then closes the database (releasing the directory lock). */
  close(): Promise<void> {
    this.closed = true;
    this.closing ??= (async () => {
      await this.flushing;
      await this.db.close();
    })();
    return this.closing;
  }

  private enqueue(write: Write): Promise<void> {
    if (this.closed) return Promise.reject(new StorageUnavailableError(`raft store ${this.dir} is closed`));
    if (this.failure) return Promise.reject(this.unusable());
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ write, resolve, reject });
      // Start on the next microtask so writes made in the same synchronous run share the first batch.
      this.flushing ??= Promise.resolve().then(() => this.flush());
    });
  }

  private unusable(): StorageUnavailableError {
    return new StorageUnavailableError(`raft store ${this.dir} failed a write and must be reopened`, {
      cause: this.failure,
    });
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0 && !this.failure) {
      const run = this.queue;
      this.queue = [];
      try {
        await this.writeRun(run);
      } catch (e) {
        // A failed write (or a broken invariant) may leave disk and mirror apart: stop for good.
        this.failure = e as Error;
        for (const p of run) p.reject(this.unusable()); // no effect on those already settled
      }
    }
    if (this.failure) for (const p of this.queue.splice(0)) p.reject(this.unusable());
    this.flushing = undefined;
  }

  /** Writes one run of queued writes as a single fsynced batch, then updates the mirror and resolves. */
  private async writeRun(run: Pending[]): Promise<void> {
    const planner = new Planner(this.mirrorState());
    const accepted: Pending[] = [];
    const effects: Effect[] = [];
    for (const p of run) {
      try {
        effects.push(...planner.plan(p.write));
        accepted.push(p);
      } catch (e) {
        if (!(e instanceof InvalidWriteError)) throw e;
        p.reject(e);
      }
    }
    if (accepted.length === 0) return;
    const now = this.opts.now ?? (() => performance.now());
    const start = now();
    const sync = accepted.some((p) => p.write.kind !== "save" || p.write.req.mustSync !== false);
    if (planner.ops.length > 0) await this.db.batch(planner.ops as BatchOp[], { sync });
    this.applyEffects(effects);
    this.batches++;
    this.writes += accepted.length;
    this.opts.onBatch?.({
      writes: accepted.length,
      ops: planner.ops.length,
      bytes: planner.bytes,
      synced: sync,
      durationMs: now() - start,
    });
    for (const p of accepted) p.resolve();
  }

  private mirrorState(): MirrorState {
    return { log: this.log, snapshot: this.snap, hardState: this.hs };
  }

  // Consecutive appends of one batch reach the mirror as one (MemoryStorage.append copies its array, so
  // one call per batch instead of one per write keeps a long log cheap under group commit).
  private applyEffects(effects: readonly Effect[]): void {
    let appending: Entry[] | undefined;
    const flushAppend = () => {
      if (appending) this.log.append(appending);
      appending = undefined;
    };
    for (const ef of effects) {
      switch (ef.kind) {
        case "append":
          appending = appending ? mergeAppends(appending, ef.entries) : [...ef.entries];
          break;
        case "hardState":
          this.hs = ef.hardState;
          this.log.setHardState(ef.hardState);
          break;
        case "snapshot":
          flushAppend();
          if (ef.replaceLog) this.log.applySnapshot(ef.snapshot);
          this.snap = ef.snapshot;
          break;
        case "compact":
          flushAppend();
          this.log.compact(ef.index);
          break;
      }
    }
    flushAppend();
  }
}

/**
 * What appending `a` then `b` leaves, as one append: `b` keeps the part of `a` before its first index.
 * (The planner has checked that `b` starts at most one past the end of `a`.)
 */
function mergeAppends(a: Entry[], b: readonly Entry[]): Entry[] {
  const offset = b[0]!.index - a[0]!.index;
  if (offset <= 0) return [...b];
  a.length = offset;
  for (const e of b) a.push(e);
  return a;
}

/**
 * Builds the in-memory log from what was loaded. Its dummy is the first entry on disk when the log reaches
 * at or below the snapshot (entries kept for slow followers), otherwise the snapshot itself.
 */
function mirrorLog(snap: Snapshot, entries: Entry[]): MemoryStorage {
  const log = new MemoryStorage();
  const first = entries[0];
  if (first && first.index <= snap.meta.index) {
    log.applySnapshot({
      meta: { index: first.index, term: first.term, confState: snap.meta.confState },
      data: new Uint8Array(0),
    });
    log.append(entries.slice(1));
  } else {
    log.applySnapshot(snap);
    log.append(entries);
  }
  return log;
}
