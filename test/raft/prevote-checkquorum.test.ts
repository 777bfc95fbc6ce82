// PreVote (thesis §9.6) and CheckQuorum with its leader lease (thesis §6.2 / §4.2.3): disruption control.

import { describe, expect, it } from "vitest";
import { index, MemoryStorage, MessageType, nodeId, StateType, term } from "../../src/raft/index.js";
import { Cluster, ids, Solo, storageWithLog } from "./harness.js";

const a = nodeId("a");
const b = nodeId("b");
const c = nodeId("c");

describe("PreVote (thesis §9.6)", () => {
  it("thesis §9.6: a partitioned node that rejoins does not bump the cluster's term nor depose the leader", () => {
    const cl = new Cluster({ voters: ["a", "b", "c"], preVote: true });
    cl.elect("a");
    cl.isolate("c");
    cl.tick("c", 100);
    // Its pre-campaigns fail; it never increments its term.
    expect(cl.term("c")).toBe(2);
    cl.heal();
    cl.tickAll(30);
    expect(cl.leaders()).toEqual([{ id: a, term: 2 }]);
    for (const n of ["a", "b", "c"]) expect(cl.term(n)).toBe(2);
    expect(cl.status("c").lead).toBe(a);
  });

  it("control: without PreVote the same rejoining node forces a new term and deposes the leader", () => {
    const cl = new Cluster({ voters: ["a", "b", "c"] });
    cl.elect("a");
    cl.isolate("c");
    cl.tick("c", 100);
    expect(cl.term("c")).toBeGreaterThan(5);
    cl.heal();
    cl.tickAll(30);
    expect(cl.term("a")).toBeGreaterThan(5);
  });

  it("thesis §9.6: a pre-candidate asks for votes in term+1 without changing its term or vote, then runs a real election once a majority pre-votes", () => {
    const s = new Solo(storageWithLog(["a", "b", "c"], [], 1), "a", { preVote: true });
    s.node.campaign();
    expect(s.raft.state).toBe(StateType.PreCandidate);
    expect(s.raft.term).toBe(1);
    const pre = s.drain().filter((m) => m.type === MessageType.PreVote);
    expect(pre.map((m) => [m.to, m.term])).toEqual([
      [b, 2],
      [c, 2],
    ]);
    expect(s.storage.initialState().hardState).toMatchObject({ term: 1, vote: "" });
    s.step({ type: MessageType.PreVoteResp, from: b, term: term(2) });
    expect(s.raft.state).toBe(StateType.Candidate);
    expect(s.raft.term).toBe(2);
    expect(s.drain().filter((m) => m.type === MessageType.Vote)).toHaveLength(2);
  });

  it("thesis §9.6: a pre-vote is refused to a less up-to-date candidate, and granting one does not change the voter's term or vote", () => {
    const s = new Solo(storageWithLog(["a", "b", "c"], [1, 2]), "a", { preVote: true });
    s.step({ type: MessageType.PreVote, from: b, term: term(3), index: index(2), logTerm: term(1) });
    s.step({ type: MessageType.PreVote, from: c, term: term(3), index: index(3), logTerm: term(2) });
    const resps = s.drain().filter((m) => m.type === MessageType.PreVoteResp);
    expect(resps.map((m) => [m.to, m.reject])).toEqual([
      [b, true],
      [c, false],
    ]);
    expect(s.raft.term).toBe(2);
    expect(s.raft.vote).toBe("");
  });

  it("thesis §9.6: when the leader is really gone, pre-candidates still elect a new one", () => {
    const cl = new Cluster({ voters: ["a", "b", "c"], preVote: true });
    cl.elect("a");
    cl.crash("a");
    cl.tickAll(40);
    const lead = cl.leader();
    expect(lead === b || lead === c).toBe(true);
    expect(cl.term(lead!)).toBe(3);
  });
});

