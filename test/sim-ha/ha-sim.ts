// One seeded run of the whole HA stack in one process: per node a simulated member (real Raft core, KvStore
// and Lessor) and a real HaAgent driving its SimHypervisor, all hosts sharing one SimWorld (and so one disk
// image), on a simulated network and one virtual clock that every node reads at its own drifting rate.
//
// Two schedules:
//  - "faults": power loss, symmetric and one-way partitions of the owner, the owner's agent frozen while its
//    VM runs on, libvirtd hung, start failures, a 60 s storm of 500 ms spikes and 30 % loss — and, all along,
//    live migrations the operator asks for (`zsha migrate`, from a seeded stream of their own so the faults
//    are the same with or without them); then all faults heal and the MN-VM must run again (one writer)
//    within the failover budget.
//  - "storm": only the storm, with the owner reachable throughout: the MN-VM must not move at all.
// After every event: never two hosts running the MN-VM with write access to its disk, and Raft's safety
// properties (test/sim/checker.ts).

import { create } from "@bufbuild/protobuf";
import { CommandSchema } from "../../src/gen/zsha/kv/v1/command_pb.js";
import { HaAgent } from "../../src/ha/agent.js";
import { DEFAULT_TIMING, type HaEnv, type HaLogLevel } from "../../src/ha/env.js";
import { encodeRecord, KEYS, type Migration } from "../../src/ha/records.js";
import { loadView } from "../../src/ha/view.js";
import { SimWorld } from "../../src/hypervisor/sim.js";
import { SimImageStore } from "../../src/image/sim.js";
import { KvStore } from "../../src/kv/index.js";
import {
  AssertionError,
  index,
  MemoryStorage,
  type Message,
  type NodeId,
  nodeId,
} from "../../src/raft/index.js";
import { Checker } from "../sim/checker.js";
import { CALM, type NetworkFaults, SimNetwork } from "../sim/network.js";
import type { SimRaftNode } from "../sim/raft-node.js";
import { Rng } from "../sim/rng.js";
import { type KeepAliveRpc, type MemberParams, SimMember } from "./member.js";
import { NodeClock, VirtualTime } from "./virtual-time.js";

export const DOMAIN = "zsha-mnvm";
const IMAGE = "/shared/mnvm.img";

export type Schedule = "faults" | "storm";

export interface HaSimOptions {
  readonly seed: number;
  readonly members: 3 | 5;
  /** Default: every fourth seed runs "storm", the others "faults". */
  readonly schedule?: Schedule;
  /** Simulated ms of faults before healing (faults schedule). */
  readonly faultMs?: number;
  /** After healing, the MN-VM must run within this (simulated ms). */
  readonly failoverBudgetMs?: number;
  readonly traceSize?: number;
  /** Called once the MN-VM first runs (tests use it to break things behind the HA's back). */
  readonly onStarted?: (sim: HaSim) => void;
}

export interface HaSimResult {
  readonly seed: number;
  readonly members: number;
  readonly schedule: Schedule;
  readonly violations: string[];
  readonly trace: string[];
  readonly stats: Record<string, number>;
}

type Wire =
  | { readonly kind: "raft"; readonly m: Message }
  | { readonly kind: "rpc"; readonly from: string; readonly msg: KeepAliveRpc };

/** A TCP stream's retransmission timeout: a lost keep-alive segment arrives late rather than never. */
const RTO_MS = 200;
/** After healing, the MN-VM must have run on one node, unmoved, for this long. */
const STABLE_MS = 10_000;
const STORM: Pick<NetworkFaults, "loss" | "spike" | "spikeDelay"> = {
  loss: 0.3,
  spike: 0.5,
  spikeDelay: 500,
};

export function domainXml(config: Uint8Array): string {
  const gb = (JSON.parse(new TextDecoder().decode(config)) as { MemorySizeInGB: number }).MemorySizeInGB;
  return `<domain type='qemu'><name>${DOMAIN}</name><memory unit='GiB'>${gb}</memory><devices><disk type='file' device='disk'><source file='${IMAGE}'/></disk></devices></domain>`;
}

