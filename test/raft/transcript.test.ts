// Transcript tests in the style of etcd's data-driven tests: a scenario, step by step, and the exact
// messages each delivery round carries. A change in the core's message flow shows up here as a diff.

import { describe, expect, it } from "vitest";
import { Cluster } from "./harness.js";

describe("transcripts", () => {
  it("§5.2 + §5.3: election, then a proposal forwarded by a follower, committed and applied everywhere", () => {
    const cl = new Cluster({ voters: ["a", "b", "c"] });
    cl.campaign("a");
    const rounds: string[][] = [];
    for (let r = 0; r < 4; r++) rounds.push(cl.round());
    cl.propose("b", "x");
    for (let r = 0; r < 5; r++) rounds.push(cl.round());
    expect(rounds).toEqual([
      // The candidate's term-2 vote requests carry its last (index, term); both grant.
      ["a->b Vote t2 last=(1,1)", "a->c Vote t2 last=(1,1)"],
      ["b->a VoteResp t2 granted", "c->a VoteResp t2 granted"],
      // The new leader appends an empty entry of its term (§5.4.2) and replicates it.
      ["a->b App t2 prev=(1,1) commit=1 [2@2]", "a->c App t2 prev=(1,1) commit=1 [2@2]"],
      ["b->a AppResp t2 index=2", "c->a AppResp t2 index=2"],
      // Committed: the new commit index goes out; b forwards its proposal (term-less, unstamped).
      ["a->b App t2 prev=(2,2) commit=2 []", "a->c App t2 prev=(2,2) commit=2 []", "b->a Prop t0 [0@0:x]"],
      [
        "a->b App t2 prev=(2,2) commit=2 [3@2:x]",
        "a->c App t2 prev=(2,2) commit=2 [3@2:x]",
        "b->a AppResp t2 index=2",
        "c->a AppResp t2 index=2",
      ],
      ["b->a AppResp t2 index=3", "c->a AppResp t2 index=3"],
      ["a->b App t2 prev=(3,2) commit=3 []", "a->c App t2 prev=(3,2) commit=3 []"],
      ["b->a AppResp t2 index=3", "c->a AppResp t2 index=3"],
    ]);
    expect(cl.round()).toEqual([]);
    for (const n of ["a", "b", "c"]) expect(cl.values(n)).toEqual(["x"]);
  });

  it("thesis §5.3: fast back-off, message by message: one rejection skips a whole divergent term", () => {
    const cl = new Cluster({ voters: ["a", "b", "c"] });
    cl.elect("a");
    // a, cut off, appends three entries of term 2 nobody else gets.
    cl.isolate("a");
    for (const v of ["p", "q", "r"]) cl.propose("a", v);
    cl.stabilize();
    // b leads term 3 and commits "s"; c takes over in term 4. c probes a at its own last index.
    cl.elect("b");
    cl.propose("b", "s");
    cl.stabilize();
    cl.elect("c");
    cl.heal();
    cl.tick("c");
    const lines: string[] = [];
    for (let r = 0; r < 6; r++)
      lines.push(...cl.round().filter((l) => l.includes("a->") || l.includes("->a")));
    expect(lines).toEqual([
      // a still believes it leads term 2; c's heartbeat makes it a follower of term 4.
      "c->a Heartbeat t4 commit=0",
      "a->c HeartbeatResp t4",
      // c's first probe sits on its last entry; a's entry 4 has term 2: refused, hinting (4, term 2).
      "c->a App t4 prev=(4,3) commit=5 [5@4]",
      "a->c AppResp t4 reject=4 hint=(4,2)",
      // c skips every entry of its own with a term above 2 and probes at (2, 2): accepted, a's divergent
      // tail (3..5 of term 2) is replaced in one go.
      "c->a App t4 prev=(2,2) commit=5 [3@3 4@3:s 5@4]",
      "a->c AppResp t4 index=5",
    ]);
    expect(cl.values("a")).toEqual(["s"]);
  });
});
