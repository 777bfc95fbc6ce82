// The Raft state machine: roles, elections, replication, commit, ReadIndex, leadership transfer and
// membership. It is pure: messages in (`step`), time in (`tick`), and everything it wants done accumulates
// in `msgs`, `readStates` and the log's unstable part, which RawNode hands out as a Ready.
// Section numbers refer to the Raft paper (Ongaro & Ousterhout 2014) and Ongaro's thesis (2014).

import {
  applyToConfState,
  type ConfChange,
  ConfChangeType,
  decodeConfChange,
  validateConfChange,
} from "./confchange.js";
import { assert, ProposalError, SnapshotTemporarilyUnavailableError } from "./errors.js";
import { RaftLog } from "./log.js";
import { ProgressState } from "./progress.js";
import { ReadOnly } from "./read-only.js";
import type { Storage } from "./storage.js";
import { ProgressTracker } from "./tracker.js";
import {
  type ConfState,
  type Entry,
  EntryType,
  type HardState,
  type Index,
  index,
  type Message,
  MessageType,
  message,
  NONE,
  type NodeId,
  type ReadState,
  type Snapshot,
  type SoftState,
  StateType,
  type Term,
  term,
} from "./types.js";

export type RaftLogger = (event: string, fields: Record<string, unknown>) => void;

export interface RaftConfig {
  readonly id: NodeId;
  readonly storage: Storage;
  /** Ticks without a leader before a follower campaigns; randomized in [electionTick, 2*electionTick). */
  readonly electionTick: number;
  readonly heartbeatTick: number;
  /** Last index the caller's state machine has applied (restart). Defaults to the snapshot index. */
  readonly applied?: Index;
  /** Upper bound of entry bytes in one append message (at least one entry is always sent). */
  readonly maxSizePerMsg: number;
  /** Upper bound of appends in flight to one follower in Replicate state. */
  readonly maxInflightMsgs: number;
  /** Upper bound of entry bytes in flight to one follower. */
  readonly maxInflightBytes?: number;
  /** Upper bound of committed entry bytes handed out in one Ready. */
  readonly maxCommittedSizePerReady?: number;
  readonly checkQuorum: boolean;
  readonly preVote: boolean;
  /** Injected randomness in [0, 1); the simulator seeds it. */
  readonly random: () => number;
  /** Refuse proposals on followers instead of forwarding them to the leader. */
  readonly disableProposalForwarding?: boolean;
  /** A learner is promoted only when its log is within this many entries of the leader's. */
  readonly learnerPromotionMaxLag?: number;
  readonly logger?: RaftLogger;
}

/** Context of a vote sent because of a leadership transfer: receivers ignore their leader lease for it. */
export const CAMPAIGN_TRANSFER = new TextEncoder().encode("transfer");

function isTransferCampaign(ctx: Uint8Array): boolean {
  if (ctx.length !== CAMPAIGN_TRANSFER.length) return false;
  return ctx.every((b, i) => b === CAMPAIGN_TRANSFER[i]);
}

function voteRespType(t: MessageType): MessageType {
  return t === MessageType.Vote ? MessageType.VoteResp : MessageType.PreVoteResp;
}

export class Raft {
  readonly id: NodeId;
  term: Term = term(0);
  vote: NodeId = NONE;
  readonly log: RaftLog;
  readonly tracker: ProgressTracker;
  state: StateType = StateType.Follower;
  lead: NodeId = NONE;
  leadTransferee: NodeId = NONE;
  /** Index of the newest conf change in the log; another may not be proposed until it is applied. */
  pendingConfIndex: Index = index(0);
  readOnly = new ReadOnly();
  /** ReadIndex requests that arrived before this leader committed an entry of its own term. */
  private pendingReadIndexMessages: Message[] = [];
  msgs: Message[] = [];
  readStates: ReadState[] = [];

  /** A TimeoutNow (from this leader) whose campaign waits for an unapplied conf change; NONE if none. */
  private deferredTransferFrom: NodeId = NONE;
  /** Sender of the TimeoutNow being handled. */
  private transferFrom: NodeId = NONE;
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  private readonly electionTimeout: number;
  private readonly heartbeatTimeout: number;
  private readonly cfg: RaftConfig;
  private readonly log_: RaftLogger;

