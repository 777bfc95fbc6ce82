// ReadIndex (thesis §6.4), leadership transfer (thesis §3.10), proposal routing, and crash recovery of
// the persisted state.

import { describe, expect, it } from "vitest";
import {
  index,
  MemoryStorage,
  MessageType,
  nodeId,
  ProposalError,
  StateType,
  term,
} from "../../src/raft/index.js";
import { bytes, Cluster, ids, Solo, storageWithLog } from "./harness.js";

const a = nodeId("a");
const b = nodeId("b");
const c = nodeId("c");

function refusal(f: () => void): string {
  try {
    f();
  } catch (e) {
    if (e instanceof ProposalError) return e.reason;
    throw e;
  }
  return "accepted";
}

describe("ReadIndex (thesis §6.4)", () => {
  it("thesis §6.4: several reads are answered with their own request ids at the commit index, batched into one quorum round", () => {
    const cl = new Cluster({ voters: ["a", "b", "c"] });
    cl.elect("a");
    cl.propose("a", "x");
    cl.stabilize();
    const commit = cl.status("a").commit;
    for (const ctx of ["r1", "r2", "r3"]) cl.readIndex("a", ctx);
    // Each read broadcast one heartbeat round (to b and c) tagged with a context of its own; drop all but
    // the last round: one quorum answer to the newest round releases every read queued before it.
    const hbs = cl.pendingOfType(MessageType.Heartbeat);
    expect(hbs.map((m) => m.to)).toEqual([b, c, b, c, b, c]);
    const tags = new Set(hbs.map((m) => m.context.join(",")));
    expect(tags.size).toBe(3);
    const lastRound = hbs.slice(4);
    expect(cl.drop((m) => m.type === MessageType.Heartbeat && !lastRound.includes(m))).toHaveLength(4);
    cl.stabilize();
    expect(cl.reads("a")).toEqual([
      { ctx: "r1", index: commit },
      { ctx: "r2", index: commit },
      { ctx: "r3", index: commit },
    ]);
  });

  it("thesis §6.4: a read is not answered before a quorum confirmed the leader is still the leader", () => {
    const cl = new Cluster({ voters: ["a", "b", "c"] });
    cl.elect("a");
    cl.isolate("b");
    cl.isolate("c");
    cl.readIndex("a", "r");
    cl.stabilize();
    expect(cl.reads("a")).toEqual([]);
    cl.heal();
    cl.cutLink("a", "c");
    cl.tickAll(1);
    expect(cl.reads("a").map((r) => r.ctx)).toEqual(["r"]);
  });

  it("thesis §6.4: a read whose heartbeat round was lost is confirmed by the next periodic heartbeat", () => {
    const cl = new Cluster({ voters: ["a", "b", "c"] });
    cl.elect("a");
    cl.readIndex("a", "r");
    expect(cl.drop((m) => m.type === MessageType.Heartbeat)).toHaveLength(2);
    cl.stabilize();
    expect(cl.reads("a")).toEqual([]);
    cl.tickAll(1);
    expect(cl.reads("a").map((r) => r.ctx)).toEqual(["r"]);
  });

  it("thesis §6.4 step 1: a read on a new leader waits until it has committed an entry of its own term", () => {
    // a's log holds an uncommitted entry of the old term (index 2); it is elected in term 2.
    const s = new Solo(storageWithLog(["a", "b", "c"], [1], 1));
    s.node.campaign();
    s.step({ type: MessageType.VoteResp, from: b, term: term(2) });
    s.drain();
    s.node.readIndex(bytes("early"));
    const held = s.drain();
    expect(held.filter((m) => m.type === MessageType.Heartbeat)).toEqual([]);
    expect(s.raft.readStates).toEqual([]);
    // b acknowledges the term-2 entry: it commits, and the held read starts its quorum round.
    s.step({ type: MessageType.AppResp, from: b, term: term(2), index: index(3) });
    const round = s.drain().filter((m) => m.type === MessageType.Heartbeat);
    expect(round).toHaveLength(2);
    expect(round[0]!.context.length).toBeGreaterThan(0);
    s.step({ type: MessageType.HeartbeatResp, from: c, term: term(2), context: round[1]!.context });
    let served: { index: number; ctx: string }[] = [];
    while (s.node.hasReady()) {
      const rd = s.node.ready();
      served = rd.readStates.map((r) => ({ index: r.index, ctx: new TextDecoder().decode(r.requestCtx) }));
      s.node.advance();
    }
    expect(served).toEqual([{ index: 3, ctx: "early" }]);
  });

  it("thesis §6.4: a follower's read is forwarded to the leader and answered with the leader's commit index", () => {
    const cl = new Cluster({ voters: ["a", "b", "c"] });
    cl.elect("a");
    cl.propose("a", "x");
    cl.stabilize();
    cl.readIndex("b", "from-b");
    expect(cl.pendingOfType(MessageType.ReadIndex)).toMatchObject([{ from: b, to: a }]);
    cl.stabilize();
    expect(cl.reads("b")).toEqual([{ ctx: "from-b", index: cl.status("a").commit }]);
    expect(cl.reads("a")).toEqual([]);
  });

  it("thesis §6.4: a deposed leader cannot serve a read (it cannot gather a quorum of heartbeat answers)", () => {
    const cl = new Cluster({ voters: ["a", "b", "c"] });
    cl.elect("a");
    cl.isolate("a");
    cl.elect("b");
    cl.propose("b", "newer");
    cl.stabilize();
    cl.readIndex("a", "stale");
    cl.stabilize();
    expect(cl.state("a")).toBe(StateType.Leader); // it does not know yet
    cl.heal();
    cl.tickAll(3);
    expect(cl.state("a")).toBe(StateType.Follower);
    expect(cl.reads("a")).toEqual([]);
    // Asked again, the read goes to the real leader and sees the newer write.
    cl.readIndex("a", "fresh");
    cl.stabilize();
    const [fresh] = cl.reads("a");
    expect(fresh?.ctx).toBe("fresh");
    expect(fresh?.index).toBeGreaterThanOrEqual(cl.status("b").commit);
  });

  it("thesis §6.4: with no leader a read is refused with 'no-leader'; a single-node cluster answers at once", () => {
    const cl = new Cluster({ voters: ["a", "b", "c"] });
    expect(refusal(() => cl.node("a").readIndex(bytes("r")))).toBe("no-leader");
    const one = new Cluster({ voters: ["a"] });
    one.elect("a");
    one.readIndex("a", "solo");
    expect(one.reads("a")).toEqual([{ ctx: "solo", index: one.status("a").commit }]);
  });
});

