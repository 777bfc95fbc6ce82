// One seeded simulation run of a Raft cluster: members on a simulated network and clock, a client
// workload, an operator changing membership and transferring leadership, and a fault schedule (loss,
// duplication, delay spikes, symmetric and one-way partitions, crashes losing unsynced writes, clock-rate
// drift). Every event is followed by the Checker; at the end faults heal and liveness is required.

import {
  AssertionError,
  ConfChangeType,
  type Entry,
  MemoryStorage,
  type Message,
  type NodeId,
  nodeId,
  ProposalError,
  type ReadState,
  type Ready,
  StateType,
} from "../../src/raft/index.js";
import { Checker } from "./checker.js";
import { decodeWrite, encodeWrite } from "./kv-machine.js";
import { CALM, SimNetwork } from "./network.js";
import { type NodeHost, type NodeParams, SimRaftNode } from "./raft-node.js";
import { Rng } from "./rng.js";
import { Scheduler } from "./scheduler.js";
import { Workload } from "./workload.js";

export interface SimOptions {
  readonly seed: number;
  readonly members: 3 | 5;
  /** Simulated ms of faults before healing. */
  readonly faultMs?: number;
  /** Simulated ms after healing within which a write must commit everywhere. */
  readonly livenessMs?: number;
  /** Keep a trace of the last events (costs time; on by default). */
  readonly traceSize?: number;
}

export interface SimResult {
  readonly seed: number;
  readonly members: number;
  readonly violations: string[];
  readonly trace: string[];
  readonly stats: Record<string, number>;
}

const TICK_MS = 100;
/** The write proposed after healing to prove the cluster commits again (client 0 is never a workload client). */
const MARKER = { client: 0, seq: 0, key: "liveness-marker", value: "m" };

export class ClusterSim implements NodeHost {
  readonly sched = new Scheduler();
  readonly rng: Rng;
  readonly net: SimNetwork<Message>;
  readonly nodes = new Map<NodeId, SimRaftNode>();
  readonly checker: Checker;
  readonly workload: Workload;
  private readonly removed = new Set<NodeId>();
  private traceBuf: string[] = [];
  private readonly traceSize: number;
  private nextId: number;
  private readonly params: Omit<NodeParams, "tickFactor">;
  readonly stats = { crashes: 0, partitions: 0, transfers: 0, confChanges: 0, snapshotsSent: 0 };

  constructor(private readonly opts: SimOptions) {
    this.rng = new Rng(opts.seed);
    this.traceSize = opts.traceSize ?? 300;
    this.checker = new Checker(
      (what) => this.trace(`VIOLATION ${what}`),
      () => this.nodes.values(),
    );
    this.net = new SimNetwork(this.sched, this.rng.fork(), (to, m) =>
      this.nodes.get(to as NodeId)?.deliver(m),
    );
    this.workload = new Workload(
      {
        sched: this.sched,
        liveNodes: () => [...this.nodes.values()].filter((n) => n.alive),
        violation: (w) => this.checker.violation(w),
        trace: (w) => this.trace(w),
      },
      this.rng.fork(),
    );
    const r = this.rng;
    // Per-seed shape of the cluster: flow-control limits and snapshot cadence vary so that pipelining,
    // probing, tiny appends and InstallSnapshot are all exercised across seeds.
    this.params = {
      tickMs: TICK_MS,
      minFsyncMs: 0.5,
      maxFsyncMs: r.pick([2, 10, 40]),
      snapshotEvery: r.pick([8, 30, 200]),
      keepEntries: r.pick([0, 3, 40]),
      raft: {
        electionTick: 10,
        heartbeatTick: 1,
        maxSizePerMsg: r.pick([1, 1, 64, 4096, 1 << 20]),
        maxInflightMsgs: r.pick([1, 4, 256]),
        checkQuorum: true,
        preVote: true,
        learnerPromotionMaxLag: 20,
      },
    };
    this.freshLeaderCrash = r.pick([0.05, 0.3, 0.6]);
    const voters = Array.from({ length: opts.members }, (_, i) => nodeId(`n${i + 1}`));
    this.nextId = opts.members + 1;
    for (const id of voters) this.addNode(id, MemoryStorage.bootstrap({ voters, learners: [] }));
  }