  constructor(cfg: RaftConfig) {
    assert(cfg.id !== NONE, "node id must not be empty");
    assert(
      cfg.heartbeatTick > 0 && cfg.electionTick > cfg.heartbeatTick,
      "electionTick must exceed heartbeatTick",
    );
    this.cfg = cfg;
    this.id = cfg.id;
    this.electionTimeout = cfg.electionTick;
    this.heartbeatTimeout = cfg.heartbeatTick;
    this.log_ = cfg.logger ?? (() => {});
    this.log = new RaftLog(cfg.storage, cfg.maxCommittedSizePerReady ?? Number.POSITIVE_INFINITY);
    this.tracker = new ProgressTracker(cfg.maxInflightMsgs, cfg.maxInflightBytes ?? Number.POSITIVE_INFINITY);

    const { hardState, confState } = cfg.storage.initialState();
    if (hardState.term !== 0 || hardState.vote !== NONE || hardState.commit !== 0) this.loadState(hardState);
    if (cfg.applied !== undefined && cfg.applied > 0) this.log.appliedTo(cfg.applied);
    // The configuration is the snapshot's plus every conf change the caller already applied.
    let cs: ConfState = confState;
    const snapIndex = this.log.firstIndex() - 1;
    if (this.log.applied > snapIndex) {
      for (const e of this.log.slice(
        index(snapIndex + 1),
        index(this.log.applied + 1),
        Number.POSITIVE_INFINITY,
      )) {
        if (e.type === EntryType.ConfChange) cs = applyToConfState(cs, decodeConfChange(e.data));
      }
    }
    this.tracker.applyConfState(cs, index(this.log.lastIndex() + 1));
    this.becomeFollower(this.term, NONE);
  }

  private loadState(hs: HardState): void {
    assert(
      hs.commit >= this.log.committed && hs.commit <= this.log.lastIndex(),
      () => `persisted commit ${hs.commit} is out of range [${this.log.committed}, ${this.log.lastIndex()}]`,
    );
    this.log.committed = hs.commit;
    this.term = hs.term;
    this.vote = hs.vote;
  }

  softState(): SoftState {
    return { lead: this.lead, state: this.state };
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  // ---- sending ----------------------------------------------------------------------------------------

  private send(m: Message): void {
    // Keep an explicit sender: a forwarded transfer request names the transferee in `from`.
    let out = { ...m, from: m.from === NONE ? this.id : m.from };
    if (
      m.type === MessageType.Vote ||
      m.type === MessageType.VoteResp ||
      m.type === MessageType.PreVote ||
      m.type === MessageType.PreVoteResp
    ) {
      // Vote messages carry the term of the campaign, set by the caller.
      assert(m.term !== 0, () => `term must be set on ${m.type}`);
    } else if (m.type === MessageType.Prop || m.type === MessageType.ReadIndex) {
      // Forwarded requests are term-less, like local ones: they are valid in any term.
      assert(m.term === 0, () => `term must not be set on forwarded ${m.type}`);
    } else {
      out = { ...out, term: this.term };
    }
    this.msgs.push(out);
  }

  /** Sends an append (or a snapshot) to `to` if flow control allows. Returns whether it sent anything. */
  private maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.tracker.progress.get(to);
    if (!pr || pr.isPaused()) return false;
    const prevIndex = index(pr.next - 1);
    const prevTerm = this.log.term(prevIndex);
    let ents: Entry[] | undefined;
    if (prevTerm !== undefined) {
      try {
        ents = this.log.entriesFrom(pr.next, this.cfg.maxSizePerMsg);
      } catch {
        ents = undefined;
      }
    }
    if (ents !== undefined && prevTerm !== undefined) {
      if (ents.length === 0 && !sendIfEmpty) return false;
      this.send(
        message({
          type: MessageType.App,
          to,
          index: prevIndex,
          logTerm: prevTerm,
          entries: ents,
          commit: this.log.committed,
        }),
      );
      const last = ents[ents.length - 1];
      if (pr.state === ProgressState.Replicate && last) {
        pr.optimisticUpdate(last.index);
        pr.inflights.add(
          last.index,
          ents.reduce((n, e) => n + e.data.length, 0),
        );
      } else if (pr.state === ProgressState.Probe) {
        pr.probeSent = true;
      }
      return true;
    }
    // The entries the follower needs were compacted: send the snapshot (§7).
    if (!pr.recentActive) return false;
    let snap: Snapshot;
    try {
      snap = this.log.snapshot();
    } catch (e) {
      if (e instanceof SnapshotTemporarilyUnavailableError) return false;
      throw e;
    }
    assert(snap.meta.index > 0, "need a non-empty snapshot");
    this.send(message({ type: MessageType.Snap, to, snapshot: snap }));
    pr.becomeSnapshot(snap.meta.index);
    this.log_("raft.snapshot-sent", { id: this.id, to, index: snap.meta.index });
    return true;
  }

