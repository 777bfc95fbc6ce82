// The configuration (voters and learners) and every member's Progress, plus the quorum arithmetic.
// zsha changes membership one server at a time (Raft thesis §4.1), so a configuration is a single majority.

import { assert } from "./errors.js";
import { Inflights, Progress } from "./progress.js";
import type { ConfState, Index, NodeId } from "./types.js";

export class ProgressTracker {
  voters = new Set<NodeId>();
  learners = new Set<NodeId>();
  progress = new Map<NodeId, Progress>();
  /** Votes received in the current (pre-)campaign: true granted, false rejected. */
  votes = new Map<NodeId, boolean>();

  constructor(
    private readonly maxInflight: number,
    private readonly maxInflightBytes: number,
  ) {}

  confState(): ConfState {
    return { voters: [...this.voters].sort(), learners: [...this.learners].sort() };
  }

  isSingleton(): boolean {
    return this.voters.size === 1 && this.learners.size === 0;
  }

  quorum(): number {
    return Math.floor(this.voters.size / 2) + 1;
  }

  newProgress(next: Index, isLearner: boolean): Progress {
    return new Progress(next, new Inflights(this.maxInflight, this.maxInflightBytes), isLearner);
  }

  /** Resets the configuration to `cs`, keeping the progress of members that remain. */
  applyConfState(cs: ConfState, nextIndex: Index): void {
    const members = new Set<NodeId>([...cs.voters, ...cs.learners]);
    for (const id of [...this.progress.keys()]) if (!members.has(id)) this.progress.delete(id);
    this.voters = new Set(cs.voters);
    this.learners = new Set(cs.learners);
    assert(
      [...this.voters].every((v) => !this.learners.has(v)),
      "a node cannot be both voter and learner",
    );
    for (const id of members) {
      const isLearner = this.learners.has(id);
      const pr = this.progress.get(id);
      if (pr) pr.isLearner = isLearner;
      else this.progress.set(id, this.newProgress(nextIndex, isLearner));
    }
  }

  /** The largest index replicated on a quorum of voters (the commit candidate). */
  committedIndex(): Index {
    const matches = [...this.voters].map((id) => this.progress.get(id)?.match ?? 0).sort((a, b) => b - a);
    if (matches.length === 0) return 0 as Index;
    return matches[this.quorum() - 1] as Index;
  }

  resetVotes(): void {
    this.votes.clear();
  }

  recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  /** "won", "lost" or "pending", counting only voters. */
  tallyVotes(): { granted: number; rejected: number; result: "won" | "lost" | "pending" } {
    let granted = 0;
    let rejected = 0;
    for (const id of this.voters) {
      const v = this.votes.get(id);
      if (v === true) granted++;
      else if (v === false) rejected++;
    }
    const q = this.quorum();
    const result = granted >= q ? "won" : this.voters.size - rejected < q ? "lost" : "pending";
    return { granted, rejected, result };
  }

  /** CheckQuorum: whether a quorum of voters was recently active (self counts as active). */
  quorumActive(self: NodeId): boolean {
    let active = 0;
    for (const id of this.voters) {
      const pr = this.progress.get(id);
      if (id === self || pr?.recentActive) active++;
    }
    return active >= this.quorum();
  }

  /** Counts `acks` (voters that confirmed a ReadIndex heartbeat round). */
  hasQuorum(acks: ReadonlySet<NodeId>): boolean {
    let n = 0;
    for (const id of this.voters) if (acks.has(id)) n++;
    return n >= this.quorum();
  }
}
