// Raft's safety properties (paper Figure 3), checked incrementally after every simulated event:
//  - Election Safety: at most one leader per term.
//  - Log Matching: an (index, term) pair names one entry content and one predecessor term, everywhere.
//    By induction that is equivalent to "logs agreeing on (index, term) agree on every entry before it".
//  - Leader Completeness: a new leader's log holds every entry committed before its election.
//  - State Machine Safety: no two members apply different entries at one index.
// Plus the client-visible ones (linearizable ReadIndex reads, no acknowledged write lost) kept by the
// workload, which reports into `violation`.

import {
  type Entry,
  type Index,
  index,
  type NodeId,
  type Ready,
  StateType,
  type Term,
} from "../../src/raft/index.js";
import { entryKey } from "./kv-machine.js";
import type { SimRaftNode } from "./raft-node.js";

interface Registered {
  readonly key: string;
  readonly prevTerm: number;
}

export class Checker {
  readonly violations: string[] = [];
  private leaders = new Map<Term, NodeId>();
  private registry = new Map<string, Registered>();
  /** Ground truth of committed entries: index → (term, content). */
  readonly committed = new Map<number, { term: number; key: string; by: NodeId }>();
  maxCommitted = 0;
  private commitSeen = new Map<NodeId, number>();

  constructor(private readonly onViolation: (what: string) => void) {}

  violation(what: string): void {
    this.violations.push(what);
    this.onViolation(what);
  }

  /** After every event on `node`. */
  checkNode(node: SimRaftNode): void {
    const r = node.rn?.raft;
    if (!r) return;
    if (r.state === StateType.Leader) {
      const prev = this.leaders.get(r.term);
      if (prev === undefined) this.leaders.set(r.term, node.id);
      else if (prev !== node.id)
        this.violation(`election safety: ${prev} and ${node.id} are both leaders of term ${r.term}`);
    }
    this.recordCommitted(node);
  }

  onReady(node: SimRaftNode, rd: Ready): void {
    const log = node.rn!.raft.log;
    for (const e of rd.entries) {
      const prevTerm = e.index - 1 >= log.firstIndex() - 1 ? (log.term(index(e.index - 1)) ?? -1) : -1;
      this.registerEntry(node.id, e, prevTerm);
    }
    if (rd.softState?.state === StateType.Leader) this.checkLeaderCompleteness(node);
  }

  private registerEntry(id: NodeId, e: Entry, prevTerm: number): void {
    const k = `${e.index}:${e.term}`;
    const key = entryKey(e);
    const seen = this.registry.get(k);
    if (!seen) {
      this.registry.set(k, { key, prevTerm });
      return;
    }
    if (seen.key !== key)
      this.violation(`log matching: ${id} has a different entry at index ${e.index} term ${e.term}`);
    if (prevTerm !== -1 && seen.prevTerm !== -1 && seen.prevTerm !== prevTerm) {
      this.violation(
        `log matching: ${id}'s entry ${e.index}/${e.term} follows term ${prevTerm}, elsewhere term ${seen.prevTerm}`,
      );
    }
  }

  /** Entries up to a member's commit index are committed: record them, and check they agree. */
  private recordCommitted(node: SimRaftNode): void {
    const log = node.rn!.raft.log;
    const c = log.committed;
    const from = Math.max((this.commitSeen.get(node.id) ?? 0) + 1, log.firstIndex());
    if (c < from) {
      this.commitSeen.set(node.id, c);
      return;
    }
    const ents = log.slice(index(from), index(c + 1), Number.POSITIVE_INFINITY);
    for (const e of ents) this.recordOne(node.id, e.index, e.term, entryKey(e), "commit");
    this.commitSeen.set(node.id, c);
  }

  private recordOne(id: NodeId, i: number, t: number, key: string, how: string): void {
    const prev = this.committed.get(i);
    if (!prev) {
      this.committed.set(i, { term: t, key, by: id });
      if (i > this.maxCommitted) this.maxCommitted = i;
      return;
    }
    if (prev.term !== t || prev.key !== key) {
      this.violation(
        `state machine safety: ${id} ${how}s index ${i} as term ${t}, but ${prev.by} committed term ${prev.term} there`,
      );
    }
  }

  onApplied(node: SimRaftNode, e: Entry): void {
    this.recordOne(node.id, e.index, e.term, entryKey(e), "appl");
  }

  /** Restarted members start counting commits from scratch (their commit index may be lower). */
  onRestart(id: NodeId): void {
    this.commitSeen.delete(id);
  }

  private checkLeaderCompleteness(node: SimRaftNode): void {
    const r = node.rn!.raft;
    const log = r.log;
    if (this.maxCommitted > log.lastIndex()) {
      this.violation(
        `leader completeness: ${node.id} leads term ${r.term} with last index ${log.lastIndex()} < committed ${this.maxCommitted}`,
      );
      return;
    }
    const first = log.firstIndex();
    for (let i = Math.max(first - 1, 1); i <= this.maxCommitted; i++) {
      const c = this.committed.get(i);
      if (!c) continue;
      const t = log.term(i as Index);
      if (t !== undefined && t !== c.term) {
        this.violation(
          `leader completeness: ${node.id} leads term ${r.term} with term ${t} at committed index ${i} (term ${c.term})`,
        );
        return;
      }
    }
  }
}
