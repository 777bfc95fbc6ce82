// Paper tests for §5.1 (terms) and §5.2 (leader election) of the Raft paper (Ongaro & Ousterhout 2014).
// Each test names the sentence of the paper it checks.

import { describe, expect, it } from "vitest";
import { index, MemoryStorage, MessageType, nodeId, StateType, term } from "../../src/raft/index.js";
import { Cluster, ids, Solo, seededRandom } from "./harness.js";

const a = nodeId("a");
const b = nodeId("b");
const c = nodeId("c");

function follower(opts = {}): Solo {
  return new Solo(MemoryStorage.bootstrap({ voters: ids("a", "b", "c"), learners: [] }), "a", opts);
}

describe("§5.1 terms", () => {
  it("§5.1: a server that sees a higher term updates its term and reverts to follower (from every role)", () => {
    for (const role of [StateType.Follower, StateType.Candidate, StateType.Leader]) {
      const s = follower();
      if (role !== StateType.Follower) s.node.campaign();
      if (role === StateType.Leader) s.step({ type: MessageType.VoteResp, from: b, term: term(2) });
      expect(s.raft.state).toBe(role);
      s.drain();
      s.step({ type: MessageType.App, from: c, term: term(7), index: index(1), logTerm: term(1) });
      expect(s.raft.state).toBe(StateType.Follower);
      expect(s.raft.term).toBe(7);
      expect(s.raft.lead).toBe(c);
    }
  });

  it("§5.1: a higher-term vote request makes a leader step down with no leader known", () => {
    const s = follower();
    s.node.campaign();
    s.step({ type: MessageType.VoteResp, from: b, term: term(2) });
    expect(s.raft.state).toBe(StateType.Leader);
    s.step({ type: MessageType.Vote, from: c, term: term(5), index: index(10), logTerm: term(4) });
    expect(s.raft.state).toBe(StateType.Follower);
    expect(s.raft.term).toBe(5);
    expect(s.raft.lead).toBe("");
    expect(s.raft.vote).toBe(c);
  });

  it("§5.1: a request with a stale term is rejected (appends are not accepted, votes are not granted)", () => {
    const s = follower();
    s.step({ type: MessageType.Heartbeat, from: b, term: term(3) });
    s.drain();
    const before = s.raft.log.lastIndex();
    s.step({
      type: MessageType.App,
      from: c,
      term: term(2),
      index: index(1),
      logTerm: term(1),
      entries: [{ index: index(2), term: term(2), type: 0, data: new Uint8Array() }],
      commit: index(2),
    });
    s.step({ type: MessageType.Vote, from: c, term: term(2), index: index(9), logTerm: term(2) });
    expect(s.raft.log.lastIndex()).toBe(before);
    expect(s.raft.term).toBe(3);
    expect(s.raft.lead).toBe(b);
    expect(s.raft.vote).toBe("");
    // Without CheckQuorum/PreVote the stale request is ignored outright: no answer, no granted vote.
    expect(s.drain().filter((m) => m.type !== MessageType.HeartbeatResp)).toEqual([]);
  });

  it("§5.1 + §9.6: with PreVote, a stale append gets an answer carrying the newer term so the old leader steps down", () => {
    const s = follower({ preVote: true });
    s.step({ type: MessageType.Heartbeat, from: b, term: term(3) });
    s.drain();
    s.step({ type: MessageType.App, from: c, term: term(2), index: index(1), logTerm: term(1) });
    const out = s.drain();
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ type: MessageType.AppResp, to: c, term: 3 });
  });
});