  private addNode(id: NodeId, storage: MemoryStorage): SimRaftNode {
    // Clock-rate drift: each member's ticks run up to 20 % fast or slow.
    const tickFactor = this.rng.real(0.8, 1.2);
    const node = new SimRaftNode(
      id,
      storage,
      { ...this.params, tickFactor },
      this.sched,
      this.rng.fork(),
      this,
    );
    this.nodes.set(id, node);
    node.start();
    return node;
  }

  // ---- NodeHost -----------------------------------------------------------------------------------------

  send(from: NodeId, m: Message): void {
    if (m.snapshot) this.stats.snapshotsSent++;
    this.net.send(from, m.to, m);
  }

  onReady(node: SimRaftNode, rd: Ready): void {
    if (
      rd.softState?.state === StateType.Leader &&
      this.inFaultPhase &&
      this.rng.chance(this.freshLeaderCrash)
    ) {
      // A leader that dies right after its election, before its first entries spread: the history of the
      // Raft paper's Figure 8, where counting replicas of an old-term entry would lose it. (80 ms spans fsync + delivery.)
      this.sched.after(this.rng.real(0, 80), () => this.crash(node, this.rng.int(200, 3000)));
    }
    if (rd.softState)
      this.trace(
        `${node.id} is ${rd.softState.state} (lead ${rd.softState.lead || "-"}) term ${node.rn!.raft.term}`,
      );
    this.checker.onReady(node, rd);
  }

  onApplied(node: SimRaftNode, e: Entry): void {
    this.checker.onApplied(node, e);
    const cmd = decodeWrite(e);
    if (cmd?.client === MARKER.client) this.markerIndex ??= e.index;
    else if (cmd) this.workload.onApplied(node, cmd, e.index);
  }

  onReadState(node: SimRaftNode, rs: ReadState): void {
    this.workload.onReadState(node, rs);
  }

  onEvent(node: SimRaftNode): void {
    this.checker.checkNode(node);
  }

  onError(node: SimRaftNode, err: unknown): void {
    if (err instanceof AssertionError) {
      this.checker.violation(`${node.id} stopped on an assertion: ${err.message}`);
      node.crash();
      return;
    }
    throw err;
  }

  trace(what: string): void {
    if (this.traceSize === 0) return;
    this.traceBuf.push(`${(this.sched.now / 1000).toFixed(3).padStart(8)}s ${what}`);
    if (this.traceBuf.length > this.traceSize * 2) this.traceBuf = this.traceBuf.slice(-this.traceSize);
  }

  // ---- the run ------------------------------------------------------------------------------------------

  /** Where the liveness marker was committed (voters may also reach it through a snapshot). */
  private markerIndex: number | undefined;
  private markerReached(n: SimRaftNode): boolean {
    return this.markerIndex !== undefined && n.alive && n.sm.applied >= this.markerIndex;
  }
  private partitionGen = 0;
  private inFaultPhase = true;
  /** Per seed: the chance that a freshly elected leader crashes within 80 ms. */
  private readonly freshLeaderCrash: number;

  run(): SimResult {
    const faultMs = this.opts.faultMs ?? 30_000;
    const livenessMs = this.opts.livenessMs ?? 20_000;
    this.workload.start(3);
    this.scheduleFaults(faultMs);
    this.scheduleOperator(faultMs);
    this.sched.runUntil(faultMs, () => this.checker.violations.length > 0);
    if (this.checker.violations.length === 0) this.healAndCheckLiveness(livenessMs);
    return {
      seed: this.opts.seed,
      members: this.opts.members,
      violations: this.checker.violations,
      trace: this.traceBuf.slice(-this.traceSize),
      stats: { ...this.stats, ...this.workload.stats, netSent: this.net.sent, netDropped: this.net.dropped },
    };
  }

  private members(): SimRaftNode[] {
    return [...this.nodes.values()].filter((n) => !this.removed.has(n.id));
  }

  leader(): SimRaftNode | undefined {
    let best: SimRaftNode | undefined;
    for (const n of this.nodes.values()) {
      const r = n.rn?.raft;
      if (n.alive && r?.state === StateType.Leader && (!best || r.term > best.rn!.raft.term)) best = n;
    }
    return best;
  }