describe("leadership transfer (thesis §3.10)", () => {
  it("thesis §3.10: the leader sends TimeoutNow once the target is caught up; the target wins at once", () => {
    const cl = new Cluster({ voters: ["a", "b", "c"] });
    cl.elect("a");
    cl.isolate("c");
    for (let k = 0; k < 5; k++) cl.propose("a", `v${k}`);
    cl.stabilize();
    cl.heal();
    cl.node("a").transferLeadership(c);
    cl.processReady("a");
    // c is behind: no TimeoutNow yet, an append instead.
    expect(cl.pendingOfType(MessageType.TimeoutNow)).toEqual([]);
    expect(cl.pending((m) => m.type === MessageType.App && m.to === c)).not.toEqual([]);
    const from = cl.delivered.length;
    cl.stabilize();
    const seq = cl.delivered.slice(from);
    const tn = seq.findIndex((m) => m.type === MessageType.TimeoutNow);
    expect(tn).toBeGreaterThan(0);
    const lastAck = seq
      .slice(0, tn)
      .filter((m) => m.type === MessageType.AppResp && m.from === c && !m.reject)
      .pop();
    expect(lastAck?.index).toBe(cl.node("a").raft.log.lastIndex() - 1); // before c's own term-3 entry
    expect(cl.leader()).toBe(c);
    expect(cl.term("c")).toBe(3);
    expect(cl.values("c")).toEqual(["v0", "v1", "v2", "v3", "v4"]);
  });

  it("thesis §3.10: while a transfer is in progress the leader refuses proposals with 'transfer-in-progress'", () => {
    const cl = new Cluster({ voters: ["a", "b", "c"] });
    cl.elect("a");
    cl.isolate("c");
    cl.propose("a", "x");
    cl.stabilize();
    cl.node("a").transferLeadership(c);
    expect(cl.status("a").leadTransferee).toBe(c);
    expect(refusal(() => cl.node("a").propose(bytes("during")))).toBe("transfer-in-progress");
    expect(refusal(() => cl.node("b").propose(bytes("forwarded")))).toBe("accepted");
    cl.stabilize();
    // The forwarded proposal was refused by the leader (logged, not appended).
    expect(cl.values("a")).toEqual(["x"]);
  });

  it("thesis §3.10: a transfer to an unreachable target is aborted after an election timeout, and proposals resume", () => {
    const cl = new Cluster({ voters: ["a", "b", "c"], electionTick: 10 });
    cl.elect("a");
    cl.isolate("c");
    cl.node("a").transferLeadership(c);
    cl.tickAll(9);
    expect(cl.status("a").leadTransferee).toBe(c);
    cl.tickAll(1);
    expect(cl.status("a").leadTransferee).toBe("");
    expect(cl.leader()).toBe(a);
    cl.propose("a", "after");
    cl.stabilize();
    expect(cl.values("b")).toEqual(["after"]);
  });

  it("thesis §3.10: a transfer to a non-voter is refused with a clear error; a follower forwards a transfer request to the leader", () => {
    const cl = new Cluster({ voters: ["a", "b", "c"] });
    cl.elect("a");
    expect(() => cl.node("a").transferLeadership(nodeId("zz"))).toThrow(/zz.*not a voter/);
    cl.node("b").transferLeadership(b);
    cl.processReady("b");
    cl.stabilize();
    expect(cl.leader()).toBe(b);
  });

  it("thesis §3.10: the transfer campaign overrides the followers' leader lease (CheckQuorum)", () => {
    const cl = new Cluster({ voters: ["a", "b", "c"], checkQuorum: true, preVote: true });
    cl.elect("a");
    cl.tickAll(2);
    cl.node("a").transferLeadership(b);
    cl.processReady("a");
    cl.stabilize();
    expect(cl.leader()).toBe(b);
    expect(cl.term("b")).toBe(3);
  });
});