describe("CheckQuorum (thesis §6.2)", () => {
  it("thesis §6.2: a leader that cannot reach a majority steps down within two election timeouts (one check interval after the last check that still counted its followers)", () => {
    const et = 10;
    const cl = new Cluster({ voters: ["a", "b", "c"], checkQuorum: true, electionTick: et });
    cl.elect("a");
    cl.tickAll(3);
    cl.isolate("a");
    let ticks = 0;
    while (cl.state("a") === StateType.Leader && ticks < 5 * et) {
      cl.tick("a");
      ticks++;
    }
    expect(cl.state("a")).toBe(StateType.Follower);
    expect(ticks).toBeLessThanOrEqual(2 * et);
    // It stops claiming leadership: no ReadIndex or proposal is served by it any more.
    expect(cl.status("a").lead).toBe("");
  });

  it("thesis §6.2: a leader that keeps a majority does not step down when one follower is gone", () => {
    const cl = new Cluster({ voters: ["a", "b", "c"], checkQuorum: true });
    cl.elect("a");
    cl.isolate("c");
    for (let k = 0; k < 100; k++) {
      cl.tick("a");
      cl.tick("b");
      cl.stabilize();
    }
    expect(cl.state("a")).toBe(StateType.Leader);
    expect(cl.term("a")).toBe(2);
  });

  it("thesis §4.2.3: a follower that heard from a live leader within the election timeout ignores a disruptive Vote and PreVote", () => {
    for (const type of [MessageType.Vote, MessageType.PreVote]) {
      const s = new Solo(MemoryStorage.bootstrap({ voters: ids("a", "b", "c"), learners: [] }), "b", {
        checkQuorum: true,
        random: () => 0.99, // its own election timeout is 19 ticks: it will not campaign in this test
      });
      s.step({ type: MessageType.Heartbeat, from: a, term: term(2) });
      s.drain();
      s.node.tick();
      s.step({ type, from: c, term: term(5), index: index(9), logTerm: term(4) });
      expect(s.drain(), type).toEqual([]);
      expect(s.raft.term).toBe(2);
      expect(s.raft.lead).toBe(a);
      // Once the lease expired (no word from the leader for an election timeout), the request is heard.
      for (let k = 0; k < 10; k++) s.node.tick();
      expect(s.raft.state).toBe(StateType.Follower);
      s.step({ type, from: c, term: term(5), index: index(9), logTerm: term(4) });
      expect(s.drain().find((m) => m.to === c)?.reject, type).toBe(false);
    }
  });

  it("thesis §4.2.3: the leader itself ignores a disruptive Vote from a rejoining node while its lease holds", () => {
    const cl = new Cluster({ voters: ["a", "b", "c"], checkQuorum: true });
    cl.elect("a");
    cl.tickAll(2);
    cl.node("a").step({
      type: MessageType.Vote,
      from: c,
      to: a,
      term: term(9),
      index: index(99),
      logTerm: term(8),
      entries: [],
      commit: index(0),
      reject: false,
      rejectHint: index(0),
      context: new Uint8Array(),
    });
    cl.processReady("a");
    expect(cl.state("a")).toBe(StateType.Leader);
    expect(cl.term("a")).toBe(2);
    expect(cl.pendingOfType(MessageType.VoteResp)).toEqual([]);
  });

  it("thesis §4.2.3: a candidate stuck in a high term after a partition is freed: the cluster converges on one leader in its term", () => {
    const cl = new Cluster({ voters: ["a", "b", "c"], checkQuorum: true });
    cl.elect("a");
    cl.isolate("c");
    cl.tick("c", 60);
    const stuck = cl.term("c");
    expect(stuck).toBeGreaterThan(3);
    cl.heal();
    cl.tickAll(60);
    expect(cl.leaders()).toHaveLength(1);
    const lead = cl.leader()!;
    for (const n of ["a", "b", "c"]) {
      expect(cl.term(n)).toBeGreaterThanOrEqual(stuck);
      expect(cl.status(n).lead).toBe(lead);
    }
  });

  it("thesis §9.6: a stale leader rejoining after a partition steps down as soon as a follower answers its heartbeat", () => {
    // PreVote without CheckQuorum: the cut-off leader keeps leading term 2. Its first heartbeat after the
    // partition heals is answered with the newer term (a PreVote cluster must tell it, or it could stay).
    const cl = new Cluster({ voters: ["a", "b", "c"], preVote: true });
    cl.elect("a");
    cl.isolate("a");
    cl.tickAll(40);
    expect(cl.leaders().map((l) => [l.id, l.term])).toEqual(expect.arrayContaining([[a, 2]]));
    const newLead = cl.leaders().find((l) => l.id !== a)!;
    expect(newLead.term).toBe(3);
    cl.heal();
    cl.tick("a");
    cl.stabilize();
    expect(cl.state("a")).toBe(StateType.Follower);
    expect(cl.term("a")).toBe(3);
    expect(cl.leaders()).toEqual([newLead]);
  });

  it("thesis §4.2.3 + §9.6: with CheckQuorum and PreVote, a flapping link to one follower never changes the term", () => {
    const cl = new Cluster({ voters: ["a", "b", "c"], checkQuorum: true, preVote: true, seed: 3 });
    cl.elect("a");
    for (let round = 0; round < 5; round++) {
      cl.isolate("c");
      cl.tickAll(25);
      cl.heal();
      cl.tickAll(5);
    }
    expect(cl.leaders()).toEqual([{ id: a, term: 2 }]);
    expect(cl.term("c")).toBe(2);
  });
});
