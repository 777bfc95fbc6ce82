// One simulated member of the replicated store, as src/server/member.ts wires a real one: the real RawNode,
// KvStore and Lessor, the Ready contract with a simulated fsync (a crash loses everything not yet on "disk"),
// proposals tagged with origin/requestId and resolved when this member applies them, ReadIndex reads, lease
// expiry proposed by the leader, and lessor promotion on becoming leader. `haKv()` is the HA's view of it:
// the same calls a real agent makes through its KV client, answered by this member.

import { create, fromBinary, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { compareToProto, kvEntry, opToProto } from "../../src/agent/ha-kv.js";
import { watchStore } from "../../src/agent/ha-watch.js";
import { type Command, CommandSchema } from "../../src/gen/zsha/kv/v1/command_pb.js";
import { RangeRequestSchema } from "../../src/gen/zsha/kv/v1/kv_pb.js";
import type { HaKv, TxnCompare, TxnOp } from "../../src/ha/env.js";
import { type ApplyResult, Code, KvStore, Lessor, leaseId } from "../../src/kv/index.js";
import {
  type Entry,
  EntryType,
  index,
  type MemoryStorage,
  type Message,
  NONE,
  type NodeId,
  type RaftConfig,
  RawNode,
  type Ready,
  StateType,
} from "../../src/raft/index.js";
import type { Rng } from "../sim/rng.js";
import type { ScheduledEvent } from "../sim/scheduler.js";
import type { NodeClock, VirtualTime } from "./virtual-time.js";

export type CommandInit = MessageInitShape<typeof CommandSchema>["op"];

/** A keep-alive forwarded to the leader (the KV client's LeaseKeepAlive stream), and its answer. */
/**
 * Keep-alives between members: over the stream to the leader, or (`dgram`) as the product's renewal
 * datagrams (src/client/lease-datagrams.ts): sent to every member, re-sent until answered, relayed by a
 * follower to its leader, answered only when there is an answer.
 */
export type KeepAliveRpc =
  | {
      readonly kind: "ka";
      readonly from: string;
      readonly rid: number;
      readonly lease: bigint;
      readonly dgram?: boolean;
    }
  | { readonly kind: "ka-resp"; readonly rid: number; readonly ttl?: number; readonly err?: string };

export interface MemberHost {
  sendRaft(from: NodeId, m: Message): void;
  sendRpc(from: string, to: string, msg: KeepAliveRpc): void;
  /** A datagram: lost with the network's loss rate, never retransmitted. */
  sendDatagram(from: string, to: string, msg: KeepAliveRpc): void;
  onReady(m: SimMember, rd: Ready): void;
  onApplied(m: SimMember, e: Entry): void;
  onEvent(m: SimMember): void;
  onError(m: SimMember, err: unknown): void;
  trace(what: string): void;
}

export interface MemberParams {
  readonly tickMs: number;
  readonly minFsyncMs: number;
  readonly maxFsyncMs: number;
  readonly snapshotEvery: number;
  readonly keepEntries: number;
  /** The KV client's deadline for one call (true ms). */
  readonly requestTimeoutMs: number;
  readonly raft: Omit<RaftConfig, "id" | "storage" | "random" | "applied" | "logger">;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
const MIN_LEASE_TTL = 1;

interface Waiter<T> {
  resolve(v: T): void;
  reject(e: Error): void;
}

export class SimMember {
  rn: RawNode | undefined;
  kv = new KvStore({ limits: { minLeaseTtlSeconds: MIN_LEASE_TTL } });
  readonly lessor = new Lessor({
    leaseTtl: (id) => this.kv.leaseTtl(id),
    leaseIds: () => this.kv.leaseIds(),
  });
  alive = false;
  incarnation = 0;
  applied = 0;
  private state: StateType = StateType.Follower;
  private inFlight: Ready | undefined;
  private timers: ScheduledEvent[] = [];
  private nextId = 1;
  private readonly proposals = new Map<bigint, Waiter<ApplyResult>>();
  private readonly reads = new Map<string, Waiter<number>>();
  private appliedWaiters: { index: number; w: Waiter<void> }[] = [];
  private readonly keepAlives = new Map<number, Waiter<number>>();
  /** Renewal datagrams this follower forwarded to its leader: our rid -> whom to answer, with their rid. */
  private readonly relays = new Map<number, { readonly to: string; readonly rid: number }>();

  constructor(
    readonly id: NodeId,
    /** The durable disk: survives crashes. */
    readonly storage: MemoryStorage,
    readonly clock: NodeClock,
    private readonly params: MemberParams,
    private readonly vt: VirtualTime,
    private readonly rng: Rng,
    private readonly host: MemberHost,
  ) {}

  // ---- lifecycle ------------------------------------------------------------------------------------------

  start(): void {
    this.alive = true;
    this.state = StateType.Follower;
    const snap = this.storage.snapshot();
    this.kv = KvStore.restore(snap.data, {
      appliedIndex: snap.meta.index,
      limits: { minLeaseTtlSeconds: MIN_LEASE_TTL },
    });
    this.applied = snap.meta.index;
    this.lessor.demote();
    this.guard(() => {
      this.rn = new RawNode({
        ...this.params.raft,
        id: this.id,
        storage: this.storage,
        applied: snap.meta.index,
        random: () => this.rng.next(),
      });
    });
    this.scheduleTick();
    this.afterEvent();
  }

  /** Power loss: memory, timers and the Ready being written are gone; callers waiting get an error. */
  crash(): void {
    this.alive = false;
    this.incarnation++;
    for (const t of this.timers) t.cancelled = true;
    this.timers = [];
    this.inFlight = undefined;
    this.rn = undefined;
    this.lessor.demote();
    const down = new Error(`member ${this.id} is down`);
    for (const w of this.proposals.values()) w.reject(down);
    for (const w of this.reads.values()) w.reject(down);
    for (const x of this.appliedWaiters) x.w.reject(down);
    for (const w of this.keepAlives.values()) w.reject(down);
    this.proposals.clear();
    this.reads.clear();
    this.appliedWaiters = [];
    this.keepAlives.clear();
    this.relays.clear();
  }

  isLeader(): boolean {
    return this.alive && this.state === StateType.Leader;
  }

  // ---- inputs ---------------------------------------------------------------------------------------------

  private after(trueMs: number, f: () => void): void {
    const life = this.incarnation;
    this.timers = this.timers.filter((t) => !t.cancelled && t.at >= this.vt.now());
    this.timers.push(
      this.vt.sched.after(trueMs, () => {
        if (this.alive && life === this.incarnation) f();
      }),
    );
  }

  private scheduleTick(): void {
    this.after(this.clock.toTrue(this.params.tickMs), () => {
      this.guard(() => this.rn!.tick());
      if (this.isLeader()) this.expireLeases();
      this.afterEvent();
      if (this.alive) this.scheduleTick();
    });
  }

  deliver(m: Message): void {
    if (!this.alive || !this.rn) return;
    this.guard(() => this.rn!.step(m));
    this.afterEvent();
  }

  /** A forwarded keep-alive reaches this member (answered only if it leads), or an answer comes back. */
  deliverRpc(from: string, msg: KeepAliveRpc): void {
    if (!this.alive) return;
    if (msg.kind === "ka" && msg.dgram) {
      this.onRenewalDatagram(from, msg);
      return;
    }
    if (msg.kind === "ka") {
      let reply: KeepAliveRpc;
      try {
        reply = { kind: "ka-resp", rid: msg.rid, ttl: this.localKeepAlive(msg.lease) };
      } catch (e) {
        reply = { kind: "ka-resp", rid: msg.rid, err: (e as Error).message };
      }
      this.host.sendRpc(this.id, from, reply);
      return;
    }
    const relay = this.relays.get(msg.rid);
    if (relay) {
      this.relays.delete(msg.rid);
      if (msg.err === undefined) {
        this.host.sendDatagram(this.id, relay.to, { kind: "ka-resp", rid: relay.rid, ttl: msg.ttl ?? 0 });
      }
      return;
    }
    const w = this.keepAlives.get(msg.rid);
    // One path failing is not the renewal failing: the others (datagrams) go on until the deadline.
    if (!w || msg.err !== undefined) return;
    this.keepAlives.delete(msg.rid);
    w.resolve(msg.ttl ?? 0);
  }

  /** As src/api/serve.ts: answered by the leader, relayed by a follower that knows one, else silence. */
  private onRenewalDatagram(from: string, msg: KeepAliveRpc & { kind: "ka" }): void {
    if (this.isLeader()) {
      let ttl: number;
      try {
        ttl = this.localKeepAlive(msg.lease);
      } catch {
        return;
      }
      this.host.sendDatagram(this.id, from, { kind: "ka-resp", rid: msg.rid, ttl });
      return;
    }
    const lead = this.rn?.raft.lead ?? NONE;
    if (lead === NONE) return;
    const rid = this.nextId++;
    this.relays.set(rid, { to: from, rid: msg.rid });
    this.after(this.params.requestTimeoutMs, () => this.relays.delete(rid));
    this.host.sendRpc(this.id, lead, { kind: "ka", from: this.id, rid, lease: msg.lease });
  }

  private localKeepAlive(lease: bigint): number {
    if (!this.isLeader()) throw new Error(`${this.id} is not the leader`);
    return this.lessor.keepAlive(leaseId(lease), this.clock.now()) ?? 0;
  }

  /** On the leader (as Member.expireLeases): leases past their TTL are expired through the log. */
  private expireLeases(): void {
    for (const id of this.lessor.expired(this.clock.now())) {
      this.host.trace(`${this.id} expires lease ${id.toString(16)}`);
      this.propose({ case: "leaseExpire", value: { id } }).catch(() => {});
    }
  }

  private guard(f: () => void): void {
    try {
      f();
    } catch (err) {
      this.host.onError(this, err);
    }
  }

  private afterEvent(): void {
    if (!this.alive || !this.rn) return;
    this.host.onEvent(this);
    this.processReady();
  }

  // ---- the Ready contract ---------------------------------------------------------------------------------

  private processReady(): void {
    const rn = this.rn;
    if (!rn || this.inFlight || !rn.hasReady()) return;
    const rd = rn.ready();
    this.inFlight = rd;
    this.host.onReady(this, rd);
    const needsDisk = rd.entries.length > 0 || rd.hardState !== undefined || rd.snapshot !== undefined;
    if (!needsDisk) {
      this.complete(rd);
      return;
    }
    this.after(this.rng.real(this.params.minFsyncMs, this.params.maxFsyncMs), () => this.complete(rd));
  }

  /** Persist, then send, then apply, then advance. */
  private complete(rd: Ready): void {
    this.guard(() => {
      if (rd.snapshot) this.storage.applySnapshot(rd.snapshot);
      this.storage.append(rd.entries);
      if (rd.hardState) this.storage.setHardState(rd.hardState);
      for (const m of rd.messages) this.host.sendRaft(this.id, m);
      if (rd.snapshot) {
        this.kv.install(rd.snapshot.data, rd.snapshot.meta.index);
        this.applied = rd.snapshot.meta.index;
        this.lessor.demote();
        if (this.state === StateType.Leader) this.lessor.promote(this.clock.now());
      }
      for (const e of rd.committedEntries) this.applyEntry(e);
      if (rd.softState) this.onRoleChange(rd.softState.lead, rd.softState.state);
      for (const rs of rd.readStates) {
        const key = dec.decode(rs.requestCtx);
        const w = this.reads.get(key);
        this.reads.delete(key);
        w?.resolve(rs.index);
      }
      this.releaseAppliedWaiters();
      this.inFlight = undefined;
      this.rn!.advance();
      this.maybeSnapshot();
    });
    this.afterEvent();
  }

  private applyEntry(e: Entry): void {
    if (e.index <= this.applied) return;
    this.applied = e.index;
    this.host.onApplied(this, e);
    if (e.type !== EntryType.Normal || e.data.length === 0) return;
    const cmd: Command = fromBinary(CommandSchema, e.data);
    const result = this.kv.apply(e.index, cmd);
    if (result.ok) {
      const r = result.response;
      if (r.case === "leaseGrant") this.lessor.onGrant(leaseId(r.value.id), this.clock.now());
      if (cmd.op.case === "leaseRevoke" || cmd.op.case === "leaseExpire")
        this.lessor.onRevoke(leaseId(cmd.op.value.id));
    }
    if (cmd.origin === this.id) {
      const w = this.proposals.get(cmd.requestId);
      this.proposals.delete(cmd.requestId);
      w?.resolve(result);
    }
  }

  private onRoleChange(lead: NodeId, state: StateType): void {
    const was = this.state;
    this.state = state;
    this.host.trace(`${this.id} is ${state} (lead ${lead || "-"})`);
    if (state === StateType.Leader && was !== StateType.Leader) this.lessor.promote(this.clock.now());
    else if (state !== StateType.Leader && was === StateType.Leader) this.lessor.demote();
    if (lead === NONE) {
      const err = new Error("leadership changed");
      for (const w of this.reads.values()) w.reject(err);
      this.reads.clear();
    }
  }

  private releaseAppliedWaiters(): void {
    const ready = this.appliedWaiters.filter((x) => x.index <= this.applied);
    if (ready.length === 0) return;
    this.appliedWaiters = this.appliedWaiters.filter((x) => x.index > this.applied);
    for (const x of ready) x.w.resolve();
  }

  private maybeSnapshot(): void {
    const snapIndex = this.storage.snapshot().meta.index;
    if (this.applied - snapIndex < this.params.snapshotEvery) return;
    this.storage.createSnapshot(index(this.applied), this.rn!.status().config, this.kv.snapshot());
    const compactTo = this.applied - this.params.keepEntries;
    if (compactTo > this.storage.firstIndex()) this.storage.compact(index(compactTo));
  }

  // ---- client calls ---------------------------------------------------------------------------------------

  /** A promise that fails after the client's deadline, as a gRPC call would. */
  private deadline<T>(what: string, register: (w: Waiter<T>) => void, forget: () => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const cancel = this.vt.schedule(this.params.requestTimeoutMs, () => {
        if (settled) return;
        settled = true;
        forget();
        reject(new Error(`${what} on ${this.id}: deadline exceeded`));
      });
      register({
        resolve: (v) => {
          if (settled) return;
          settled = true;
          cancel();
          resolve(v);
        },
        reject: (e) => {
          if (settled) return;
          settled = true;
          cancel();
          reject(e);
        },
      });
    });
  }

  private live(): RawNode {
    if (!this.alive || !this.rn) throw new Error(`member ${this.id} is down`);
    return this.rn;
  }

  /** Proposes a command; resolves with its result once this member applied it. */
  propose(op: CommandInit): Promise<ApplyResult> {
    const rn = this.live();
    const requestId = BigInt(this.nextId++);
    const done = this.deadline<ApplyResult>(
      `proposal ${op?.case}`,
      (w) => this.proposals.set(requestId, w),
      () => this.proposals.delete(requestId),
    );
    const data = toBinary(CommandSchema, create(CommandSchema, { origin: this.id, requestId, op }));
    try {
      rn.propose(data);
    } catch (e) {
      this.proposals.get(requestId)?.reject(e as Error);
      this.proposals.delete(requestId);
    } finally {
      this.afterEvent();
    }
    return done;
  }

  /** Resolves when a read served now from this member's KvStore is linearizable (ReadIndex). */
  async linearizable(): Promise<void> {
    const rn = this.live();
    const ctx = `${this.id}/${this.incarnation}/${this.nextId++}`;
    const at = this.deadline<number>(
      "read index",
      (w) => this.reads.set(ctx, w),
      () => this.reads.delete(ctx),
    );
    try {
      rn.readIndex(enc.encode(ctx));
    } catch (e) {
      this.reads.get(ctx)?.reject(e as Error);
      this.reads.delete(ctx);
    } finally {
      this.afterEvent();
    }
    const idx = await at;
    if (idx <= this.applied) return;
    const w = this.appliedWaiters;
    await this.deadline<void>(
      "read apply",
      (x) => w.push({ index: idx, w: x }),
      () => {},
    );
  }

  keepAlive(lease: bigint): Promise<number> {
    const rn = this.live();
    if (this.isLeader()) return Promise.resolve(this.localKeepAlive(lease));
    const lead = rn.raft.lead;
    const rid = this.nextId++;
    const p = this.deadline<number>(
      "lease keep-alive",
      (w) => this.keepAlives.set(rid, w),
      () => this.keepAlives.delete(rid),
    );
    // As the product's renewal: the stream to the leader and, at the same time, datagrams to every other
    // member, re-sent every 150 ms until one answers (src/agent/ha-kv.ts).
    if (lead !== NONE) this.host.sendRpc(this.id, lead, { kind: "ka", from: this.id, rid, lease });
    const others = rn.status().config.voters.filter((v) => v !== this.id);
    const resend = () => {
      if (!this.keepAlives.has(rid)) return;
      for (const o of others)
        this.host.sendDatagram(this.id, o, { kind: "ka", from: this.id, rid, lease, dgram: true });
      this.after(this.clock.toTrue(150), resend);
    };
    resend();
    return p;
  }

  /** The HA's KV, served by this member. */
  haKv(): HaKv {
    const ok = (r: ApplyResult) => {
      if (!r.ok) throw r.error;
      return r;
    };
    return {
      get: async (key) => {
        await this.linearizable();
        const kv = this.kv.get(enc.encode(key));
        return kv ? kvEntry(kv) : undefined;
      },
      list: async (prefix) => {
        await this.linearizable();
        return this.kv
          .range(create(RangeRequestSchema, { key: enc.encode(prefix), prefix: true }))
          .kvs.map(kvEntry);
      },
      txn: async (
        compare: readonly TxnCompare[],
        success: readonly TxnOp[],
        failure: readonly TxnOp[] = [],
      ) => {
        const r = ok(
          await this.propose({
            case: "txn",
            value: {
              compare: compare.map(compareToProto),
              success: success.map(opToProto),
              failure: failure.map(opToProto),
            },
          }),
        );
        return r.response.case === "txn" && r.response.value.succeeded;
      },
      put: async (key, value, lease) => {
        ok(await this.propose({ case: "put", value: { key: enc.encode(key), value, lease: lease ?? 0n } }));
      },
      leaseGrant: async (ttl) => {
        const r = ok(await this.propose({ case: "leaseGrant", value: { ttl: BigInt(ttl), id: 0n } }));
        return r.response.case === "leaseGrant" ? r.response.value.id : 0n;
      },
      leaseKeepAlive: (id) => this.keepAlive(id),
      leaseRevoke: async (id) => {
        const r = await this.propose({ case: "leaseRevoke", value: { id } });
        if (!r.ok && r.error.code !== Code.NOT_FOUND) throw r.error;
      },
      isLocalLeader: () => this.isLeader(),
      // As a real agent's watch on its own member: changes as this member applies them (none while it is
      // down or cut off and so applies nothing). A restart starts a new agent with a new watch.
      watch: (prefix, onChange) => {
        const life = this.incarnation;
        return watchStore(
          () => this.kv,
          prefix,
          (c) => {
            if (this.alive && life === this.incarnation) onChange(c);
          },
        );
      },
    };
  }
}