describe("proposals", () => {
  it("a proposal on a follower is forwarded to the leader and committed", () => {
    const cl = new Cluster({ voters: ["a", "b", "c"] });
    cl.elect("a");
    cl.propose("b", "via-b");
    expect(cl.pendingOfType(MessageType.Prop)).toMatchObject([{ from: b, to: a, term: 0 }]);
    cl.stabilize();
    for (const n of ["a", "b", "c"]) expect(cl.values(n)).toEqual(["via-b"]);
  });

  it("with no leader known, propose() throws ProposalError 'no-leader' (on a follower and on a candidate)", () => {
    const cl = new Cluster({ voters: ["a", "b", "c"] });
    expect(refusal(() => cl.node("a").propose(bytes("x")))).toBe("no-leader");
    cl.campaign("a");
    expect(cl.state("a")).toBe(StateType.Candidate);
    expect(refusal(() => cl.node("a").propose(bytes("x")))).toBe("no-leader");
    expect(() => cl.node("b").propose(bytes("x"))).toThrow(/no leader is known to b/);
  });

  it("with disableProposalForwarding, a follower's propose() throws 'forwarding-disabled' naming the leader", () => {
    const cl = new Cluster({ voters: ["a", "b", "c"], disableProposalForwarding: true });
    cl.elect("a");
    expect(refusal(() => cl.node("b").propose(bytes("x")))).toBe("forwarding-disabled");
    expect(() => cl.node("b").propose(bytes("x"))).toThrow(/leader a/);
    expect(cl.pendingOfType(MessageType.Prop)).toEqual([]);
  });
});

describe("crash and restart", () => {
  it("Ready contract: after a crash, term, vote, commit and log are restored from what was persisted", () => {
    const cl = new Cluster({ voters: ["a", "b", "c"] });
    cl.elect("a");
    for (let k = 0; k < 3; k++) cl.propose("a", `v${k}`);
    cl.stabilize();
    const before = cl.status("b");
    const terms = cl.logTerms("b");
    cl.crash("b");
    cl.restart("b");
    const after = cl.status("b");
    expect({ term: after.term, vote: after.vote, commit: after.commit, lastIndex: after.lastIndex }).toEqual({
      term: before.term,
      vote: before.vote,
      commit: before.commit,
      lastIndex: before.lastIndex,
    });
    expect(cl.logTerms("b")).toEqual(terms);
    // It re-applies its committed entries and rejoins.
    cl.stabilize();
    expect(cl.values("b")).toEqual(["v0", "v1", "v2"]);
    cl.propose("a", "v3");
    cl.stabilize();
    expect(cl.values("b")).toEqual(["v0", "v1", "v2", "v3"]);
  });

  it("§5.2 + Ready contract: a vote granted before a crash is not granted to another candidate after restart", () => {
    const cl = new Cluster({ voters: ["a", "b", "c"] });
    cl.campaign("b");
    cl.deliver((m) => m.to === a);
    cl.processReady("a");
    cl.crash("a");
    cl.restart("a");
    cl.inbox = [];
    cl.node("a").step({
      type: MessageType.Vote,
      from: c,
      to: a,
      term: term(2),
      logTerm: term(1),
      index: index(1),
      entries: [],
      commit: index(0),
      reject: false,
      rejectHint: index(0),
      context: new Uint8Array(),
    });
    cl.processReady("a");
    expect(cl.pendingOfType(MessageType.VoteResp)).toMatchObject([{ to: c, reject: true, term: 2 }]);
    expect(cl.status("a").vote).toBe(b);
  });

  it("Ready contract: a vote is on stable storage before the vote response is handed out for sending", () => {
    const s = new Solo(MemoryStorage.bootstrap({ voters: ids("a", "b", "c"), learners: [] }));
    s.step({ type: MessageType.Vote, from: b, term: term(2), index: index(1), logTerm: term(1) });
    const rd = s.node.ready();
    expect(rd.messages).toMatchObject([{ type: MessageType.VoteResp, reject: false }]);
    expect(rd.hardState).toMatchObject({ term: 2, vote: b });
    expect(rd.mustSync).toBe(true);
    s.node.advance();
  });
});
