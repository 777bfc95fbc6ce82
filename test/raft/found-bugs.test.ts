// Minimal reproductions of defects the unit and paper tests found in src/raft. Each test states the rule it
// checks and the behaviour that was observed. The first two were fixed in 08f4473 and stay as regression
// tests; the last two (a one-voter cluster with a learner; mustSync with a snapshot) fail until fixed.

import { describe, expect, it } from "vitest";
import {
  ConfChangeType,
  index,
  MemoryStorage,
  MessageType,
  nodeId,
  StateType,
  term,
} from "../../src/raft/index.js";
import { Cluster, ids, Solo } from "./harness.js";

describe("found bugs", () => {
  it("§6 removing the leader: its TimeoutNow handover elects a successor without waiting for an election timeout", () => {
    // The removed leader applies its own removal, sends TimeoutNow to the most up-to-date voter (b) and
    // steps down. But the append that told b the removal is committed reaches b just before the TimeoutNow,
    // and b steps both before its next Ready: b then has a committed-but-unapplied conf change, so hup()
    // defers the campaign — and the TimeoutNow is simply forgotten. The cluster then sits leaderless for a
    // whole randomized election timeout, the very wait the handover exists to avoid.
    const cl = new Cluster({ voters: ["a", "b", "c"] });
    cl.elect("a");
    cl.proposeConfChange("a", { type: ConfChangeType.RemoveNode, nodeId: nodeId("a") });
    cl.stabilize();
    const timeoutNow = cl.delivered.filter((m) => m.type === MessageType.TimeoutNow);
    expect(timeoutNow.map((m) => [m.from, m.to])).toEqual([["a", "b"]]);
    expect(cl.state("a")).toBe(StateType.Follower);
    // No tick has passed: only the handover can have elected b.
    expect(cl.leader()).toBe("b");
  });
});

describe("found bugs: ReadIndex request ids", () => {
  it("thesis §6.4: reads from two followers that happen to use the same request id are both answered", () => {
    // Request ids are chosen by each caller (typically a per-node counter), and nothing in the API says
    // they must be unique across the cluster. The leader keys pending reads by the context bytes alone
    // (ReadOnly.addRequest), so c's read "1" is dropped as a duplicate of b's read "1": c never gets a
    // ReadState, not even an error — the read vanishes silently and its client waits forever.
    const cl = new Cluster({ voters: ["a", "b", "c"] });
    cl.elect("a");
    cl.readIndex("b", "1");
    cl.readIndex("c", "1");
    cl.stabilize();
    cl.tickAll(20);
    expect(cl.reads("b").map((r) => r.ctx)).toEqual(["1"]);
    expect(cl.reads("c").map((r) => r.ctx)).toEqual(["1"]);
  });
});

describe("found bugs: ReadIndex with a single voter and a learner", () => {
  it("thesis §6.4: a one-voter cluster serves a read on its own when its only learner is down", () => {
    // The leader's own acknowledgement is already a quorum of the voters, but Raft.leaderReadIndex takes the
    // immediate path only when there are no learners at all (ProgressTracker.isSingleton counts them), and
    // otherwise checks for a quorum only when a HeartbeatResp arrives. With the learner down, none ever
    // does: every read hangs forever, while writes keep committing.
    const cl = new Cluster({ voters: ["a"] });
    cl.elect("a");
    cl.join("d");
    cl.proposeConfChange("a", { type: ConfChangeType.AddLearner, nodeId: nodeId("d") });
    cl.stabilize();
    expect(cl.status("a").config).toEqual({ voters: ["a"], learners: ["d"] });
    cl.crash("d");
    cl.readIndex("a", "r");
    cl.tick("a", 30);
    cl.stabilize();
    expect(cl.reads("a").map((r) => r.ctx)).toEqual(["r"]);
  });
});

describe("found bugs: durability of an installed snapshot", () => {
  it("Ready contract: a Ready that carries a snapshot must be synced before its acknowledgement is sent", () => {
    // A follower in the leader's term installs a snapshot: the Ready holds the snapshot, the new commit
    // index and the AppResp acknowledging the snapshot's index — but no entries and no term/vote change,
    // so mustSync is false and a caller following index.ts may skip the fsync. A crash then loses a
    // snapshot the leader already counts in this follower's match; the leader never probes below match,
    // so the follower can no longer be repaired by appends.
    const st = MemoryStorage.bootstrap({ voters: ids("a", "b", "c"), learners: [] });
    st.setHardState({ term: term(2), vote: nodeId("a"), commit: index(1) });
    const s = new Solo(st, "b");
    s.step({ type: MessageType.Heartbeat, from: nodeId("a"), term: term(2) });
    s.drain();
    s.step({
      type: MessageType.Snap,
      from: nodeId("a"),
      term: term(2),
      snapshot: {
        meta: { index: index(10), term: term(2), confState: { voters: ids("a", "b", "c"), learners: [] } },
        data: new Uint8Array(),
      },
    });
    const rd = s.node.ready();
    expect(rd.snapshot?.meta.index).toBe(10);
    expect(rd.messages).toMatchObject([{ type: MessageType.AppResp, index: 10, reject: false }]);
    expect(rd.mustSync).toBe(true);
  });
});
