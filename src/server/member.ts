// One member of the replicated store: Raft core + durable storage + peer transport + KV state machine,
// driven by a tick loop and the Ready loop. It follows the Ready contract of src/raft/index.ts: nothing
// leaves this process before it is on disk.

import { create, fromBinary, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import type { Logger } from "pino";
import { type Command, CommandSchema } from "../gen/zsha/kv/v1/command_pb.js";
import { Code, RpcError } from "../grpc/index.js";
import { type ApplyResult, KvStore, Lessor, leaseId } from "../kv/index.js";
import {
  type ConfChange,
  ConfChangeType,
  decodeConfChange,
  type Entry,
  EntryType,
  index,
  type Message,
  NONE,
  type NodeId,
  nodeId,
  ProposalError,
  RawNode,
  type Ready,
  StateType,
  type Status,
} from "../raft/index.js";
import { RaftStore } from "../storage/index.js";
import { Transport } from "../transport/index.js";
import { type MemberOptions, type ResolvedOptions, resolveOptions } from "./options.js";
import { ProposalWaiters, ReadBatcher } from "./waiters.js";

export type CommandInit = MessageInitShape<typeof CommandSchema>["op"];

/** What the API layer needs to know about a peer to forward a call to it. */
export interface PeerInfo {
  readonly name: string;
  readonly address: string;
}

export class Member {
  readonly name: NodeId;
  readonly opts: ResolvedOptions;
  readonly log: Logger;
  readonly transport: Transport;
  kv: KvStore;
  readonly lessor: Lessor;
  private rn!: RawNode;
  private store!: RaftStore;
  private readonly proposals: ProposalWaiters<ApplyResult>;
  private readonly confWaiters = new Map<string, Array<(err?: Error) => void>>();
  readonly reads: ReadBatcher;
  private ticker: NodeJS.Timeout | undefined;
  private processing = false;
  private again = false;
  private stopped = false;
  private fatal: Error | undefined;
  private lead: NodeId = NONE;
  /**
   * Our own removal, applied. A replaced machine re-joining under its old name replays its predecessor's
   * removal before its own addition, so the removal is final only when no re-addition follows while the
   * log still flows to us (a member really removed is sent nothing more).
   */
  private removal: { since: number; applied: number } | undefined;
  private state: StateType = StateType.Follower;
  /** Monotonic ms when we last heard from each peer (any message). */
  readonly lastHeard = new Map<string, number>();
  /** Last log index applied to the state machine (commands, conf changes and empty entries alike). */
  private applied = 0;
  /** The transport's peers and their addresses, kept equal to the membership. */
  private readonly peers = new Map<string, string>();
  private readonly onStopped: Array<(err?: Error) => void> = [];

  private constructor(opts: MemberOptions) {
    this.opts = resolveOptions(opts);
    this.name = nodeId(this.opts.name);
    this.log = opts.logger.child({ member: this.opts.name });
    this.kv = new KvStore({ limits: { minLeaseTtlSeconds: this.opts.minLeaseTtlSeconds } });
    this.lessor = new Lessor({
      leaseTtl: (id) => this.kv.leaseTtl(id),
      leaseIds: () => this.kv.leaseIds(),
    });
    this.proposals = new ProposalWaiters(this.opts.requestTimeoutMs);
    this.reads = new ReadBatcher(
      this.opts.requestTimeoutMs,
      (ctx) => this.withRaft((rn) => rn.readIndex(ctx)),
      () => this.applied,
    );
    this.transport = new Transport({
      selfId: this.opts.name,
      clusterId: this.opts.clusterId,
      ...(this.opts.tls ? { tls: this.opts.tls } : {}),
      onMessage: (m) => this.onPeerMessage(m),
      onUnreachable: (peer) => this.withRaft((rn) => rn.reportUnreachable(peer)),
      onSnapshotStatus: (peer, ok) => this.withRaft((rn) => rn.reportSnapshot(peer, ok)),
      logger: this.log,
    });
  }

  /** Opens (or creates) the member's state and starts its loops. The servers are the API layer's job. */
  static async start(opts: MemberOptions): Promise<Member> {
    const m = new Member(opts);
    await m.open();
    return m;
  }

  private async open(): Promise<void> {
    const o = this.opts;
    this.store = await RaftStore.open(o.dataDir);
    const fresh = this.store.lastIndex() === 0 && this.store.hardState().term === 0;
    if (fresh && !o.join) {
      const voters = Object.keys(o.initialCluster!).sort().map(nodeId);
      // The founding configuration and the members' addresses go into the first snapshot, so that every
      // founding member starts from the same state.
      const kv = new KvStore({ limits: { minLeaseTtlSeconds: o.minLeaseTtlSeconds } });
      kv.memberAddresses = { ...o.initialCluster };
      await this.store.bootstrap({ voters, learners: [] }, kv.snapshot());
      this.log.info({ voters }, "member.bootstrapped");
    } else if (fresh && o.join) {
      // A joining member learns the membership from the leader's snapshot, but its transport only accepts
      // streams from peers it knows: until then, the current members are the ones the operator named.
      this.kv.memberAddresses = Object.fromEntries(
        Object.entries(o.initialCluster ?? {}).filter(([n]) => n !== o.name),
      );
    }
    const snap = this.store.snapshot();
    this.applied = snap.meta.index;
    this.kv =
      snap.data.length > 0
        ? KvStore.restore(snap.data, {
            appliedIndex: snap.meta.index,
            limits: { minLeaseTtlSeconds: o.minLeaseTtlSeconds },
          })
        : this.kv;
    this.rn = new RawNode({
      id: this.name,
      storage: this.store,
      electionTick: o.electionTicks,
      heartbeatTick: o.heartbeatTicks,
      applied: snap.meta.index,
      maxSizePerMsg: 1 << 20,
      maxInflightMsgs: 256,
      maxCommittedSizePerReady: 16 << 20,
      checkQuorum: true,
      preVote: true,
      random: Math.random,
      logger: (event, fields) => this.log.info(fields, event),
    });
    this.syncPeers();
    this.ticker = setInterval(() => this.tick(), o.tickMs);
    this.log.info(
      {
        term: this.store.hardState().term,
        applied: snap.meta.index,
        lastIndex: this.store.lastIndex(),
        fresh,
      },
      "member.started",
    );
    this.kick();
  }

  // ---- inputs -------------------------------------------------------------------------------------------

  private tick(): void {
    if (this.removal && this.removalFinal()) return;
    this.withRaft((rn) => rn.tick());
    if (this.state === StateType.Leader) this.expireLeases();
  }

  /** True (and the member stopping) once our removal stood for three election timeouts of a still log. */
  private removalFinal(): boolean {
    const r = this.removal!;
    const now = performance.now();
    if (this.applied !== r.applied) {
      this.removal = { since: now, applied: this.applied };
      return false;
    }
    if (now - r.since < 3 * this.opts.electionTicks * this.opts.tickMs) return false;
    this.removal = undefined;
    this.log.warn({}, "member.removed-from-cluster");
    void this.stop(new Error(`member ${this.name} was removed from the cluster`));
    return true;
  }

  private onPeerMessage(m: Message): void {
    this.lastHeard.set(m.from, performance.now());
    this.withRaft((rn) => rn.step(m));
  }

  /** Runs `f` on the core, then lets the Ready loop pick up what it produced. */
  private withRaft<T>(f: (rn: RawNode) => T): T {
    if (this.stopped) throw new RpcError(Code.UNAVAILABLE, `member ${this.name} is stopping`);
    try {
      return f(this.rn);
    } finally {
      this.kick();
    }
  }

  /**
   * Proposes a state-machine command and resolves with its result once this member applied it. Writes sent
   * to a follower are forwarded to the leader by Raft; the result comes back through our own apply.
   */
  async propose(op: CommandInit, what: string): Promise<ApplyResult> {
    const { id, done } = this.proposals.register(what);
    const cmd = create(CommandSchema, { origin: this.opts.name, requestId: id, op });
    try {
      this.withRaft((rn) => rn.propose(toBinary(CommandSchema, cmd)));
    } catch (e) {
      this.proposals.reject(id, toRpcError(e));
      done.catch(() => {});
      throw toRpcError(e);
    }
    return done;
  }

  /** Waits until a read served now from the local state machine is linearizable. */
  linearizableRead(): Promise<void> {
    return this.reads.wait();
  }

  /** Proposes a membership change and resolves once this member applied it. */
  async changeMembership(cc: ConfChange): Promise<void> {
    const key = `${cc.type}/${cc.nodeId}`;
    const done = new Promise<void>((resolve, reject) => {
      const list = this.confWaiters.get(key) ?? [];
      list.push((err) => (err ? reject(err) : resolve()));
      this.confWaiters.set(key, list);
    });
    const timer = setTimeout(
      () =>
        this.settleConf(
          key,
          new RpcError(
            Code.DEADLINE_EXCEEDED,
            `the membership change (${cc.type} ${cc.nodeId}) was not applied within ${this.opts.requestTimeoutMs} ms; check member list`,
          ),
        ),
      this.opts.requestTimeoutMs,
    );
    try {
      this.withRaft((rn) => rn.proposeConfChange(cc));
    } catch (e) {
      this.settleConf(key, toRpcError(e));
    }
    return done.finally(() => clearTimeout(timer));
  }

  private settleConf(key: string, err?: Error): void {
    const list = this.confWaiters.get(key);
    this.confWaiters.delete(key);
    for (const f of list ?? []) f(err);
  }

  /** Hands leadership to `to` and resolves once this member sees a new leader (or rejects on timeout). */
  async transferLeadership(to: NodeId): Promise<NodeId> {
    this.withRaft((rn) => {
      try {
        rn.transferLeadership(to);
      } catch (e) {
        throw toRpcError(e);
      }
    });
    const deadline = performance.now() + this.opts.requestTimeoutMs;
    while (performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, this.opts.tickMs));
      if (this.lead !== NONE && this.lead !== this.name) return this.lead;
    }
    throw new RpcError(
      Code.DEADLINE_EXCEEDED,
      `leadership did not move to ${to} within ${this.opts.requestTimeoutMs} ms`,
    );
  }

  // ---- the Ready loop ----------------------------------------------------------------------------------

  private kick(): void {
    if (this.stopped) return;
    if (this.processing) {
      this.again = true;
      return;
    }
    this.processing = true;
    void this.processReadies()
      .catch((e) => this.die(e))
      .finally(() => {
        this.processing = false;
      });
  }

  private async processReadies(): Promise<void> {
    do {
      this.again = false;
      while (!this.stopped && this.rn.hasReady()) {
        const rd = this.rn.ready();
        await this.handleReady(rd);
        this.rn.advance();
        await this.maybeSnapshot();
      }
    } while (this.again && !this.stopped);
  }

  private async handleReady(rd: Ready): Promise<void> {
    // 0. Apply what is both committed and already on this member's disk (entries of earlier Readies, never
    //    this one's), before this Ready's fsync, as etcd's apply loop runs beside its WAL write: under load
    //    a commit then no longer waits for the next batch's fsync. Its client learns only of an entry a
    //    quorum holds on disk, and the state machine keeps nothing of its own on disk, so a crash loses
    //    nothing. Conf changes and snapshots keep the plain order below.
    if (!rd.snapshot) this.applyDurable(rd);
    // 1. Persist: one durable batch for everything in this Ready (group commit — every proposal that
    //    arrived while the previous batch was being written is in this one).
    //    A Ready whose only change is the commit index (mustSync false) is written without an fsync, as
    //    etcd does: losing it in a crash loses nothing the leader will not resend.
    if (rd.snapshot || rd.entries.length > 0 || rd.hardState) {
      await this.store.save({
        ...(rd.hardState ? { hardState: rd.hardState } : {}),
        entries: rd.entries,
        ...(rd.snapshot ? { snapshot: rd.snapshot } : {}),
        mustSync: rd.mustSync,
      });
    }
    if (this.stopped) return;
    // 2. Send.
    if (rd.messages.length > 0) this.transport.send(rd.messages);
    // 3. Apply.
    if (rd.snapshot) this.applySnapshot(rd.snapshot.data, rd.snapshot.meta.index);
    for (const e of rd.committedEntries) this.applyEntry(e);
    if (rd.softState) this.onRoleChange(rd.softState.lead, rd.softState.state);
    for (const rs of rd.readStates) this.reads.onReadState(rs.requestCtx, rs.index);
    this.reads.onApplied();
  }

  /** Applies the committed entries that precede this Ready's new entries, up to the first conf change. */
  private applyDurable(rd: Ready): void {
    const firstNew = rd.entries[0]?.index ?? Number.POSITIVE_INFINITY;
    let n = 0;
    for (const e of rd.committedEntries) {
      if (e.index >= firstNew || e.type === EntryType.ConfChange) break;
      this.applyEntry(e);
      n++;
    }
    if (n > 0) this.reads.onApplied();
  }

  private applySnapshot(data: Uint8Array, at: number): void {
    this.kv.install(data, at as never);
    this.applied = at;
    this.lessor.demote();
    if (this.state === StateType.Leader) this.lessor.promote(performance.now());
    this.syncPeers();
    this.log.info({ index: at, revision: Number(this.kv.revision) }, "member.snapshot-installed");
  }

  private applyEntry(e: Entry): void {
    if (e.index <= this.applied) return;
    if (e.type === EntryType.ConfChange) {
      const cc = decodeConfChange(e.data);
      this.applyConfChange(cc);
      this.applied = e.index;
      return;
    }
    if (e.data.length === 0) {
      this.applied = e.index; // a new leader's empty entry
      return;
    }
    let cmd: Command;
    try {
      cmd = fromBinary(CommandSchema, e.data);
    } catch (err) {
      // Every member decodes the same bytes the same way: an undecodable entry is a bug to stop on, not skip.
      throw new Error(`entry ${e.index} does not decode as a command: ${(err as Error).message}`);
    }
    const result = this.kv.apply(e.index, cmd);
    this.applied = e.index;
    if (result.ok) this.trackLeases(result);
    if (cmd.origin === this.opts.name) this.proposals.resolve(cmd.requestId, result);
  }

  private trackLeases(result: Extract<ApplyResult, { ok: true }>): void {
    const r = result.response;
    if (r.case === "leaseGrant") this.lessor.onGrant(leaseId(r.value.id), performance.now());
  }

  private applyConfChange(cc: ConfChange): void {
    const addr = cc.context;
    const adds = cc.type === ConfChangeType.AddLearner || cc.type === ConfChangeType.AddNode;
    if (adds && cc.nodeId === this.name && this.removal) {
      this.removal = undefined;
      this.log.info({}, "member.re-added-after-predecessor-removal");
    }
    if (adds && addr) {
      this.kv.memberAddresses = { ...this.kv.memberAddresses, [cc.nodeId]: addr };
    } else if (cc.type === ConfChangeType.RemoveNode) {
      const { [cc.nodeId]: _gone, ...rest } = this.kv.memberAddresses;
      this.kv.memberAddresses = rest;
    }
    this.log.info({ change: cc.type, node: cc.nodeId, address: addr }, "member.conf-change-applied");
    this.settleConf(`${cc.type}/${cc.nodeId}`);
    this.syncPeers();
    if (cc.type === ConfChangeType.RemoveNode && cc.nodeId === this.name) {
      this.log.info({}, "member.own-removal-applied");
      this.removal = { since: performance.now(), applied: this.applied };
    }
  }

  /** Keeps the transport's peers equal to the known members (other than us). */
  private syncPeers(): void {
    const want = new Map(Object.entries(this.kv.memberAddresses).filter(([n]) => n !== this.opts.name));
    for (const [n, a] of want) {
      const have = this.peers.get(n);
      if (have === a) continue;
      if (have === undefined) this.transport.addPeer(n, a);
      else this.transport.updatePeer(n, a);
      this.peers.set(n, a);
    }
    for (const n of [...this.peers.keys()]) {
      if (want.has(n)) continue;
      this.peers.delete(n);
      void this.transport.removePeer(n);
    }
  }

  private onRoleChange(lead: NodeId, state: StateType): void {
    const wasLeader = this.state === StateType.Leader;
    this.lead = lead;
    this.state = state;
    this.log.info({ lead, state, term: this.rn.status().term }, "member.role");
    if (state === StateType.Leader && !wasLeader) {
      this.lessor.promote(performance.now());
    } else if (state !== StateType.Leader && wasLeader) {
      this.lessor.demote();
    }
    if (lead === NONE) this.reads.abortInFlight("leadership changed");
  }

  /** On the leader: leases past their TTL are expired through the log (every member deletes their keys). */
  private expireLeases(): void {
    for (const id of this.lessor.expired(performance.now())) {
      this.log.info({ lease: id.toString(16) }, "member.lease-expired");
      this.propose({ case: "leaseExpire", value: { id } }, "lease expiry").then(
        () => this.lessor.onRevoke(id),
        () => {},
      );
    }
  }

  private async maybeSnapshot(): Promise<void> {
    const snapIndex = this.store.snapshot().meta.index;
    const applied = this.applied;
    if (applied - snapIndex < this.opts.snapshotEntries) return;
    const conf = this.rn.status().config;
    await this.store.createSnapshot(index(applied), conf, this.kv.snapshot());
    const compactTo = applied - this.opts.catchUpEntries;
    if (compactTo > this.store.firstIndex()) await this.store.compact(compactTo as never);
    this.log.info({ index: applied, compactedTo: compactTo }, "member.snapshot-taken");
  }

  // ---- state for the API ---------------------------------------------------------------------------------

  status(): Status {
    return this.rn.status();
  }

  leader(): NodeId {
    return this.lead;
  }

  isLeader(): boolean {
    return this.state === StateType.Leader;
  }

  /** The leader's peer address, for forwarding calls that only the leader can answer. */
  leaderPeer(): PeerInfo | undefined {
    if (this.lead === NONE || this.lead === this.name) return undefined;
    const address = this.kv.memberAddresses[this.lead];
    return address ? { name: this.lead, address } : undefined;
  }

  peerAddress(name: string): string | undefined {
    return this.kv.memberAddresses[name];
  }

  // ---- lifecycle -------------------------------------------------------------------------------------------

  /** Resolves when the member stopped (removed, failed or asked to). */
  whenStopped(): Promise<void> {
    return new Promise((resolve, reject) => this.onStopped.push((e) => (e ? reject(e) : resolve())));
  }

  private die(e: unknown): void {
    // Storage failing, or a broken invariant: stop loudly rather than continue with state we cannot trust.
    this.fatal = e instanceof Error ? e : new Error(String(e));
    this.log.fatal({ err: this.fatal.message, stack: this.fatal.stack }, "member.fatal");
    void this.stop(this.fatal);
  }

  async stop(err?: Error): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.ticker);
    const why = new RpcError(Code.UNAVAILABLE, `member ${this.name} is stopping`);
    this.proposals.rejectAll(why);
    this.reads.abortInFlight("member stopping");
    for (const key of [...this.confWaiters.keys()]) this.settleConf(key, why);
    await this.transport.close();
    // Wait for a Ready in flight to finish its write before closing the store under it.
    for (let i = 0; i < 100 && this.processing; i++) await new Promise((r) => setTimeout(r, 10));
    await this.store.close();
    this.log.info({ reason: err?.message ?? "requested" }, "member.stopped");
    for (const f of this.onStopped) f(err === this.fatal ? err : undefined);
  }
}

export function toRpcError(e: unknown): RpcError {
  if (e instanceof RpcError) return e;
  if (e instanceof ProposalError) {
    switch (e.reason) {
      case "no-leader":
      case "transfer-in-progress":
        return new RpcError(Code.UNAVAILABLE, e.message);
      case "invalid-conf-change":
        return new RpcError(Code.FAILED_PRECONDITION, e.message);
      default:
        return new RpcError(Code.FAILED_PRECONDITION, e.message);
    }
  }
  return new RpcError(Code.INTERNAL, (e as Error).message ?? String(e));
}
