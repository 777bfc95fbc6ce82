// Paper tests for §5.3 (log replication) and §5.4 (safety: election restriction and commit rule).

import { describe, expect, it } from "vitest";
import { index, type Message, MessageType, message, nodeId, StateType, term } from "../../src/raft/index.js";
import { Cluster, entry, Solo, storageWithLog } from "./harness.js";

const a = nodeId("a");
const b = nodeId("b");
const c = nodeId("c");

/** `a` as leader of a 3-node cluster whose log holds `terms` (from index 2), elected in term `t`. */
function leaderWithLog(terms: number[], t: number): Solo {
  const s = new Solo(storageWithLog(["a", "b", "c"], terms, t - 1));
  s.node.campaign();
  s.step({ type: MessageType.VoteResp, from: b, term: term(t) });
  expect(s.raft.state).toBe(StateType.Leader);
  expect(s.raft.term).toBe(t);
  return s;
}

function ack(s: Solo, from: string, i: number): void {
  s.step({ type: MessageType.AppResp, from: nodeId(from), term: s.raft.term, index: index(i) });
}

describe("§5.3 log replication", () => {
  it("§5.3: the leader appends the command to its log as a new entry, then issues AppendEntries in parallel to each of the other servers", () => {
    const s = leaderWithLog([], 2);
    ack(s, "b", 2);
    ack(s, "c", 2);
    s.drain();
    s.node.propose(new TextEncoder().encode("x"));
    expect(s.raft.log.lastIndex()).toBe(3);
    expect(s.raft.log.term(index(3))).toBe(2);
    const apps = s.drain().filter((m) => m.type === MessageType.App);
    expect(apps.map((m) => m.to).sort()).toEqual([b, c]);
    for (const m of apps) {
      expect(m).toMatchObject({ index: 2, logTerm: 2, commit: 2 });
      expect(m.entries.map((e) => e.index)).toEqual([3]);
    }
  });

  it("§5.3: an entry is committed once the leader has replicated it on a majority, and the leader applies it", () => {
    const cl = new Cluster({ voters: ["a", "b", "c", "d", "e"] });
    cl.elect("a");
    cl.partition(["a", "b"], ["c", "d", "e"]);
    cl.propose("a", "x");
    cl.stabilize();
    expect(cl.status("a").commit).toBe(2);
    expect(cl.values("a")).toEqual([]);
    cl.heal();
    cl.cutLink("a", "d");
    cl.cutLink("a", "e");
    cl.tickAll(1);
    expect(cl.status("a").commit).toBe(3);
    expect(cl.values("a")).toEqual(["x"]);
    // Followers learn the commit index from the next AppendEntries/heartbeat and apply too (§5.3).
    expect(cl.values("b")).toEqual(["x"]);
    expect(cl.values("c")).toEqual(["x"]);
    expect(cl.values("d")).toEqual([]);
  });

  it("§5.3: when sending AppendEntries, the leader includes the index and term of the preceding entry; a follower that does not find it refuses the new entries", () => {
    const s = new Solo(storageWithLog(["a", "b", "c"], [1, 2]), "a");
    // Our entry 3 has term 2; the leader says its entry 3 has term 3: refuse, and hint where we may match.
    s.step({
      type: MessageType.App,
      from: b,
      term: term(3),
      index: index(3),
      logTerm: term(3),
      entries: [entry(4, 3)],
    });
    // Index 5 is beyond our log: refuse as well.
    s.step({ type: MessageType.App, from: b, term: term(3), index: index(5), logTerm: term(3) });
    const resps = s.drain().filter((m) => m.type === MessageType.AppResp);
    expect(resps).toMatchObject([
      { reject: true, index: 3, rejectHint: 3, logTerm: 2 },
      { reject: true, index: 5, rejectHint: 3, logTerm: 2 },
    ]);
    expect(s.terms()).toEqual([1, 2]);
  });

  it("§5.3: if an existing entry conflicts with a new one (same index, different terms), delete it and all that follow", () => {
    const s = new Solo(storageWithLog(["a", "b", "c"], [1, 1, 2, 2]), "a");
    s.step({
      type: MessageType.App,
      from: b,
      term: term(3),
      index: index(3),
      logTerm: term(1),
      entries: [entry(4, 3, "new4")],
    });
    const out = s.drain();
    expect(out).toMatchObject([{ type: MessageType.AppResp, reject: false, index: 4 }]);
    expect(s.terms()).toEqual([1, 1, 3]);
    // The storage (the durable log) was truncated too: the Ready handed out the replacement suffix.
    expect(s.storage.lastIndex()).toBe(4);
    expect(s.storage.term(index(4))).toBe(3);
  });

  it("§5.3: entries the follower already has are not truncated by a stale (reordered) AppendEntries", () => {
    const s = new Solo(storageWithLog(["a", "b", "c"], [2, 2, 2], 2), "a");
    s.step({
      type: MessageType.App,
      from: b,
      term: term(2),
      index: index(1),
      logTerm: term(1),
      entries: [entry(2, 2)],
    });
    s.drain();
    expect(s.terms()).toEqual([2, 2, 2]);
  });

  it("§5.3: if leaderCommit > commitIndex, the follower sets commitIndex = min(leaderCommit, index of last new entry)", () => {
    const s = new Solo(storageWithLog(["a", "b", "c"], [1, 1, 1, 1]), "a");
    s.step({
      type: MessageType.App,
      from: b,
      term: term(1),
      index: index(2),
      logTerm: term(1),
      commit: index(9),
    });
    expect(s.raft.log.committed).toBe(2);
    s.step({
      type: MessageType.App,
      from: b,
      term: term(1),
      index: index(2),
      logTerm: term(1),
      entries: [entry(3, 1)],
      commit: index(4),
    });
    expect(s.raft.log.committed).toBe(3);
    s.drain();
    expect(s.storage.initialState().hardState.commit).toBe(3);
  });

  it("§5.3: a leader brings a follower's log into consistency with its own (missing and extraneous entries)", () => {
    // Figure 7 flavours on a 3-node cluster: b misses entries, a (the old leader) has an extraneous tail.
    const cl = new Cluster({ voters: ["a", "b", "c"] });
    cl.elect("a");
    cl.propose("a", "1");
    cl.stabilize();
    cl.isolate("b");
    cl.propose("a", "2");
    cl.propose("a", "3");
    cl.stabilize();
    cl.heal();
    cl.isolate("a");
    cl.propose("a", "lost-1");
    cl.propose("a", "lost-2");
    cl.stabilize();
    cl.elect("c");
    cl.propose("c", "4");
    cl.stabilize();
    cl.heal();
    cl.tickAll(3);
    expect(cl.leader()).toBe(c);
    expect(cl.values("a")).toEqual(["1", "2", "3", "4"]);
    expect(cl.values("b")).toEqual(["1", "2", "3", "4"]);
    expect(cl.values("c")).toEqual(["1", "2", "3", "4"]);
    expect(cl.logTerms("b")).toEqual(cl.logTerms("a"));
    expect(cl.logTerms("c")).toEqual(cl.logTerms("a"));
  });
});