/** The founding snapshot: the cluster config is in the store before any member starts. */
function foundingState(): Uint8Array {
  const kv = new KvStore({ limits: { minLeaseTtlSeconds: 1 } });
  const value = encodeRecord({ MemorySizeInGB: 8 });
  const r = kv.apply(
    index(1),
    create(CommandSchema, {
      origin: "bootstrap",
      requestId: 0n,
      op: { case: "put", value: { key: new TextEncoder().encode(KEYS.config), value } },
    }),
  );
  if (!r.ok) throw r.error;
  return kv.snapshot();
}

interface Node {
  readonly name: NodeId;
  readonly member: SimMember;
  readonly image: SimImageStore;
  agent: HaAgent | undefined;
  /** Why the node is out (power, freeze), while it is. */
  down: string | undefined;
}

export class HaSim {
  readonly vt = new VirtualTime();
  readonly rng: Rng;
  readonly world: SimWorld;
  readonly net: SimNetwork<Wire>;
  readonly checker: Checker;
  readonly nodes: Node[] = [];
  readonly schedule: Schedule;
  private traceBuf: string[] = [];
  private readonly traceSize: number;
  private lastWriters = "";
  private lastOwner: string | undefined;
  private base: NetworkFaults = { ...CALM };
  readonly stats = {
    events: 0,
    ownerChanges: 0,
    powerLoss: 0,
    partitions: 0,
    freezes: 0,
    hangs: 0,
    libvirtdRestarts: 0,
    startFailures: 0,
    storms: 0,
    guestCrashes: 0,
    migrationsRequested: 0,
  };
  /** Set in the storm schedule: the host that must keep the MN-VM. */
  private pinned: string | undefined;

  constructor(private readonly opts: HaSimOptions) {
    this.rng = new Rng(opts.seed);
    this.schedule = opts.schedule ?? (opts.seed % 4 === 3 ? "storm" : "faults");
    this.traceSize = opts.traceSize ?? 200;
    this.world = new SimWorld(this.vt);
    this.checker = new Checker(
      (what) => this.trace(`VIOLATION ${what}`),
      // The checker reads only id, rn and storage, which a SimMember has with the same meaning.
      () => this.nodes.map((n) => n.member as unknown as SimRaftNode),
    );
    this.net = new SimNetwork<Wire>(this.vt.sched, this.rng.fork(), (to, w) => this.deliver(to, w));
    const r = this.rng;
    const names = Array.from({ length: opts.members }, (_, i) => nodeId(`n${i + 1}`));
    const data = foundingState();
    const params: MemberParams = {
      tickMs: 100,
      minFsyncMs: 0.5,
      maxFsyncMs: r.pick([2, 10, 40]),
      snapshotEvery: r.pick([30, 200]),
      keepEntries: r.pick([3, 40]),
      requestTimeoutMs: 2000,
      raft: {
        electionTick: 10,
        heartbeatTick: 1,
        maxSizePerMsg: 1 << 20,
        maxInflightMsgs: 256,
        checkQuorum: true,
        preVote: true,
      },
    };
    this.base = { ...CALM, maxDelay: r.pick([2, 5, 20]) };
    this.net.faults = this.base;
    for (const name of names) {
      // Clock-rate drift within ±5 %: owner lease 5 s, fence margin 1 s leave room for 25 % between clocks.
      const clock = new NodeClock(this.vt, r.real(0.95, 1.05));
      const member = new SimMember(
        name,
        MemoryStorage.bootstrap({ voters: names, learners: [] }, data),
        clock,
        params,
        this.vt,
        r.fork(),
        this.memberHost(),
      );
      this.nodes.push({
        name,
        member,
        image: new SimImageStore(this.world, IMAGE),
        agent: undefined,
        down: undefined,
      });
    }
    for (const n of this.nodes) {
      n.member.start();
      this.startAgent(n);
    }
  }

