// Replication beyond the paper's basics: fast log back-off (thesis §5.3 optimization), pipelining and flow
// control (etcd's Probe/Replicate states with maxInflightMsgs and maxSizePerMsg), and recovery from loss.

import { describe, expect, it } from "vitest";
import { index, type Message, MessageType, nodeId, ProgressState, term } from "../../src/raft/index.js";
import { Cluster, entry, Solo, storageWithLog } from "./harness.js";

const a = nodeId("a");
const b = nodeId("b");

const appsTo = (to: string) => (m: Message) => m.type === MessageType.App && m.to === nodeId(to);
const rejectionsFrom = (cl: Cluster, from: string) =>
  cl.delivered.filter((m) => m.type === MessageType.AppResp && m.reject && m.from === nodeId(from)).length;

describe("fast back-off", () => {
  it("thesis §5.3: a follower with a long divergent tail is brought in sync in a few round trips, not one per entry", () => {
    const cl = new Cluster({ voters: ["a", "b", "c"] });
    cl.elect("a");
    cl.propose("a", "common");
    cl.stabilize();
    // a, cut off, appends 100 entries of term 2 nobody else gets.
    cl.isolate("a");
    for (let k = 0; k < 100; k++) cl.propose("a", `stale-${k}`);
    cl.stabilize();
    // b leads term 3 with c and appends 100 entries of its own.
    cl.elect("b");
    for (let k = 0; k < 100; k++) cl.propose("b", `new-${k}`);
    cl.stabilize();
    // c takes over in term 4: it starts probing a at its own last index, far above the divergence point.
    cl.elect("c");
    const before = rejectionsFrom(cl, "a");
    cl.heal();
    cl.tickAll(3);
    expect(cl.values("a")).toEqual(cl.values("b"));
    expect(cl.logTerms("a")).toEqual(cl.logTerms("b"));
    const rejections = rejectionsFrom(cl, "a") - before;
    expect(rejections).toBeGreaterThanOrEqual(1);
    expect(rejections).toBeLessThanOrEqual(2);
  });

  it("thesis §5.3: a follower whose tail is of a higher term than the leader's probe hints below it, and the leader skips the whole term", () => {
    // Follower log (from index 2): terms [1, 1, 4, 4, 4, 4]; leader probes at index 7 with term 5.
    const s = new Solo(storageWithLog(["a", "b", "c"], [1, 1, 4, 4, 4, 4]), "b");
    s.step({ type: MessageType.App, from: a, term: term(5), index: index(7), logTerm: term(5) });
    const [resp] = s.drain();
    // Its term-4 entries may still match older leader entries: it hints its last index and that term.
    expect(resp).toMatchObject({ reject: true, rejectHint: 7, logTerm: 4 });
    // Probe at index 7 with term 3: entries of term 4 cannot match a term-3 leader entry; skip them.
    s.step({ type: MessageType.App, from: a, term: term(5), index: index(7), logTerm: term(3) });
    const [resp2] = s.drain();
    expect(resp2).toMatchObject({ reject: true, rejectHint: 3, logTerm: 1 });
  });

  it("thesis §5.3: the leader uses the hint's term to skip its own entries above it", () => {
    // Leader log from index 2: terms [1, 2, 2, 2, 2]; elected in term 3 (empty entry at 7).
    const s = new Solo(storageWithLog(["a", "b", "c"], [1, 2, 2, 2, 2], 2), "a");
    s.node.campaign();
    s.step({ type: MessageType.VoteResp, from: b, term: term(3) });
    s.drain();
    // b has index 6 of term 1 (a divergent term-1 tail): it hints (6, term 1).
    s.step({
      type: MessageType.AppResp,
      from: b,
      term: term(3),
      index: index(6),
      reject: true,
      rejectHint: index(6),
      logTerm: term(1),
    });
    const [probe] = s.drain().filter(appsTo("b"));
    // The leader's last entry of term <= 1 is index 2: it probes right there, skipping 3..6.
    expect(probe).toMatchObject({ index: 2, logTerm: 1 });
  });
});

