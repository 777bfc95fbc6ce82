// Minimal reproductions of defects the unit and paper tests found in src/raft. Each test states the rule it
// checks and the behaviour that was observed; both were fixed in 08f4473 and stay here as regression tests.

import { describe, expect, it } from "vitest";
import { ConfChangeType, MessageType, nodeId, StateType } from "../../src/raft/index.js";
import { Cluster } from "./harness.js";

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