  private memberHost() {
    return {
      sendRaft: (from: NodeId, m: Message) => this.net.send(from, m.to, { kind: "raft", m }),
      sendRpc: (from: string, to: string, msg: KeepAliveRpc) => this.sendRpc(from, to, msg),
      sendDatagram: (from: string, to: string, msg: KeepAliveRpc) => this.sendDatagram(from, to, msg),
      onReady: (m: SimMember, rd: Parameters<Checker["onReady"]>[1]) =>
        this.checker.onReady(m as unknown as SimRaftNode, rd),
      onApplied: (m: SimMember, e: Parameters<Checker["onApplied"]>[1]) =>
        this.checker.onApplied(m as unknown as SimRaftNode, e),
      onEvent: (m: SimMember) => this.checker.checkNode(m as unknown as SimRaftNode),
      onError: (m: SimMember, err: unknown) => {
        if (err instanceof AssertionError) {
          this.checker.violation(`${m.id} stopped on an assertion: ${err.message}`);
          m.crash();
          return;
        }
        throw err;
      },
      trace: (what: string) => this.trace(what),
    };
  }

  /** Keep-alives ride a stream: a lost segment is retransmitted after an RTO (doubling), not lost. */
  private sendRpc(from: string, to: string, msg: KeepAliveRpc): void {
    if (this.net.isBlocked(from, to)) return;
    const f = this.net.faults;
    let delay = this.rng.real(f.minDelay, f.maxDelay);
    for (let rto = RTO_MS; this.rng.chance(f.loss); rto *= 2) delay += rto;
    if (this.rng.chance(f.spike)) delay += this.rng.real(0, f.spikeDelay);
    this.vt.sched.after(delay, () => {
      if (!this.net.isBlocked(from, to)) this.deliver(to, { kind: "rpc", from, msg });
    });
  }

  /** Renewal datagrams: lost outright with the loss rate (no retransmission), delayed like any packet. */
  private sendDatagram(from: string, to: string, msg: KeepAliveRpc): void {
    if (this.net.isBlocked(from, to)) return;
    const f = this.net.faults;
    if (this.rng.chance(f.loss)) return;
    let delay = this.rng.real(f.minDelay, f.maxDelay);
    if (this.rng.chance(f.spike)) delay += this.rng.real(0, f.spikeDelay);
    this.vt.sched.after(delay, () => {
      if (!this.net.isBlocked(from, to)) this.deliver(to, { kind: "rpc", from, msg });
    });
  }

  private deliver(to: string, w: Wire): void {
    const n = this.nodes.find((x) => x.name === to);
    if (!n) return;
    if (w.kind === "raft") n.member.deliver(w.m);
    else n.member.deliverRpc(w.from, w.msg);
  }

  private env(n: Node): HaEnv {
    const host = this.world.host(n.name);
    return {
      node: n.name,
      agentVersion: "sim",
      clock: n.member.clock,
      kv: n.member.haKv(),
      hypervisor: host,
      image: n.image,
      probes: {
        qemuRunning: async () => host.isRunning(DOMAIN),
        peers: () =>
          Object.fromEntries(
            this.nodes
              .filter((o) => o !== n)
              .map((o) => [
                o.name,
                o.member.alive && !this.net.isBlocked(n.name, o.name) && !this.net.isBlocked(o.name, n.name),
              ]),
          ),
      },
      launcher: {
        domainName: DOMAIN,
        domainXml: async (c) => domainXml(c),
        migrationUri: (x) => `sim://${x}`,
      },
      log: (level: HaLogLevel, fields, event) => {
        if (level !== "debug" || event === "ha.owner-renewal-failed")
          this.trace(`${n.name} ${event} ${JSON.stringify(fields, big)}`);
      },
      timing: DEFAULT_TIMING,
    };
  }

  private startAgent(n: Node): void {
    n.agent = new HaAgent(this.env(n));
    n.agent.start();
  }

