// One simulated member: a RawNode driven by virtual time, following the Ready contract with a simulated
// fsync latency. A crash (power loss) loses everything not yet persisted, including a Ready in flight.

import {
  type Entry,
  index,
  type MemoryStorage,
  type Message,
  type NodeId,
  type RaftConfig,
  RawNode,
  type ReadState,
  type Ready,
} from "../../src/raft/index.js";
import { KvMachine } from "./kv-machine.js";
import type { Rng } from "./rng.js";
import type { ScheduledEvent, Scheduler } from "./scheduler.js";

export interface NodeParams {
  readonly tickMs: number;
  /** This node's clock rate: its ticks come every tickMs * tickFactor of real (virtual) time. */
  readonly tickFactor: number;
  readonly minFsyncMs: number;
  readonly maxFsyncMs: number;
  /** Take a snapshot after this many applied entries; keep `keepEntries` entries behind it. */
  readonly snapshotEvery: number;
  readonly keepEntries: number;
  readonly raft: Omit<RaftConfig, "id" | "storage" | "random" | "applied" | "logger">;
}

export interface NodeHost {
  send(from: NodeId, m: Message): void;
  onReady(node: SimRaftNode, rd: Ready): void;
  onApplied(node: SimRaftNode, e: Entry): void;
  onReadState(node: SimRaftNode, rs: ReadState): void;
  onEvent(node: SimRaftNode): void;
  onError(node: SimRaftNode, err: unknown): void;
}

export class SimRaftNode {
  /** The durable disk: survives crashes. */
  readonly storage: MemoryStorage;
  rn: RawNode | undefined;
  sm = new KvMachine();
  alive = false;
  /** Bumped on every crash: events scheduled by an earlier life are ignored. */
  incarnation = 0;
  private inFlight: Ready | undefined;
  private timers: ScheduledEvent[] = [];

  constructor(
    readonly id: NodeId,
    storage: MemoryStorage,
    readonly params: NodeParams,
    private readonly sched: Scheduler,
    private readonly rng: Rng,
    private readonly host: NodeHost,
  ) {
    this.storage = storage;
  }

  start(): void {
    this.alive = true;
    const snap = this.storage.snapshot();
    this.sm = KvMachine.restore(snap.data, snap.meta.index);
    this.guard(() => {
      this.rn = new RawNode({
        ...this.params.raft,
        id: this.id,
        storage: this.storage,
        random: () => this.rng.next(),
      });
    });
    this.scheduleTick();
  }

  crash(): void {
    this.alive = false;
    this.incarnation++;
    for (const t of this.timers) t.cancelled = true;
    this.timers = [];
    this.inFlight = undefined;
    this.rn = undefined;
  }

  private scheduleTick(): void {
    const life = this.incarnation;
    this.timers = this.timers.filter((t) => !t.cancelled && t.at >= this.sched.now);
    this.timers.push(
      this.sched.after(this.params.tickMs * this.params.tickFactor, () => {
        if (!this.alive || life !== this.incarnation) return;
        this.guard(() => this.rn!.tick());
        this.afterEvent();
        if (this.alive && life === this.incarnation) this.scheduleTick();
      }),
    );
  }

  deliver(m: Message): void {
    if (!this.alive || !this.rn) return;
    this.guard(() => this.rn!.step(m));
    this.afterEvent();
  }

  /** Runs `f` against the live RawNode (client calls); exceptions other than assertions reach the caller. */
  withNode<T>(f: (rn: RawNode) => T): T {
    if (!this.alive || !this.rn) throw new Error(`${this.id} is down`);
    try {
      return f(this.rn);
    } finally {
      this.afterEvent();
    }
  }

  afterEvent(): void {
    if (!this.alive || !this.rn) return;
    this.host.onEvent(this);
    this.processReady();
  }

  private guard(f: () => void): void {
    try {
      f();
    } catch (err) {
      this.host.onError(this, err);
    }
  }

  private processReady(): void {
    const rn = this.rn;
    if (!rn || this.inFlight || !rn.hasReady()) return;
    const rd = rn.ready();
    this.inFlight = rd;
    this.host.onReady(this, rd);
    const life = this.incarnation;
    const needsDisk = rd.entries.length > 0 || rd.hardState !== undefined || rd.snapshot !== undefined;
    if (!needsDisk) {
      this.complete(rd);
      return;
    }
    const ev = this.sched.after(this.rng.real(this.params.minFsyncMs, this.params.maxFsyncMs), () => {
      if (!this.alive || life !== this.incarnation) return;
      this.complete(rd);
    });
    this.timers.push(ev);
  }

  /** The Ready contract: persist, then send, then apply, then advance. */
  private complete(rd: Ready): void {
    this.guard(() => {
      if (rd.snapshot) this.storage.applySnapshot(rd.snapshot);
      this.storage.append(rd.entries);
      if (rd.hardState) this.storage.setHardState(rd.hardState);
      for (const m of rd.messages) this.host.send(this.id, m);
      if (rd.snapshot) this.sm = KvMachine.restore(rd.snapshot.data, rd.snapshot.meta.index);
      for (const e of rd.committedEntries) {
        if (e.index <= this.sm.applied) continue;
        this.sm.apply(e);
        this.host.onApplied(this, e);
      }
      for (const rs of rd.readStates) this.host.onReadState(this, rs);
      this.inFlight = undefined;
      this.rn!.advance();
      this.maybeSnapshot();
    });
    this.afterEvent();
  }

  private maybeSnapshot(): void {
    const snapIndex = this.storage.snapshot().meta.index;
    const applied = this.sm.applied;
    if (applied - snapIndex < this.params.snapshotEvery) return;
    this.storage.createSnapshot(applied, this.rn!.status().config, this.sm.serialize());
    const compactTo = applied - this.params.keepEntries;
    if (compactTo > this.storage.firstIndex()) this.storage.compact(index(compactTo));
  }
}