describe("pipelining and flow control", () => {
  it("etcd flow control: in Replicate state at most maxInflightMsgs appends are unacknowledged; acks open the window again", () => {
    const cl = new Cluster({ voters: ["a", "b", "c"], maxInflightMsgs: 3 });
    cl.elect("a");
    expect(cl.status("a").progress?.get(b)?.state).toBe(ProgressState.Replicate);
    for (let k = 0; k < 10; k++) cl.propose("a", `v${k}`);
    // Nothing delivered yet: only 3 appends went out to b (and to c), each with one entry (pipelining).
    expect(cl.pending(appsTo("b")).map((m) => m.entries.length)).toEqual([1, 1, 1]);
    expect(cl.node("a").raft.tracker.progress.get(b)?.inflights.count()).toBe(3);
    // Delivering them and their acks lets the rest go out in the freed window.
    cl.stabilize();
    expect(cl.values("b")).toHaveLength(10);
    expect(cl.delivered.filter(appsTo("b")).every((m) => m.entries.length <= 8)).toBe(true);
  });

  it("etcd flow control: maxSizePerMsg caps the entries in one append (at least one entry is always sent)", () => {
    // Entries are 10 data bytes (+24 of overhead): 100 bytes hold two of them.
    const cl = new Cluster({ voters: ["a", "b", "c"], maxSizePerMsg: 100 });
    cl.elect("a");
    cl.isolate("b");
    for (let k = 0; k < 9; k++) cl.propose("a", `value-000${k}`);
    cl.stabilize();
    const from = cl.delivered.length;
    cl.heal();
    cl.tickAll(2);
    const apps = cl.delivered.slice(from).filter(appsTo("b"));
    const sizes = apps.map((m) => m.entries.length).filter((n) => n > 0);
    expect(Math.max(...sizes)).toBe(2);
    expect(sizes.reduce((x, y) => x + y, 0)).toBeGreaterThanOrEqual(9);
    expect(cl.values("b")).toEqual(cl.values("a"));
    // A single entry larger than the limit still goes out on its own.
    cl.propose("a", "x".repeat(500));
    cl.stabilize();
    expect(cl.values("b")).toContain("x".repeat(500));
  });

  it("etcd flow control: maxInflightBytes caps the entry bytes in flight to one follower", () => {
    // Each entry carries 10 bytes of data; 25 bytes of window hold three single-entry appends.
    const cl = new Cluster({ voters: ["a", "b", "c"], maxInflightBytes: 25 });
    cl.elect("a");
    for (let k = 0; k < 6; k++) cl.propose("a", `value-000${k}`);
    expect(cl.pending(appsTo("b")).map((m) => m.entries.length)).toEqual([1, 1, 1]);
    cl.stabilize();
    expect(cl.values("b")).toHaveLength(6);
  });

  it("etcd: maxCommittedSizePerReady spreads a large commit over several Readys, applied in order", () => {
    const cl = new Cluster({ voters: ["a", "b", "c"], maxCommittedSizePerReady: 100 });
    cl.elect("a");
    cl.isolate("b");
    cl.isolate("c");
    for (let k = 0; k < 10; k++) cl.propose("a", `value-000${k}`);
    cl.heal();
    cl.tickAll(2);
    const a = cl.node("a");
    expect(a.status().applied).toBe(a.status().commit);
    expect(cl.values("a")).toEqual(Array.from({ length: 10 }, (_, k) => `value-000${k}`));
  });

  it("etcd flow control: a lost append in Replicate state is recovered through the next heartbeat, without new proposals", () => {
    const cl = new Cluster({ voters: ["a", "b", "c"] });
    cl.elect("a");
    cl.dropWhere(appsTo("b"));
    cl.propose("a", "x");
    cl.stabilize();
    cl.heal();
    expect(cl.values("b")).toEqual([]);
    expect(cl.status("a").progress?.get(b)?.state).toBe(ProgressState.Replicate);
    cl.tickAll(1);
    expect(cl.values("b")).toEqual(["x"]);
  });

  it("etcd flow control: a window full of lost appends does not stall replication (a heartbeat answer frees a slot)", () => {
    const cl = new Cluster({ voters: ["a", "b", "c"], maxInflightMsgs: 2 });
    cl.elect("a");
    cl.dropWhere(appsTo("b"));
    for (let k = 0; k < 5; k++) {
      cl.propose("a", `v${k}`);
      cl.stabilize();
    }
    expect(cl.node("a").raft.tracker.progress.get(b)?.inflights.full()).toBe(true);
    expect(cl.values("b")).toEqual([]);
    cl.heal();
    cl.tickAll(3);
    expect(cl.values("b")).toEqual(["v0", "v1", "v2", "v3", "v4"]);
  });

  it("etcd Probe state: while probing, one append at a time is in flight", () => {
    const cl = new Cluster({ voters: ["a", "b", "c"] });
    cl.elect("a");
    cl.crash("b");
    cl.node("a").reportUnreachable(b);
    expect(cl.status("a").progress?.get(b)?.state).toBe(ProgressState.Probe);
    cl.inbox = [];
    for (let k = 0; k < 5; k++) cl.propose("a", `v${k}`);
    expect(cl.pending(appsTo("b"))).toHaveLength(1);
  });

  it("§5.3: followers apply entries in log order, each exactly once, under reordering of appends", () => {
    const s = new Solo(storageWithLog(["a", "b", "c"], [], 2), "b");
    // Appends for 3 and 2 arrive out of order: 3 is refused (gap), 2 is accepted; duplicates are harmless.
    s.step({
      type: MessageType.App,
      from: a,
      term: term(2),
      index: index(2),
      logTerm: term(2),
      entries: [entry(3, 2)],
    });
    s.step({
      type: MessageType.App,
      from: a,
      term: term(2),
      index: index(1),
      logTerm: term(1),
      entries: [entry(2, 2)],
    });
    s.step({
      type: MessageType.App,
      from: a,
      term: term(2),
      index: index(1),
      logTerm: term(1),
      entries: [entry(2, 2)],
    });
    const resps = s.drain();
    expect(resps.map((m) => [m.reject, m.index])).toEqual([
      [true, 2],
      [false, 2],
      [false, 2],
    ]);
    expect(s.terms()).toEqual([2]);
  });
});