  /** The agent stops taking decisions (its in-flight round may still finish, as if it froze just after). */
  private stopAgent(n: Node): void {
    const a = n.agent;
    n.agent = undefined;
    if (a) void a.stop().catch(() => {});
  }

  trace(what: string): void {
    if (this.traceSize === 0) return;
    this.traceBuf.push(`${(this.vt.now() / 1000).toFixed(3).padStart(8)}s ${what}`);
    if (this.traceBuf.length > this.traceSize * 2) this.traceBuf = this.traceBuf.slice(-this.traceSize);
  }

  private writers(): string[] {
    return this.world.writersOf(DOMAIN);
  }

  /** After every event. */
  private check(): void {
    const w = this.writers();
    const key = w.join(",");
    if (key !== this.lastWriters) {
      this.lastWriters = key;
      this.trace(`writers: [${key}] (running on [${this.world.runningOn(DOMAIN).join(",")}])`);
      if (w.length === 1) {
        if (this.lastOwner !== undefined && this.lastOwner !== w[0]) this.stats.ownerChanges++;
        this.lastOwner = w[0];
      }
    }
    if (w.length > 1)
      this.checker.violation(`two writers: ${key} run the MN-VM with write access to its disk`);
    if (this.pinned !== undefined && (w.length !== 1 || w[0] !== this.pinned)) {
      const was = this.pinned;
      this.pinned = undefined;
      this.checker.violation(`no-failover: the MN-VM left ${was} (writers [${key}]) under a storm alone`);
    }
  }

  private failed(): boolean {
    return this.checker.violations.length > 0;
  }

  private async runFor(ms: number, stop?: () => boolean): Promise<void> {
    await this.vt.runUntil(
      this.vt.now() + ms,
      () => this.check(),
      () => this.failed() || (stop?.() ?? false),
    );
  }

  async run(): Promise<HaSimResult> {
    try {
      await this.runFor(30_000, () => this.writers().length === 1);
      if (!this.failed() && this.writers().length !== 1)
        this.checker.violation("liveness: the MN-VM did not start within 30 s of a healthy cluster's start");
      if (!this.failed()) {
        this.opts.onStarted?.(this);
        if (this.schedule === "storm") await this.runStorm();
        else await this.runFaults();
      }
    } finally {
      await this.shutdown();
    }
    this.stats.events = this.vt.events;
    return {
      seed: this.opts.seed,
      members: this.opts.members,
      schedule: this.schedule,
      violations: this.checker.violations,
      trace: this.traceBuf.slice(-this.traceSize),
      stats: { ...this.stats, netSent: this.net.sent, netDropped: this.net.dropped },
    };
  }

  private async runStorm(): Promise<void> {
    await this.runFor(this.rng.int(2000, 10_000));
    if (this.failed()) return;
    this.pinned = this.writers()[0];
    this.stats.storms++;
    this.net.faults = { ...this.base, ...STORM };
    this.trace(
      `STORM: loss ${STORM.loss * 100} %, ${STORM.spikeDelay} ms spikes for 60 s; ${this.pinned} must keep the MN-VM`,
    );
    await this.runFor(60_000);
    if (this.failed()) return;
    this.net.faults = this.base;
    this.trace("storm over");
    await this.runFor(10_000);
  }

  private async runFaults(): Promise<void> {
    const faultMs = this.opts.faultMs ?? 90_000;
    const end = this.vt.now() + faultMs;
    this.operatorMigrations(end - 5000);
    const r = this.rng;
    let storming = false;
    while (this.vt.now() < end && !this.failed()) {
      this.injectFault(
        r,
        () => storming,
        (v) => {
          storming = v;
        },
      );
      await this.runFor(r.int(2000, 10_000));
    }
    if (this.failed()) return;
    this.healAll();
    const budget = this.opts.failoverBudgetMs ?? 30_000;
    const healedAt = this.vt.now();
    // Running means one writer that stays put for STABLE_MS: a copy left over from before the heal (a frozen
    // owner's, already replaced in the KV) may legitimately be fenced and replaced right after it.
    let since = healedAt;
    let last = "";
    const settled = () => {
      const key = this.writers().join(",");
      if (key !== last) {
        last = key;
        since = this.vt.now();
      }
      return this.writers().length === 1 && this.vt.now() - since >= STABLE_MS;
    };
    await this.runFor(budget + STABLE_MS, settled);
    if (this.failed()) return;
    if (!settled()) {
      this.checker.violation(
        `liveness: ${budget / 1000} s after healing (all nodes up, network calm) the MN-VM does not run steadily on one node (now [${this.writers().join(",")}])`,
      );
      return;
    }
    this.trace(
      `liveness: MN-VM runs on ${this.writers()[0]} since ${((since - healedAt) / 1000).toFixed(2)} s after heal`,
    );
  }

