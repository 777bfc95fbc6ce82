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

  constructor(
    private readonly onViolation: (what: string) => void,
    private readonly allNodes: () => Iterable<SimRaftNode>,
  ) {}

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
    const last = ents[ents.length - 1];
    if (node.rn!.raft.state === StateType.Leader && last) this.checkCommitSafety(node, last.index, last.term);
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

  /**
   * Leader Completeness for every possible next leader, checked the moment a leader commits (i, t): no
   * voter lacking that entry may be able to collect a quorum of votes (§5.4.1's up-to-date rule), where
   * each voter's log is taken at its weakest — what is on its disk, or in its memory — since any member
   * may crash and restart at any moment. A correct leader only commits entries on a quorum of disks, so
   * this never fires for it; committing an old-term entry by counting replicas (paper Figure 8) does.
   */
  private checkCommitSafety(leader: SimRaftNode, i: Index, t: Term): void {
    const voters = leader.rn!.raft.tracker.voters;
    const nodes = [...this.allNodes()].filter((n) => voters.has(n.id));
    const quorum = Math.floor(voters.size / 2) + 1;
    const versions = (n: SimRaftNode) => {
      const v: { lastTerm: number; lastIndex: number; has: boolean }[] = [];
      const st = n.storage;
      const sLast = st.lastIndex();
      v.push({
        lastTerm: st.term(sLast),
        lastIndex: sLast,
        has: hasEntry(i, t, st.firstIndex() - 1, sLast, (x) => st.term(x)),
      });
      const log = n.rn?.raft.log;
      if (log) {
        v.push({
          lastTerm: log.lastTerm(),
          lastIndex: log.lastIndex(),
          has: hasEntry(i, t, log.firstIndex() - 1, log.lastIndex(), (x) => log.term(x) ?? -1),
        });
      }
      return v;
    };
    const upToDate = (
      a: { lastTerm: number; lastIndex: number },
      b: { lastTerm: number; lastIndex: number },
    ) => a.lastTerm > b.lastTerm || (a.lastTerm === b.lastTerm && a.lastIndex >= b.lastIndex);
    const all = nodes.map((n) => ({ n, vs: versions(n) }));
    for (const x of all) {
      for (const xv of x.vs) {
        if (xv.has) continue;
        // Voters that would grant x (in some crash/no-crash version of themselves), x included.
        const granting = all.filter((y) => y === x || y.vs.some((yv) => upToDate(xv, yv)));
        if (granting.length >= quorum) {
          this.violation(
            `commit safety: ${leader.id} committed ${i}/${t} in term ${leader.rn!.raft.term}, but ${x.n.id} lacks it and ` +
              `could be elected by ${granting.map((g) => g.n.id).join(",")}`,
          );
          return;
        }
      }
    }
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

/** Whether a log holds entry (i, t); entries compacted into a snapshot are committed ones, so held. */
function hasEntry(i: Index, t: Term, snapIndex: number, last: number, termOf: (x: Index) => number): boolean {
  if (i <= snapIndex) return true;
  if (i > last) return false;
  return termOf(i) === t;
}