describe("§5.4.1 election restriction", () => {
  it("§5.4.1: the voter denies its vote if its own log is more up-to-date than that of the candidate", () => {
    // Voter log: indexes 2..3 with terms [1, 2] (last term 2, last index 3).
    const cases: [number, number, boolean][] = [
      // [candidate last index, candidate last term, granted]
      [3, 1, false], // lower last term
      [5, 1, false], // lower last term, longer log
      [2, 2, false], // same term, shorter log
      [3, 2, true], // identical
      [4, 2, true], // same term, longer
      [2, 3, true], // higher last term wins even when shorter
    ];
    for (const [li, lt, granted] of cases) {
      const s = new Solo(storageWithLog(["a", "b", "c"], [1, 2]), "a");
      s.step({ type: MessageType.Vote, from: b, term: term(3), index: index(li), logTerm: term(lt) });
      const resp = s.drain().find((m) => m.type === MessageType.VoteResp)!;
      expect(resp.reject, `candidate (${li}, ${lt})`).toBe(!granted);
      expect(s.raft.vote).toBe(granted ? b : "");
    }
  });

  it("§5.4.1: a candidate that lacks a committed entry cannot be elected", () => {
    const cl = new Cluster({ voters: ["a", "b", "c"] });
    cl.elect("a");
    cl.isolate("c");
    cl.propose("a", "committed");
    cl.stabilize();
    expect(cl.status("a").commit).toBe(3);
    cl.heal();
    cl.isolate("a");
    cl.campaign("c");
    cl.stabilize();
    expect(cl.state("c")).not.toBe(StateType.Leader);
    // b, which holds the entry, can win; the entry survives.
    cl.tickAll(40);
    expect(cl.leader()).toBe(b);
    expect(cl.values("c")).toEqual(["committed"]);
  });
});