  /**
   * Until `until`, every 1.5-8 s: `zsha migrate` to a random other reporting node, written as the Migrate API
   * writes it (ha-service.ts requestMigration) through a random live member, when the MN-VM has an owner and
   * no migration of its epoch is under way.
   */
  private operatorMigrations(until: number): void {
    const r = new Rng(this.opts.seed * 7919 + 1);
    const tick = () => {
      if (this.vt.now() > until || this.failed()) return;
      const live = this.nodes.filter((n) => n.member.alive);
      if (live.length > 0) {
        const n = r.pick(live);
        const kv = n.member.haKv();
        const to = r.next();
        void (async () => {
          const v = await loadView(kv);
          const o = v.owner;
          const m0 = v.migration;
          if (!o || (m0 && (m0.state === "requested" || m0.state === "running") && m0.epoch === v.epoch))
            return;
          const others = [...v.reports.keys()].filter((x) => x !== o.node).sort();
          const target = others[Math.floor(to * others.length)];
          if (target === undefined) return;
          const now = n.member.clock.wallMs();
          const m: Migration = {
            id: `${o.epoch}-${now}`,
            from: o.node,
            to: target,
            epoch: o.epoch,
            state: "requested",
            percent: 0,
            reason: "operator",
            atMs: now,
          };
          const ok = await kv.txn(
            [
              { key: KEYS.epoch, target: "modRevision", op: "==", value: v.epochRevision },
              { key: KEYS.owner, target: "createRevision", op: "!=", value: 0n },
            ],
            [{ put: { key: KEYS.migration, value: encodeRecord(m) } }],
          );
          if (ok) {
            this.stats.migrationsRequested++;
            this.trace(`OPERATOR zsha migrate ${target} (from ${o.node}, epoch ${o.epoch}) via ${n.name}`);
          }
        })().catch(() => {});
      }
      this.vt.sched.after(r.int(1500, 8000), tick);
    };
    this.vt.sched.after(r.int(500, 3000), tick);
  }

  private owner(): Node | undefined {
    const w = this.writers()[0] ?? this.world.runningOn(DOMAIN)[0];
    return this.nodes.find((n) => n.name === w);
  }

