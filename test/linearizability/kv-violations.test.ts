/**
 * Hand-made histories that are NOT linearizable: each is an anomaly a broken store could produce (a read
 * served by a stale follower, a lost acknowledged write, a CAS applied twice). The checker must reject
 * every one and say which operation could not be placed, and why.
 */
import { describe, expect, it } from "vitest";
import { checkOperations, type KvOperation, kvModel } from "../support/linearizability/index.js";
import { cas, casVersion, del, get, put } from "./builders.js";

function expectIllegal(history: KvOperation[]) {
  const { result, info } = checkOperations(kvModel, history);
  expect(result).toBe("illegal");
  expect(info.explanation).toContain("NOT linearizable");
  return info;
}

describe("non-linearizable KV histories are rejected", () => {
  it("rejects a stale read after a completed write", () => {
    const info = expectIllegal([
      put("c1", "x", "a", [0, 1]),
      put("c1", "x", "b", [2, 3]),
      get("c2", "x", "a", [4, 5]),
    ]);
    expect(info.explanation).toContain('get returned "a" but the value is "b"');
  });

  it("rejects a read of a value never written", () => {
    const info = expectIllegal([put("c1", "x", "a", [0, 1]), get("c2", "x", "z", [0.5, 5])]);
    expect(info.explanation).toContain('get returned "z"');
  });

  it("rejects two cas operations both succeeding from the same expected value", () => {
    const info = expectIllegal([
      put("c1", "x", "a", [0, 1]),
      cas("c1", "x", "a", "b", true, [2, 5]),
      cas("c2", "x", "a", "c", true, [3, 6]),
    ]);
    expect(info.explanation).toContain("cas succeeded but the compare does not hold");
  });

  it("rejects a version cas that succeeded against a version the key never had", () => {
    expectIllegal([put("c1", "x", "a", [0, 1]), casVersion("c2", "x", 2, "b", true, [2, 3])]);
  });

  it("rejects a read going back in time", () => {
    // Once c2 saw b, a (written once, before b) can never be read again.
    expectIllegal([
      put("c1", "x", "a", [0, 1]),
      put("c1", "x", "b", [2, 20]),
      get("c2", "x", "b", [3, 4]),
      get("c3", "x", "a", [5, 6]),
    ]);
  });

  it("rejects a completed write seen and then unseen (a lost write)", () => {
    expectIllegal([
      put("c1", "x", "a", [0, 1]),
      put("c2", "x", "b", [2, 3]),
      get("c3", "x", "b", [4, 5]),
      get("c3", "x", "a", [6, 7]),
    ]);
  });

  it("rejects a pending write seen and then unseen: possibly-applied does not mean revocable", () => {
    expectIllegal([
      put("c1", "x", "a", [0, 1]),
      put("c2", "x", "b", [2, null]),
      get("c3", "x", "b", [4, 5]),
      get("c3", "x", "a", [6, 7]),
    ]);
  });

  it("rejects a read of a pending write's value before that write was invoked", () => {
    expectIllegal([get("c1", "x", "b", [0, 1]), put("c2", "x", "b", [2, null])]);
  });

  it("rejects a failed cas that nothing can explain", () => {
    // The twin of the accepted history with a lost put: without it, the compare held and the cas failed.
    const info = expectIllegal([
      put("c1", "x", "a", [0, 1]),
      cas("c1", "x", "a", "c", false, [3, 4]),
      put("c3", "x", "d", [5, 6]),
      get("c1", "x", "d", [7, 8]),
    ]);
    expect(info.explanation).toContain('cas failed but the compare holds on "a"');
  });

  it("rejects a value surviving a completed delete", () => {
    expectIllegal([put("c1", "x", "a", [0, 1]), del("c2", "x", [2, 3]), get("c1", "x", "a", [4, 5])]);
  });

  it("rejects wrong previous values, delete counts and versions", () => {
    expectIllegal([put("c1", "x", "a", [0, 1]), put("c1", "x", "b", [2, 3], null)]);
    expectIllegal([put("c1", "x", "a", [0, 1]), del("c1", "x", [2, 3], 0)]);
    expectIllegal([put("c1", "x", "a", [0, 1]), put("c1", "x", "b", [2, 3]), get("c2", "x", "b", [4, 5], 1)]);
  });

  it("names the failing key, shows the longest prefix and the operations that cannot follow it", () => {
    const { result, info } = checkOperations(kvModel, [
      put("c1", "good", "a", [0, 1]),
      get("c2", "good", "a", [2, 3]),
      put("c1", "bad", "a", [0, 1]),
      put("c1", "bad", "b", [2, 3]),
      get("c2", "bad", "b", [4, 5]),
      get("c2", "bad", "a", [6, 7]),
      get("c3", "bad", "b", [8, 9]),
    ]);
    expect(result).toBe("illegal");
    expect(info.partitions.map((p) => [p.name, p.result])).toEqual([
      ['key "good"', "ok"],
      ['key "bad"', "illegal"],
    ]);
    const bad = info.partitions[1]!;
    expect(bad.linearization.map((op) => op.input)).toEqual([
      { op: "put", key: "bad", value: "a" },
      { op: "put", key: "bad", value: "b" },
      { op: "get", key: "bad" },
    ]);
    expect(bad.unplaced).toHaveLength(2);
    console.info(info.explanation);
    const text = info.explanation;
    expect(text).not.toContain('key "good"');
    expect(text).toContain('key "bad": NOT linearizable (5 operations; at most 3 can be ordered)');
    expect(text).toMatch(/1\. client c1 .* put\("bad", "a"\) -> ok {2}=> "a"$/m);
    expect(text).toContain('State after it: "b"');
    expect(text).toMatch(/x client c2 .* get\("bad"\) -> "a" {2}-- get returned "a" but the value is "b"/);
    expect(text).toMatch(/Not placed either \(1, later in real time\):\n +client c3/);
  });
});
