// The caller-facing handle on the core: inputs (tick, step, propose, ...) and the Ready/advance cycle.

import { type ConfChange, decodeConfChange, encodeConfChange } from "./confchange.js";
import { assert, ProposalError } from "./errors.js";
import type { ProgressState } from "./progress.js";
import { Raft, type RaftConfig } from "./raft.js";
import {
  type ConfState,
  EntryType,
  type HardState,
  hardStateEqual,
  type Index,
  index,
  isLocalMessage,
  isResponseMessage,
  type Message,
  MessageType,
  message,
  NONE,
  type NodeId,
  type Ready,
  type SoftState,
  type StateType,
  type Term,
  term,
} from "./types.js";

export interface PeerStatus {
  readonly match: Index;
  readonly next: Index;
  readonly state: ProgressState;
  readonly isLearner: boolean;
  readonly recentActive: boolean;
}

export interface Status {
  readonly id: NodeId;
  readonly term: Term;
  readonly vote: NodeId;
  readonly commit: Index;
  readonly applied: Index;
  readonly lastIndex: Index;
  readonly lead: NodeId;
  readonly state: StateType;
  readonly leadTransferee: NodeId;
  readonly config: ConfState;
  /** Only on the leader. */
  readonly progress?: ReadonlyMap<NodeId, PeerStatus>;
}

export class RawNode {
  readonly raft: Raft;
  private prevSoftState: SoftState;
  private prevHardState: HardState;
  private inFlight: Ready | undefined;

  constructor(cfg: RaftConfig) {
    this.raft = new Raft(cfg);
    this.prevSoftState = this.raft.softState();
    this.prevHardState = this.raft.hardState();
  }

  tick(): void {
    this.raft.tick();
  }

  /** Starts an election now (used in tests and by operators; normally ticks do this). */
  campaign(): void {
    this.raft.step(message({ type: MessageType.Hup }));
  }

  /** Proposes `data` for the log. Throws ProposalError when refused; on a follower it is forwarded. */
  propose(data: Uint8Array): void {
    this.raft.step(
      message({
        type: MessageType.Prop,
        entries: [{ term: term(0), index: index(0), type: EntryType.Normal, data }],
      }),
    );
  }

  proposeConfChange(cc: ConfChange): void {
    this.raft.step(
      message({
        type: MessageType.Prop,
        entries: [{ term: term(0), index: index(0), type: EntryType.ConfChange, data: encodeConfChange(cc) }],
      }),
    );
  }

  /** Steps a message received from the network. Local-only message types from the network are dropped. */
  step(m: Message): void {
    if (isLocalMessage(m.type)) return;
    if (isResponseMessage(m.type) && !this.raft.tracker.progress.has(m.from)) return;
    this.raft.step(m);
  }

  /** Requests a linearizable read; a ReadState with `ctx` appears in a later Ready. */
  readIndex(ctx: Uint8Array): void {
    assert(ctx.length > 0, "a read request needs a non-empty context to match its ReadState");
    this.raft.step(message({ type: MessageType.ReadIndex, context: ctx }));
  }

  /** Asks the leader to hand leadership to `to` (TimeoutNow once `to` is caught up). */
  transferLeadership(to: NodeId): void {
    if (!this.raft.tracker.voters.has(to)) {
      throw new ProposalError(
        "invalid-conf-change",
        `cannot transfer leadership to ${to}: it is not a voter`,
      );
    }
    this.raft.step(message({ type: MessageType.TransferLeader, from: to }));
  }

  reportUnreachable(id: NodeId): void {
    this.raft.step(message({ type: MessageType.Unreachable, from: id }));
  }

  reportSnapshot(id: NodeId, ok: boolean): void {
    this.raft.step(message({ type: MessageType.SnapStatus, from: id, reject: !ok }));
  }

  hasReady(): boolean {
    if (this.inFlight) return false;
    const r = this.raft;
    const ss = r.softState();
    if (ss.lead !== this.prevSoftState.lead || ss.state !== this.prevSoftState.state) return true;
    if (!hardStateEqual(r.hardState(), this.prevHardState)) return true;
    if (r.log.hasPendingSnapshot()) return true;
    if (r.log.unstable.entries.length > 0) return true;
    if (r.msgs.length > 0 || r.readStates.length > 0) return true;
    return r.log.hasNextCommittedEntries();
  }

  /** Takes the pending work. Call advance() once it is done before asking again. */
  ready(): Ready {
    assert(!this.inFlight, "ready() called again before advance()");
    const r = this.raft;
    const ss = r.softState();
    const hs = r.hardState();
    const softChanged = ss.lead !== this.prevSoftState.lead || ss.state !== this.prevSoftState.state;
    const hardChanged = !hardStateEqual(hs, this.prevHardState);
    const entries = r.log.unstableEntries();
    const snapshot = r.log.unstable.snapshot;
    const rd: Ready = {
      ...(softChanged ? { softState: ss } : {}),
      ...(hardChanged ? { hardState: hs } : {}),
      entries,
      ...(snapshot ? { snapshot } : {}),
      committedEntries: r.log.hasNextCommittedEntries() ? r.log.nextCommittedEntries() : [],
      messages: r.msgs,
      readStates: r.readStates,
      // A snapshot must be durable before the AppResp acknowledging it leaves: the leader never sends this
      // follower anything below the snapshot again.
      mustSync:
        entries.length > 0 ||
        snapshot !== undefined ||
        hs.term !== this.prevHardState.term ||
        hs.vote !== this.prevHardState.vote,
    };
    r.msgs = [];
    r.readStates = [];
    this.inFlight = rd;
    return rd;
  }

  /** The caller persisted, sent and applied everything in the last Ready. */
  advance(): void {
    const rd = this.inFlight;
    assert(rd, "advance() without a ready() in flight");
    this.inFlight = undefined;
    const r = this.raft;
    if (rd.softState) this.prevSoftState = rd.softState;
    if (rd.hardState) this.prevHardState = rd.hardState;
    const last = rd.entries[rd.entries.length - 1];
    if (last) r.log.stableTo(last.index, last.term);
    if (rd.snapshot) {
      r.log.stableSnapTo(rd.snapshot.meta.index);
      if (rd.snapshot.meta.index > r.log.applied) r.log.applied = rd.snapshot.meta.index;
    }
    for (const e of rd.committedEntries) {
      if (e.index <= r.log.applied) continue;
      if (e.type === EntryType.ConfChange) r.applyConfChange(decodeConfChange(e.data));
      r.log.appliedTo(e.index);
    }
    r.afterApply();
  }

  status(): Status {
    const r = this.raft;
    const base = {
      id: r.id,
      term: r.term,
      vote: r.vote,
      commit: r.log.committed,
      applied: r.log.applied,
      lastIndex: r.log.lastIndex(),
      lead: r.lead,
      state: r.state,
      leadTransferee: r.leadTransferee,
      config: r.tracker.confState(),
    };
    if (r.state !== "leader") return base;
    const progress = new Map<NodeId, PeerStatus>();
    for (const [id, pr] of r.tracker.progress) {
      progress.set(id, {
        match: pr.match,
        next: pr.next,
        state: pr.state,
        isLearner: pr.isLearner,
        recentActive: pr.recentActive,
      });
    }
    return { ...base, progress };
  }
}

export { NONE };