  private injectFault(r: Rng, storming: () => boolean, setStorm: (v: boolean) => void): void {
    const up = this.nodes.filter((n) => n.down === undefined);
    const owner = this.owner();
    const target = (): Node | undefined =>
      owner && owner.down === undefined && r.chance(0.6) ? owner : up.length > 0 ? r.pick(up) : undefined;
    const roll = r.next();
    const downMs = r.int(2000, 15_000);
    if (roll < 0.2) {
      const n = target();
      if (!n) return;
      this.stats.powerLoss++;
      this.trace(`FAULT power loss of ${n.name} for ${downMs} ms`);
      n.down = "power";
      this.world.host(n.name).powerOff();
      n.member.crash();
      this.stopAgent(n);
      this.vt.sched.after(downMs, () => this.bringUp(n));
    } else if (roll < 0.35) {
      const n = target();
      if (!n) return;
      this.stats.freezes++;
      this.trace(`FAULT ${n.name}'s agent frozen for ${downMs} ms (its VM runs on)`);
      n.down = "frozen";
      n.member.crash();
      this.stopAgent(n);
      this.vt.sched.after(downMs, () => this.bringUp(n));
    } else if (roll < 0.55) {
      const x = (owner ?? r.pick(this.nodes)).name;
      const others = this.nodes.filter((n) => n.name !== x).map((n) => n.name);
      this.stats.partitions++;
      this.net.heal();
      const kind = r.int(0, 2);
      if (kind === 0) this.net.partition([x], others);
      else for (const y of others) kind === 1 ? this.net.blockOneWay(x, y) : this.net.blockOneWay(y, x);
      this.trace(
        `FAULT ${["isolate", "one-way: cannot send from", "one-way: cannot receive at"][kind]} ${x} for ${downMs} ms`,
      );
      const blocked = this.net.describeBlocked();
      this.vt.sched.after(downMs, () => {
        if (this.net.describeBlocked() !== blocked) return;
        this.net.heal();
        this.trace("partition healed");
      });
    } else if (roll < 0.7) {
      const n = target();
      if (!n) return;
      if (r.chance(0.3)) {
        // libvirtd restarted: the agent's connection drops, calls in flight fail, guests run on.
        this.stats.libvirtdRestarts++;
        this.trace(`FAULT libvirtd on ${n.name} restarted (connection dropped)`);
        this.world.host(n.name).dropConnection();
        return;
      }
      this.stats.hangs++;
      const ms = r.int(1000, 10_000);
      this.trace(`FAULT libvirtd on ${n.name} hung for ${ms} ms`);
      this.world.host(n.name).hang();
      this.vt.sched.after(ms, () => {
        this.world.host(n.name).unhang();
        this.trace(`libvirtd on ${n.name} answers again`);
      });
    } else if (roll < 0.8) {
      const n = up.length > 0 ? r.pick(up) : undefined;
      if (!n) return;
      const count = r.int(1, 2);
      this.stats.startFailures += count;
      this.trace(`FAULT the next ${count} start(s) on ${n.name} fail`);
      this.world.host(n.name).failStarts(count);
    } else if (roll < 0.88) {
      if (storming()) return;
      setStorm(true);
      this.stats.storms++;
      this.net.faults = { ...this.base, ...STORM };
      this.trace("FAULT storm: loss 30 %, 500 ms spikes for 60 s");
      this.vt.sched.after(60_000, () => {
        setStorm(false);
        this.net.faults = this.base;
        this.trace("storm over");
      });
    } else if (owner && owner.down === undefined) {
      this.stats.guestCrashes++;
      const shutdown = r.chance(0.5);
      this.trace(`FAULT the MN-VM on ${owner.name} ${shutdown ? "shuts itself down" : "crashes"}`);
      if (shutdown) this.world.host(owner.name).guestShutdown(DOMAIN);
      else this.world.host(owner.name).crashGuest(DOMAIN);
    }
  }

  private bringUp(n: Node): void {
    if (n.down === undefined) return;
    this.trace(`${n.name} back (${n.down})`);
    if (n.down === "power") this.world.host(n.name).powerOn();
    n.down = undefined;
    this.checker.onRestart(n.member.id);
    n.member.start();
    this.startAgent(n);
  }

  private healAll(): void {
    this.net.heal();
    this.net.faults = { ...CALM };
    for (const n of this.nodes) {
      this.world.host(n.name).unhang();
      this.bringUp(n);
    }
    this.trace("HEAL: all nodes up, network calm, libvirtd answering");
  }

  private async shutdown(): Promise<void> {
    for (const n of this.nodes) this.stopAgent(n);
    // Let the stopped agents' loops wake and finish (they sleep on the virtual clock).
    await this.vt.runUntil(this.vt.now() + 5000, () => {});
  }
}

function big(_k: string, v: unknown): unknown {
  return typeof v === "bigint" ? v.toString() : v;
}

export function runHaSeed(opts: HaSimOptions): Promise<HaSimResult> {
  return new HaSim(opts).run();
}