  private scheduleFaults(until: number): void {
    const r = this.rng;
    // How hostile this seed's network is.
    const loss = r.pick([0, 0.01, 0.05, 0.15]);
    const dup = r.pick([0, 0.01, 0.05]);
    const base = {
      ...CALM,
      loss,
      duplicate: dup,
      minDelay: 1,
      maxDelay: r.pick([5, 20, 60]),
      spike: 0.02,
      spikeDelay: 500,
    };
    this.net.faults = base;
    let bursts = 0;
    const step = () => {
      if (this.sched.now >= until || this.checker.violations.length > 0) return;
      const alive = [...this.nodes.values()].filter((n) => n.alive && !this.removed.has(n.id));
      const roll = r.next();
      if (roll < 0.3 && alive.length > 0) {
        // Crash (power loss) of a random member, preferring the leader half the time.
        const victim = r.chance(0.5) ? (this.leader() ?? r.pick(alive)) : r.pick(alive);
        this.crash(victim, r.int(200, 5000));
      } else if (roll < 0.55) {
        this.partitionRandomly(r.int(500, 8000));
      } else if (roll < 0.65) {
        // A burst of loss and latency (e.g. a Ceph rebalance saturating the storage network). Bursts may
        // overlap; the base settings return when the last one ends.
        bursts++;
        this.net.faults = { ...base, loss: Math.max(base.loss, 0.3), spike: 0.5, spikeDelay: 500 };
        this.trace("network: loss 30 % and 500 ms spikes");
        this.sched.after(r.int(1000, 6000), () => {
          if (--bursts > 0) return;
          this.net.faults = base;
          this.trace("network: burst over");
        });
      }
      this.sched.after(r.int(300, 3000), step);
    };
    this.sched.after(r.int(500, 2000), step);
  }

  private crash(n: SimRaftNode, downMs: number): void {
    if (!n.alive) return;
    this.stats.crashes++;
    this.trace(`${n.id} CRASH (down ${downMs} ms)`);
    n.crash();
    this.sched.after(downMs, () => this.restart(n));
  }

  private restart(n: SimRaftNode): void {
    if (n.alive || this.removed.has(n.id)) return;
    this.trace(`${n.id} restart`);
    this.checker.onRestart(n.id);
    n.start();
  }

  private partitionRandomly(ms: number): void {
    const r = this.rng;
    const ids = [...this.nodes.keys()];
    const kind = r.int(0, 2);
    this.stats.partitions++;
    // One partition at a time: a new one replaces the previous, and each heals only itself.
    this.net.heal();
    const gen = ++this.partitionGen;
    if (kind === 0) {
      // Symmetric split into two random groups.
      const a = ids.filter(() => r.chance(0.5));
      const b = ids.filter((id) => !a.includes(id));
      this.net.partition(a, b);
      this.trace(`partition {${a.join(",")}} | {${b.join(",")}}`);
    } else if (kind === 1) {
      // Isolate the leader half the time: it keeps taking local writes that it cannot replicate.
      const x = r.chance(0.5) ? (this.leader()?.id ?? r.pick(ids)) : r.pick(ids);
      this.net.partition(
        [x],
        ids.filter((id) => id !== x),
      );
      this.trace(`isolate ${x}`);
    } else {
      // One-way: x can hear everybody but nobody hears x (or the reverse).
      const x = r.pick(ids);
      const out = r.chance(0.5);
      for (const y of ids) if (y !== x) out ? this.net.blockOneWay(x, y) : this.net.blockOneWay(y, x);
      this.trace(`one-way: ${x} ${out ? "cannot send" : "cannot receive"}`);
    }
    this.sched.after(ms, () => {
      if (gen !== this.partitionGen) return;
      this.net.heal();
      this.trace("partition healed");
    });
  }