  private sendAppend(to: NodeId): void {
    this.maybeSendAppend(to, true);
  }

  private sendHeartbeat(to: NodeId, ctx: Uint8Array | undefined): void {
    const pr = this.tracker.progress.get(to)!;
    // A follower's commit may only advance to what it is known to have (its match).
    const commit = index(Math.min(pr.match, this.log.committed));
    this.send(message({ type: MessageType.Heartbeat, to, commit, ...(ctx ? { context: ctx } : {}) }));
  }

  private forEachPeer(f: (id: NodeId) => void): void {
    for (const id of this.tracker.progress.keys()) if (id !== this.id) f(id);
  }

  bcastAppend(): void {
    this.forEachPeer((id) => this.sendAppend(id));
  }

  private bcastHeartbeat(): void {
    const ctx = this.readOnly.lastPendingRequestCtx();
    this.forEachPeer((id) => this.sendHeartbeat(id, ctx));
  }

  // ---- role changes -----------------------------------------------------------------------------------

  private reset(t: Term): void {
    if (this.term !== t) {
      this.term = t;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout =
      this.electionTimeout + Math.floor(this.cfg.random() * this.electionTimeout);
    this.leadTransferee = NONE;
    this.tracker.resetVotes();
    const last = this.log.lastIndex();
    for (const [id, pr] of this.tracker.progress) {
      const fresh = this.tracker.newProgress(index(last + 1), pr.isLearner);
      if (id === this.id) fresh.match = last;
      this.tracker.progress.set(id, fresh);
    }
    this.pendingConfIndex = index(0);
    this.pendingReadIndexMessages = [];
    this.readOnly = new ReadOnly();
    this.deferredTransferFrom = NONE;
  }

  becomeFollower(t: Term, lead: NodeId): void {
    const wasLeader = this.state === StateType.Leader;
    this.reset(t);
    this.lead = lead;
    this.state = StateType.Follower;
    if (wasLeader) this.log_("raft.stepped-down", { id: this.id, term: t });
  }

  private becomePreCandidate(): void {
    assert(this.state !== StateType.Leader, "leader cannot become pre-candidate");
    // PreVote (thesis §9.6) does not bump the term or change the vote.
    this.tracker.resetVotes();
    this.lead = NONE;
    this.state = StateType.PreCandidate;
  }

  private becomeCandidate(): void {
    assert(this.state !== StateType.Leader, "leader cannot become candidate");
    this.reset(term(this.term + 1));
    this.vote = this.id;
    this.state = StateType.Candidate;
  }

  private becomeLeader(): void {
    assert(this.state !== StateType.Follower, "follower cannot become leader without campaigning");
    this.reset(this.term);
    this.lead = this.id;
    this.state = StateType.Leader;
    this.tracker.progress.get(this.id)?.becomeReplicate();
    // Conservatively treat any conf change in the log as pending until this term's first entry is applied
    // (the single-server change fix from Ongaro's raft-dev note of 2015).
    this.pendingConfIndex = this.log.lastIndex();
    // §5.4.2 / §8: a new leader commits an entry of its own term to learn what is committed.
    this.appendEntries([{ term: term(0), index: index(0), type: EntryType.Normal, data: new Uint8Array(0) }]);
    this.log_("raft.became-leader", { id: this.id, term: this.term });
  }

  // ---- time -------------------------------------------------------------------------------------------

  tick(): void {
    if (this.state === StateType.Leader) this.tickHeartbeat();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.step(message({ type: MessageType.Hup, from: this.id }));
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      if (this.cfg.checkQuorum) this.step(message({ type: MessageType.CheckQuorum, from: this.id }));
      // A transfer that did not finish within an election timeout is abandoned (thesis §3.10).
      if (this.state === StateType.Leader && this.leadTransferee !== NONE) this.abortLeaderTransfer();
    }
    if (this.state !== StateType.Leader) return;
    // A snapshot message can be lost without anyone reporting it: retry after a while.
    for (const pr of this.tracker.progress.values()) {
      if (pr.state === ProgressState.Snapshot && ++pr.snapshotTicks > 2 * this.electionTimeout)
        pr.becomeProbe();
    }
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      this.step(message({ type: MessageType.Beat, from: this.id }));
    }
  }

  // ---- elections --------------------------------------------------------------------------------------

  /** Whether this node may campaign: a voter that is not waiting to persist a snapshot. */
  promotable(): boolean {
    return this.tracker.voters.has(this.id) && !this.log.hasPendingSnapshot();
  }

  private hasUnappliedConfChanges(): boolean {
    if (this.log.applied >= this.log.committed) return false;
    const lo = index(Math.max(this.log.applied + 1, this.log.firstIndex()));
    const ents = this.log.slice(lo, index(this.log.committed + 1), Number.POSITIVE_INFINITY);
    return ents.some((e) => e.type === EntryType.ConfChange);
  }

  /**
   * Called by RawNode after the caller applied entries: runs a transfer campaign that TimeoutNow asked for
   * while a conf change was still unapplied — unless the term moved on or another leader spoke meanwhile.
   */
  afterApply(): void {
    const from = this.deferredTransferFrom;
    if (from === NONE || this.hasUnappliedConfChanges()) return;
    this.deferredTransferFrom = NONE;
    if (this.state === StateType.Leader || (this.lead !== NONE && this.lead !== from)) return;
    this.hup(true);
  }

  private hup(transfer: boolean): void {
    if (this.state === StateType.Leader) return;
    if (!this.promotable()) return;
    // A node whose configuration is about to change must not campaign with the old one.
    if (this.hasUnappliedConfChanges()) {
      this.log_("raft.campaign-deferred", { id: this.id, reason: "unapplied conf change" });
      // A leader removing itself hands over with TimeoutNow right after applying the removal, which the
      // target may not have applied yet: campaign as soon as it has (see afterApply), not an election
      // timeout later.
      if (transfer) this.deferredTransferFrom = this.lead === NONE ? this.transferFrom : this.lead;
      return;
    }
    if (this.cfg.preVote && !transfer) this.campaign("pre-election", false);
    else this.campaign("election", transfer);
  }

  private campaign(kind: "pre-election" | "election", transfer: boolean): void {
    let voteMsg: MessageType;
    let t: Term;
    if (kind === "pre-election") {
      this.becomePreCandidate();
      voteMsg = MessageType.PreVote;
      t = term(this.term + 1); // the term we would campaign in
    } else {
      this.becomeCandidate();
      voteMsg = MessageType.Vote;
      t = this.term;
    }
    if (this.poll(this.id, true) === "won") {
      // Single voter: won at once.
      if (kind === "pre-election") this.campaign("election", false);
      else this.becomeLeader();
      return;
    }
    for (const id of this.tracker.voters) {
      if (id === this.id) continue;
      this.send(
        message({
          type: voteMsg,
          to: id,
          term: t,
          index: this.log.lastIndex(),
          logTerm: this.log.lastTerm(),
          ...(transfer ? { context: CAMPAIGN_TRANSFER } : {}),
        }),
      );
    }
  }

  private poll(id: NodeId, granted: boolean): "won" | "lost" | "pending" {
    this.tracker.recordVote(id, granted);
    return this.tracker.tallyVotes().result;
  }

  // ---- the message dispatcher -------------------------------------------------------------------------

  step(m: Message): void {
    if (m.term === 0) {
      // Local message, or a forwarded proposal / read (term-less by design).
    } else if (m.term > this.term) {
      if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
        const force = isTransferCampaign(m.context);
        // CheckQuorum leader lease (thesis §4.2.3): a node that heard from a live leader within the minimum
        // election timeout ignores vote requests, so a partitioned node rejoining cannot depose it.
        const inLease =
          this.cfg.checkQuorum && this.lead !== NONE && this.electionElapsed < this.electionTimeout;
        if (!force && inLease) {
          this.log_("raft.vote-ignored-in-lease", {
            id: this.id,
            from: m.from,
            term: m.term,
            ourTerm: this.term,
          });
          return;
        }
      }
      if (m.type === MessageType.PreVote) {
        // Never change our term in answer to a PreVote.
      } else if (m.type === MessageType.PreVoteResp && !m.reject) {
        // The term we asked about; we bump it ourselves when the pre-campaign wins.
      } else {
        const fromLeader =
          m.type === MessageType.App || m.type === MessageType.Heartbeat || m.type === MessageType.Snap;
        this.becomeFollower(m.term, fromLeader ? m.from : NONE);
      }
    } else if (m.term < this.term) {
      if (
        (this.cfg.checkQuorum || this.cfg.preVote) &&
        (m.type === MessageType.Heartbeat || m.type === MessageType.App)
      ) {
        // A stale leader (e.g. healed from a partition) learns our higher term from this answer; without it,
        // CheckQuorum or PreVote could leave it unable to ever step down while we cannot elect.
        this.send(message({ type: MessageType.AppResp, to: m.from }));
      } else if (m.type === MessageType.PreVote) {
        this.send(message({ type: MessageType.PreVoteResp, to: m.from, term: this.term, reject: true }));
      }
      return;
    }

    switch (m.type) {
      case MessageType.Hup:
        this.hup(false);
        return;
      case MessageType.Vote:
      case MessageType.PreVote:
        this.handleVoteRequest(m);
        return;
      default:
        break;
    }
    switch (this.state) {
      case StateType.Leader:
        this.stepLeader(m);
        return;
      case StateType.Candidate:
      case StateType.PreCandidate:
        this.stepCandidate(m);
        return;
      case StateType.Follower:
        this.stepFollower(m);
        return;
    }
  }

  private handleVoteRequest(m: Message): void {
    // §5.2: one vote per term (we may repeat it); PreVote may be granted for a future term freely.
    const canVote =
      this.vote === m.from ||
      (this.vote === NONE && this.lead === NONE) ||
      (m.type === MessageType.PreVote && m.term > this.term);
    // §5.4.1: only for a candidate whose log is at least as up-to-date as ours.
    if (canVote && this.log.isUpToDate(m.index, m.logTerm)) {
      this.send(message({ type: voteRespType(m.type), to: m.from, term: m.term }));
      if (m.type === MessageType.Vote) {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send(message({ type: voteRespType(m.type), to: m.from, term: this.term, reject: true }));
    }
  }

  // ---- leader -----------------------------------------------------------------------------------------

  private stepLeader(m: Message): void {
    switch (m.type) {
      case MessageType.Beat:
        this.bcastHeartbeat();
        return;
      case MessageType.CheckQuorum:
        if (!this.tracker.quorumActive(this.id)) {
          this.log_("raft.check-quorum-lost", { id: this.id, term: this.term });
          this.becomeFollower(this.term, NONE);
          return;
        }
        for (const [id, pr] of this.tracker.progress) if (id !== this.id) pr.recentActive = false;
        return;
      case MessageType.Prop:
        this.leaderPropose(m);
        return;
      case MessageType.ReadIndex:
        this.leaderReadIndex(m);
        return;
      default:
        break;
    }

    const pr = this.tracker.progress.get(m.from);
    if (!pr) return; // not (or no longer) a member
    switch (m.type) {
      case MessageType.AppResp: {
        pr.recentActive = true;
        if (m.reject) {
          // Fast back-off (thesis §5.3 optimization, etcd's findConflictByTerm): skip every entry whose
          // term is above the follower's hint term.
          let nextProbe = m.rejectHint;
          if (m.logTerm > 0) nextProbe = this.log.findConflictByTerm(m.rejectHint, m.logTerm);
          if (pr.maybeDecrTo(m.index, nextProbe)) {
            if (pr.state === ProgressState.Replicate) pr.becomeProbe();
            this.sendAppend(m.from);
          }
          return;
        }
        const oldPaused = pr.isPaused();
        if (!pr.maybeUpdate(m.index)) return;
        if (pr.state === ProgressState.Probe) {
          pr.becomeReplicate();
        } else if (pr.state === ProgressState.Snapshot && pr.match + 1 >= this.log.firstIndex()) {
          // The snapshot landed (or the follower caught up another way): resume normal replication.
          pr.becomeProbe();
          pr.becomeReplicate();
        } else if (pr.state === ProgressState.Replicate) {
          pr.inflights.freeLE(m.index);
        }
        if (this.maybeCommit()) {
          this.releasePendingReadIndexMessages();
          this.bcastAppend();
        } else if (oldPaused) {
          this.sendAppend(m.from);
        }
        // Pipelining: keep the window full while there is more to send.
        while (this.maybeSendAppend(m.from, false)) {}
        if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) {
          this.log_("raft.transfer-timeout-now", { id: this.id, to: m.from });
          this.send(message({ type: MessageType.TimeoutNow, to: m.from }));
        }
        return;
      }
      case MessageType.HeartbeatResp: {
        pr.recentActive = true;
        pr.probeSent = false;
        // A heartbeat answer proves the follower is reachable; free one slot so a window full of lost
        // appends cannot stall replication forever.
        if (pr.state === ProgressState.Replicate && pr.inflights.full()) pr.inflights.freeFirstOne();
        if (pr.match < this.log.lastIndex()) this.sendAppend(m.from);
        if (m.context.length === 0) return;
        const acks = this.readOnly.recvAck(m.from, m.context);
        if (!acks || !this.tracker.hasQuorum(acks)) return;
        for (const rs of this.readOnly.advance(m.context)) this.respondToReadIndex(rs.req, rs.index);
        return;
      }
      case MessageType.SnapStatus:
        if (pr.state !== ProgressState.Snapshot) return;
        if (m.reject) pr.pendingSnapshot = index(0);
        pr.becomeProbe();
        // Wait for a heartbeat answer (or the append response) before probing again.
        pr.probeSent = true;
        return;
      case MessageType.Unreachable:
        if (pr.state === ProgressState.Replicate) pr.becomeProbe();
        return;
      case MessageType.TransferLeader: {
        if (pr.isLearner) return;
        const target = m.from;
        if (this.leadTransferee !== NONE) {
          if (this.leadTransferee === target) return;
          this.abortLeaderTransfer();
        }
        if (target === this.id) return;
        // The transfer must finish within one election timeout.
        this.electionElapsed = 0;
        this.leadTransferee = target;
        this.log_("raft.transfer-started", { id: this.id, to: target, term: this.term });
        if (pr.match === this.log.lastIndex())
          this.send(message({ type: MessageType.TimeoutNow, to: target }));
        else this.sendAppend(target);
        return;
      }
      default:
        return;
    }
  }

  private leaderPropose(m: Message): void {
    // Only a request stepped by our own caller has no sender; one from the network (even our own, forwarded
    // back to us) must never throw.
    const local = m.from === NONE;
    try {
      assert(m.entries.length > 0, "empty proposal");
      if (!this.tracker.progress.has(this.id)) {
        throw new ProposalError(
          "not-a-member",
          `${this.id} was removed from the cluster and cannot accept proposals`,
        );
      }
      if (this.leadTransferee !== NONE) {
        throw new ProposalError(
          "transfer-in-progress",
          `leadership is being transferred from ${this.id} to ${this.leadTransferee}; retry shortly`,
        );
      }
      for (const e of m.entries) {
        if (e.type === EntryType.ConfChange) this.checkConfChangeProposal(decodeConfChange(e.data));
      }
    } catch (e) {
      if (local) throw e;
      this.log_("raft.forwarded-proposal-refused", {
        id: this.id,
        from: m.from,
        reason: (e as Error).message,
      });
      return;
    }
    const first = index(this.log.lastIndex() + 1);
    m.entries.forEach((e, i) => {
      if (e.type === EntryType.ConfChange) this.pendingConfIndex = index(first + i);
    });
    this.appendEntries(m.entries);
    this.bcastAppend();
  }

  private checkConfChangeProposal(cc: ConfChange): void {
    if (this.pendingConfIndex > this.log.applied) {
      throw new ProposalError(
        "conf-change-pending",
        `a membership change at index ${this.pendingConfIndex} is not applied yet; one change at a time`,
      );
    }
    const why = validateConfChange(this.tracker.confState(), cc);
    if (why) throw new ProposalError("invalid-conf-change", why);
    if (cc.type === ConfChangeType.AddNode && this.tracker.learners.has(cc.nodeId)) {
      const pr = this.tracker.progress.get(cc.nodeId)!;
      const maxLag = this.cfg.learnerPromotionMaxLag ?? 1000;
      if (pr.match + maxLag < this.log.lastIndex()) {
        throw new ProposalError(
          "learner-not-caught-up",
          `learner ${cc.nodeId} has ${pr.match} of ${this.log.lastIndex()} entries; promote it once it caught up`,
        );
      }
    }
  }

  private appendEntries(es: readonly Entry[]): void {
    let li = this.log.lastIndex();
    const stamped = es.map((e) => {
      li = index(li + 1);
      return { ...e, term: this.term, index: li };
    });
    this.log.append(stamped);
    this.tracker.progress.get(this.id)?.maybeUpdate(this.log.lastIndex());
    this.maybeCommit();
  }

  /** §5.3/§5.4.2: commit the quorum index if it is of the current term. */
  private maybeCommit(): boolean {
    return this.log.maybeCommit(this.tracker.committedIndex(), this.term);
  }

  private committedEntryInCurrentTerm(): boolean {
    return this.log.term(this.log.committed) === this.term;
  }

  private leaderReadIndex(m: Message): void {
    if (this.tracker.isSingleton()) {
      this.respondToReadIndex(m, this.log.committed);
      return;
    }
    // Thesis §6.4 step 1: the leader's commit index is only known to be current once it has committed an
    // entry of its own term; until then, reads wait.
    if (!this.committedEntryInCurrentTerm()) {
      this.pendingReadIndexMessages.push(m);
      return;
    }
    this.startReadIndex(m);
  }

  private startReadIndex(m: Message): void {
    const hb = this.readOnly.addRequest(this.log.committed, m);
    const acks = this.readOnly.recvAck(this.id, hb);
    // Our own ack may already be a quorum of voters (one voter plus learners): no round trip needed.
    if (acks && this.tracker.hasQuorum(acks)) {
      for (const rs of this.readOnly.advance(hb)) this.respondToReadIndex(rs.req, rs.index);
      return;
    }
    this.bcastHeartbeat();
  }

  private releasePendingReadIndexMessages(): void {
    if (this.pendingReadIndexMessages.length === 0 || !this.committedEntryInCurrentTerm()) return;
    const pending = this.pendingReadIndexMessages;
    this.pendingReadIndexMessages = [];
    for (const m of pending) this.startReadIndex(m);
  }

  private respondToReadIndex(req: Message, readIndex: Index): void {
    if (req.from === NONE || req.from === this.id) {
      this.readStates.push({ index: readIndex, requestCtx: req.context });
    } else {
      this.send(
        message({ type: MessageType.ReadIndexResp, to: req.from, index: readIndex, context: req.context }),
      );
    }
  }

  private abortLeaderTransfer(): void {
    if (this.leadTransferee !== NONE)
      this.log_("raft.transfer-aborted", { id: this.id, to: this.leadTransferee });
    this.leadTransferee = NONE;
  }

  // ---- candidate --------------------------------------------------------------------------------------

  private stepCandidate(m: Message): void {
    const myVoteResp = this.state === StateType.PreCandidate ? MessageType.PreVoteResp : MessageType.VoteResp;
    switch (m.type) {
      case MessageType.Prop:
        this.refuseWithoutLeader(m, "proposal");
        return;
      case MessageType.ReadIndex:
        this.refuseWithoutLeader(m, "read");
        return;
      case MessageType.App:
        this.becomeFollower(m.term, m.from);
        this.handleAppendEntries(m);
        return;
      case MessageType.Heartbeat:
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case MessageType.Snap:
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case myVoteResp: {
        const result = this.poll(m.from, !m.reject);
        if (result === "won") {
          if (this.state === StateType.PreCandidate) {
            this.campaign("election", false);
          } else {
            this.becomeLeader();
            this.bcastAppend();
          }
        } else if (result === "lost") {
          // PreVoteResp rejections carry our own term or higher; either way we fall back to follower.
          this.becomeFollower(this.term, NONE);
        }
        return;
      }
      default:
        return;
    }
  }

  private refuseWithoutLeader(m: Message, what: string): void {
    if (m.from === NONE) {
      throw new ProposalError(
        "no-leader",
        `no leader is known to ${this.id} (election in progress); retry the ${what}`,
      );
    }
    this.log_("raft.forwarded-request-dropped", {
      id: this.id,
      from: m.from,
      type: m.type,
      reason: "no leader",
    });
  }

  // ---- follower ---------------------------------------------------------------------------------------

  private stepFollower(m: Message): void {
    switch (m.type) {
      case MessageType.Prop:
        if (this.lead === NONE) {
          this.refuseWithoutLeader(m, "proposal");
          return;
        }
        if (this.cfg.disableProposalForwarding) {
          throw new ProposalError(
            "forwarding-disabled",
            `${this.id} is a follower and does not forward proposals; send it to the leader ${this.lead}`,
          );
        }
        this.send({ ...m, to: this.lead });
        return;
      case MessageType.App:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppendEntries(m);
        return;
      case MessageType.Heartbeat:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return;
      case MessageType.Snap:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return;
      case MessageType.TransferLeader:
        if (this.lead === NONE) {
          this.log_("raft.transfer-dropped", { id: this.id, reason: "no leader" });
          return;
        }
        this.send({ ...m, to: this.lead, term: term(0), from: m.from });
        return;
      case MessageType.TimeoutNow:
        // Transfers skip PreVote: we know the leader is alive and handing over (thesis §3.10).
        this.log_("raft.timeout-now", { id: this.id, term: this.term, from: m.from });
        this.transferFrom = m.from;
        this.hup(true);
        this.transferFrom = NONE;
        return;
      case MessageType.ReadIndex:
        if (this.lead === NONE) {
          this.refuseWithoutLeader(m, "read");
          return;
        }
        this.send({ ...m, to: this.lead });
        return;
      case MessageType.ReadIndexResp:
        this.readStates.push({ index: m.index, requestCtx: m.context });
        return;
      default:
        return;
    }
  }

  private handleAppendEntries(m: Message): void {
    if (m.index < this.log.committed) {
      this.send(message({ type: MessageType.AppResp, to: m.from, index: this.log.committed }));
      return;
    }
    const lastNew = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew !== undefined) {
      this.send(message({ type: MessageType.AppResp, to: m.from, index: lastNew }));
      return;
    }
    // Consistency check failed (§5.3). Hint where our log may match so the leader can skip whole terms.
    let hint = index(Math.min(m.index, this.log.lastIndex()));
    hint = this.log.findConflictByTerm(hint, m.logTerm);
    const hintTerm = this.log.term(hint) ?? term(0);
    this.send(
      message({
        type: MessageType.AppResp,
        to: m.from,
        index: m.index,
        reject: true,
        rejectHint: hint,
        logTerm: hintTerm,
      }),
    );
  }

  private handleHeartbeat(m: Message): void {
    this.log.commitTo(m.commit);
    this.send(message({ type: MessageType.HeartbeatResp, to: m.from, context: m.context }));
  }

  private handleSnapshot(m: Message): void {
    const s = m.snapshot!;
    if (this.restore(s)) {
      this.log_("raft.snapshot-restored", { id: this.id, index: s.meta.index, term: s.meta.term });
      this.send(message({ type: MessageType.AppResp, to: m.from, index: this.log.lastIndex() }));
    } else {
      this.send(message({ type: MessageType.AppResp, to: m.from, index: this.log.committed }));
    }
  }

  private restore(s: Snapshot): boolean {
    if (s.meta.index <= this.log.committed) return false;
    if (this.state !== StateType.Follower) {
      // Defensive: only a leader of our term sends snapshots, and then we are its follower.
      this.becomeFollower(term(this.term + 1), NONE);
      return false;
    }
    if (this.log.matchTerm(s.meta.index, s.meta.term)) {
      // We already have the snapshot's last entry: fast-forward commit instead of discarding our log.
      this.log.commitTo(s.meta.index);
      return false;
    }
    this.log.restore(s);
    this.tracker.applyConfState(s.meta.confState, index(this.log.lastIndex() + 1));
    return true;
  }

  // ---- membership -------------------------------------------------------------------------------------

  /** Called when a ConfChange entry is applied. Returns the new configuration. */
  applyConfChange(cc: ConfChange): ConfState {
    const cs = applyToConfState(this.tracker.confState(), cc);
    this.tracker.applyConfState(cs, index(this.log.lastIndex() + 1));
    this.log_("raft.conf-applied", {
      id: this.id,
      change: cc.type,
      node: cc.nodeId,
      voters: cs.voters,
      learners: cs.learners,
    });
    if (this.state !== StateType.Leader) return cs;
    if (!this.tracker.voters.has(this.id)) {
      // Removing the leader: hand over to the most up-to-date voter at once instead of letting the cluster
      // wait a full election timeout, then step down.
      let best: NodeId = NONE;
      let bestMatch = -1;
      for (const id of this.tracker.voters) {
        const pr = this.tracker.progress.get(id)!;
        if (pr.match > bestMatch) {
          best = id;
          bestMatch = pr.match;
        }
      }
      if (best !== NONE && bestMatch === this.log.lastIndex())
        this.send(message({ type: MessageType.TimeoutNow, to: best }));
      this.becomeFollower(this.term, NONE);
      return cs;
    }
    if (this.leadTransferee !== NONE && !this.tracker.voters.has(this.leadTransferee))
      this.abortLeaderTransfer();
    // The quorum may have shrunk (something may commit now), and a new member needs entries.
    if (this.maybeCommit()) this.bcastAppend();
    else this.forEachPeer((id) => this.maybeSendAppend(id, false));
    return cs;
  }
}