describe("§5.4.2 committing entries from previous terms", () => {
  it("§5.4.2: a leader never commits an entry from a previous term by counting replicas; only once an entry of its current term is", () => {
    // a holds two uncommitted entries of term 1 (indexes 2, 3) and becomes leader in term 3.
    const s = leaderWithLog([1, 1], 3);
    expect(s.raft.log.lastIndex()).toBe(4); // its own empty entry of term 3
    ack(s, "b", 3); // b holds the old entries: a majority has 2..3
    expect(s.raft.log.committed).toBe(1);
    ack(s, "b", 4); // now the current-term entry is on a majority: everything before it commits too
    expect(s.raft.log.committed).toBe(4);
  });

  it("§5.4.2 Figure 8: an old-term entry replicated on a majority can still be overwritten, so it must not be reported committed", () => {
    const cl = new Cluster({ voters: ["s1", "s2", "s3", "s4", "s5"] });
    const campaignToTerm = (id: string, t: number) => {
      while (cl.term(id) < t) {
        cl.campaign(id);
        cl.stabilize();
      }
    };
    const only =
      (...to: string[]) =>
      (m: Message) =>
        m.type === MessageType.App && to.includes(m.to);
    // (a) S1 leads term 2 and replicates index 3 to S2 only.
    cl.elect("s1");
    cl.dropWhere((m) => m.from === nodeId("s1") && !["s2"].includes(m.to));
    cl.propose("s1", "t2");
    cl.stabilize();
    expect(cl.logTerms("s2")).toEqual([2, 2]);
    // (b) S1 crashes; S5 wins term 3 with S3, S4, S5 and appends index 3 (term 3) locally only.
    cl.heal();
    cl.crash("s1");
    cl.dropWhere(only("s1", "s2", "s3", "s4"));
    cl.campaign("s5");
    cl.stabilize();
    expect(cl.term("s5")).toBe(3);
    expect(cl.state("s5")).toBe(StateType.Leader);
    cl.propose("s5", "t3");
    cl.stabilize();
    // (c) S5 crashes; S1 restarts and wins term 4 (S2, S3, S4), then replicates its term-2 entry to S2 and
    // S3 — but not yet its own term-4 entry (every append carrying it is lost).
    cl.heal();
    cl.crash("s5");
    cl.restart("s1");
    cl.dropWhere((m) => m.type === MessageType.App && m.entries.some((e) => e.term === 4));
    campaignToTerm("s1", 4);
    expect(cl.state("s1")).toBe(StateType.Leader);
    const old = cl.node("s1").raft.log.allEntries()[1]!;
    expect([old.index, old.term]).toEqual([3, 2]);
    for (const to of ["s2", "s3"]) {
      cl.node(to).step(
        message({
          type: MessageType.App,
          from: nodeId("s1"),
          to: nodeId(to),
          term: term(4),
          index: index(2),
          logTerm: term(2),
          entries: [old],
          commit: index(2),
        }),
      );
    }
    cl.stabilize();
    // The term-2 entry is on S1, S2, S3 (a majority) — and must still not be committed.
    expect(cl.logTerms("s3").slice(0, 2)).toEqual([2, 2]);
    expect(cl.status("s1").commit).toBe(2);
    expect(cl.values("s1")).toEqual([]);
    // (d) S1 crashes before committing a term-4 entry; S5 comes back and is elected by S2, S3, S4
    // (its last term 3 beats their 2 and 4-less logs) and overwrites index 3 everywhere.
    cl.heal();
    cl.crash("s1");
    cl.restart("s5");
    campaignToTerm("s5", 5);
    expect(cl.state("s5")).toBe(StateType.Leader);
    cl.stabilize();
    expect(cl.values("s5")).toEqual(["t3"]);
    expect(cl.values("s2")).toEqual(["t3"]);
    expect(cl.values("s3")).toEqual(["t3"]);
  });
});

describe("§5.3 leader append-only", () => {
  it("§5.3: a leader never overwrites or deletes entries in its own log", () => {
    const s = leaderWithLog([1, 1], 3);
    const before = s.raft.log.allEntries();
    // A stale append from an old leader (lower term) cannot touch it.
    s.step({
      type: MessageType.App,
      from: c,
      term: term(2),
      index: index(1),
      logTerm: term(1),
      entries: [entry(2, 2)],
    });
    expect(s.raft.log.allEntries()).toEqual(before);
    expect(s.raft.state).toBe(StateType.Leader);
    expect(a).toBe(s.raft.id);
  });
});