  /** Membership changes and leadership transfers, as an operator would issue them, during the faults. */
  private scheduleOperator(until: number): void {
    const r = this.rng;
    const step = () => {
      if (this.sched.now >= until || this.checker.violations.length > 0) return;
      const lead = this.leader();
      if (lead) {
        const cs = lead.rn!.raft.tracker.confState();
        try {
          if (cs.learners.length > 0 && r.chance(0.6)) {
            const learner = cs.learners[0]!;
            lead.withNode((rn) => rn.proposeConfChange({ type: ConfChangeType.AddNode, nodeId: learner }));
            this.trace(`operator: promote ${learner} via ${lead.id}`);
            this.stats.confChanges++;
          } else if (cs.voters.length + cs.learners.length <= this.opts.members && r.chance(0.4)) {
            const id = nodeId(`n${this.nextId++}`);
            lead.withNode((rn) => rn.proposeConfChange({ type: ConfChangeType.AddLearner, nodeId: id }));
            this.addNode(id, new MemoryStorage());
            this.trace(`operator: add learner ${id} via ${lead.id}`);
            this.stats.confChanges++;
          } else if (cs.voters.length > this.opts.members && r.chance(0.5)) {
            const victim = r.pick(cs.voters);
            lead.withNode((rn) => rn.proposeConfChange({ type: ConfChangeType.RemoveNode, nodeId: victim }));
            this.trace(`operator: remove ${victim} via ${lead.id}`);
            this.stats.confChanges++;
            this.retireWhenRemoved(victim);
          } else if (r.chance(0.3)) {
            const others = cs.voters.filter((v) => v !== lead.id);
            if (others.length > 0) {
              const to = r.pick(others);
              lead.withNode((rn) => rn.transferLeadership(to));
              this.trace(`operator: transfer leadership ${lead.id} -> ${to}`);
              this.stats.transfers++;
            }
          }
        } catch (e) {
          if (!(e instanceof ProposalError)) throw e;
          this.trace(`operator: refused (${e.reason})`);
        }
      }
      this.sched.after(r.int(1000, 4000), step);
    };
    this.sched.after(r.int(1000, 3000), step);
  }

  /** An operator shuts a removed member down once some leader has applied its removal. */
  private retireWhenRemoved(id: NodeId): void {
    const check = () => {
      const lead = this.leader();
      const cs = lead?.rn?.raft.tracker.confState();
      if (
        cs &&
        lead &&
        lead.rn!.raft.pendingConfIndex <= lead.rn!.raft.log.applied &&
        !cs.voters.includes(id) &&
        !cs.learners.includes(id)
      ) {
        this.removed.add(id);
        const n = this.nodes.get(id);
        if (n?.alive) n.crash();
        this.trace(`operator: ${id} retired`);
        return;
      }
      this.sched.after(500, check);
    };
    this.sched.after(500, check);
  }

  private healAndCheckLiveness(livenessMs: number): void {
    this.inFaultPhase = false;
    this.partitionGen++;
    this.net.heal();
    this.net.faults = { ...CALM };
    for (const n of this.members()) if (!n.alive) this.restart(n);
    this.trace("HEAL: all faults cleared, all members up");
    const healedAt = this.sched.now;
    const deadline = healedAt + livenessMs;
    let markerProposed = false;
    const voters = () => {
      const lead = this.leader();
      const cs = lead?.rn?.raft.tracker.confState();
      return cs ? cs.voters.map((v) => this.nodes.get(v)!).filter((n) => n && !this.removed.has(n.id)) : [];
    };
    const tryMarker = () => {
      const lead = this.leader();
      if (!lead || markerProposed) return;
      try {
        lead.withNode((rn) => rn.propose(encodeWrite(MARKER)));
        markerProposed = true;
        this.trace(`liveness: marker proposed via ${lead.id}`);
      } catch (e) {
        if (!(e instanceof ProposalError)) throw e;
      }
    };
    const poll = () => {
      if (this.sched.now >= deadline) return;
      tryMarker();
      this.sched.after(200, poll);
    };
    this.sched.after(200, poll);
    this.sched.runUntil(deadline, () => {
      if (this.checker.violations.length > 0) return true;
      const vs = voters();
      return markerProposed && vs.length > 0 && vs.every((n) => this.markerReached(n));
    });
    if (this.checker.violations.length > 0) return;
    this.workload.stop();
    const vs = voters();
    if (!markerProposed || vs.length === 0 || !vs.every((n) => this.markerReached(n))) {
      const missing = vs.filter((n) => !this.markerReached(n)).map((n) => n.id);
      this.checker.violation(
        `liveness: ${livenessMs} ms after healing, ${markerProposed ? `the marker write is not applied on ${missing.join(",") || "any voter"}` : "no leader accepted a write"}`,
      );
      return;
    }
    this.trace(
      `liveness: marker applied on all voters ${((this.sched.now - healedAt) / 1000).toFixed(2)} s after heal`,
    );
    // Writes acknowledged after the marker may still be on their way to some voters: let them arrive.
    // (Computed afresh after each event: a write may be acknowledged while we wait.)
    const maxAcked = () => Math.max(0, ...this.workload.acked.values());
    this.sched.runUntil(this.sched.now + 5000, () => voters().every((n) => n.sm.applied >= maxAcked()));
    this.workload.checkDurability(voters());
  }
}

export function runSeed(opts: SimOptions): SimResult {
  return new ClusterSim(opts).run();
}