describe("§5.2 leader election", () => {
  it("§5.2: if a follower receives no communication over the election timeout, it becomes a candidate: increments its term, votes for itself and requests votes from every other server", () => {
    const s = follower();
    for (let k = 0; k < 20 && s.raft.state === StateType.Follower; k++) s.node.tick();
    expect(s.raft.state).toBe(StateType.Candidate);
    expect(s.raft.term).toBe(2);
    expect(s.raft.vote).toBe(a);
    const votes = s.drain().filter((m) => m.type === MessageType.Vote);
    expect(votes.map((m) => m.to).sort()).toEqual([b, c]);
    for (const v of votes) expect(v).toMatchObject({ term: 2, index: 1, logTerm: 1 });
  });

  it("§5.2: election timeouts are chosen randomly from a fixed interval [et, 2et)", () => {
    const et = 10;
    const seen = new Set<number>();
    for (let seed = 1; seed <= 200; seed++) {
      const s = new Solo(MemoryStorage.bootstrap({ voters: ids("a", "b", "c"), learners: [] }), "a", {
        electionTick: et,
        random: seededRandom(seed),
      });
      let ticks = 0;
      while (s.raft.state === StateType.Follower) {
        s.node.tick();
        ticks++;
        if (ticks > 3 * et) break;
      }
      expect(ticks).toBeGreaterThanOrEqual(et);
      expect(ticks).toBeLessThan(2 * et);
      seen.add(ticks);
    }
    // Randomized, not fixed: 200 seeds cover every value of the interval.
    expect(seen.size).toBe(et);
  });

  it("§5.2: a candidate's election timeout is randomized again for each new election (split vote → retry in a higher term)", () => {
    const s = follower();
    s.node.campaign();
    expect(s.raft.term).toBe(2);
    // Nobody answers (split vote or loss): the candidate times out and starts a new election.
    for (let k = 0; k < 20 && s.raft.term === 2; k++) s.node.tick();
    expect(s.raft.state).toBe(StateType.Candidate);
    expect(s.raft.term).toBe(3);
  });

  it("§5.2: a candidate wins an election if it receives votes from a majority of the servers in the full cluster for the same term", () => {
    // [cluster size, granted votes besides its own, expected state]
    const cases: [number, number, StateType][] = [
      [1, 0, StateType.Leader],
      [3, 1, StateType.Leader],
      [3, 0, StateType.Candidate],
      [5, 2, StateType.Leader],
      [5, 1, StateType.Candidate],
      [5, 4, StateType.Leader],
    ];
    for (const [size, granted, want] of cases) {
      const names = ["a", "b", "c", "d", "e"].slice(0, size);
      const s = new Solo(MemoryStorage.bootstrap({ voters: ids(...names), learners: [] }));
      s.node.campaign();
      for (const from of names.slice(1, 1 + granted))
        s.step({ type: MessageType.VoteResp, from: nodeId(from), term: s.raft.term });
      expect(s.raft.state, `${size} nodes, ${granted} votes`).toBe(want);
    }
  });

  it("§5.2: a candidate that is refused by a majority reverts to follower", () => {
    const s = new Solo(MemoryStorage.bootstrap({ voters: ids("a", "b", "c", "d", "e"), learners: [] }));
    s.node.campaign();
    for (const from of ["b", "c"])
      s.step({ type: MessageType.VoteResp, from: nodeId(from), term: term(2), reject: true });
    expect(s.raft.state).toBe(StateType.Candidate);
    s.step({ type: MessageType.VoteResp, from: nodeId("d"), term: term(2), reject: true });
    expect(s.raft.state).toBe(StateType.Follower);
    expect(s.raft.term).toBe(2);
  });

  it("§5.2: each server votes for at most one candidate in a given term, on a first-come-first-served basis", () => {
    const s = follower();
    s.step({ type: MessageType.Vote, from: b, term: term(2), index: index(1), logTerm: term(1) });
    s.step({ type: MessageType.Vote, from: c, term: term(2), index: index(1), logTerm: term(1) });
    // A repeated request from the candidate we voted for is granted again (its first answer may be lost).
    s.step({ type: MessageType.Vote, from: b, term: term(2), index: index(1), logTerm: term(1) });
    const resps = s.drain().filter((m) => m.type === MessageType.VoteResp);
    expect(resps.map((m) => [m.to, m.reject])).toEqual([
      [b, false],
      [c, true],
      [b, false],
    ]);
    expect(s.storage.initialState().hardState).toMatchObject({ term: 2, vote: b });
  });

  it("§5.2: a candidate that receives AppendEntries from a leader whose term is at least as large recognizes it and returns to follower", () => {
    const s = follower();
    s.node.campaign();
    expect(s.raft.state).toBe(StateType.Candidate);
    s.step({ type: MessageType.App, from: b, term: term(2), index: index(1), logTerm: term(1) });
    expect(s.raft.state).toBe(StateType.Follower);
    expect(s.raft.lead).toBe(b);
    expect(s.raft.term).toBe(2);
  });

  it("§5.2: the leader sends periodic heartbeats to all followers to maintain its authority", () => {
    const s = follower({ heartbeatTick: 2 });
    s.node.campaign();
    s.step({ type: MessageType.VoteResp, from: b, term: term(2) });
    s.drain();
    s.node.tick();
    expect(s.drain().filter((m) => m.type === MessageType.Heartbeat)).toEqual([]);
    s.node.tick();
    const hbs = s.drain().filter((m) => m.type === MessageType.Heartbeat);
    expect(hbs.map((m) => m.to).sort()).toEqual([b, c]);
    for (const h of hbs) expect(h.term).toBe(2);
  });

  it("§5.2: a follower that keeps hearing from its leader never starts an election", () => {
    const cl = new Cluster({ voters: ["a", "b", "c"] });
    cl.elect("a");
    cl.tickAll(100);
    expect(cl.leaders()).toEqual([{ id: a, term: 2 }]);
    expect(cl.term("b")).toBe(2);
  });

  it("§5.2: in a cluster left alone, exactly one leader is elected and every member follows it", () => {
    for (let seed = 1; seed <= 20; seed++) {
      const cl = new Cluster({ voters: ["a", "b", "c", "d", "e"], seed });
      cl.tickAll(40);
      const ls = cl.leaders();
      expect(ls, `seed ${seed}`).toHaveLength(1);
      for (const n of ["a", "b", "c", "d", "e"]) expect(cl.status(n).lead).toBe(ls[0]!.id);
    }
  });

  it("§5.2: with split votes, candidates time out and retry until one wins", () => {
    // Both b and c campaign in the same term; a, d, e vote for whichever arrives first. Deliver so that
    // b and c each get one vote besides their own (a 2-2 tie with e not answering): nobody wins.
    const cl = new Cluster({ voters: ["a", "b", "c", "d", "e"], seed: 7 });
    cl.dropWhere((m) => m.to === nodeId("e") || m.from === nodeId("e"));
    cl.campaign("b");
    cl.campaign("c");
    cl.deliver((m) => (m.from === b && m.to === a) || (m.from === c && m.to === nodeId("d")));
    cl.deliver((m) => m.type === MessageType.Vote);
    cl.stabilize();
    expect(cl.state("b")).toBe(StateType.Candidate);
    expect(cl.state("c")).toBe(StateType.Candidate);
    cl.heal();
    cl.tickAll(40);
    expect(cl.leaders()).toHaveLength(1);
    expect(cl.leaders()[0]!.term).toBeGreaterThan(2);
  });
});
