/**
 * Hand-made histories that ARE linearizable: the checker must find an order for each. Each one names the
 * behaviour a correct store may show that a naive checker could wrongly reject.
 */
import { describe, expect, it } from "vitest";
import { checkOperations, type KvOperation, kvModel } from "../support/linearizability/index.js";
import { cas, casVersion, del, get, put } from "./builders.js";

function expectOk(history: KvOperation[]) {
  const { result, info } = checkOperations(kvModel, history);
  expect(result, info.explanation).toBe("ok");
  return info;
}

describe("linearizable KV histories are accepted", () => {
  it("accepts the empty history", () => {
    expect(checkOperations(kvModel, []).result).toBe("ok");
  });

  it("orders overlapping puts by what later reads saw, not by when they started", () => {
    // c1's put started first but c2's took effect first: the reads prove a-after-b.
    expectOk([
      put("c1", "x", "a", [0, 10]),
      put("c2", "x", "b", [2, 8]),
      get("c3", "x", "a", [11, 12]),
      get("c2", "x", "a", [13, 14]),
    ]);
  });

  it("lets reads concurrent with a put see the old value, then the new one", () => {
    expectOk([
      put("c1", "x", "1", [0, 100]),
      get("c2", "x", null, [10, 20]),
      get("c3", "x", "1", [30, 40]),
      get("c2", "x", "1", [50, 60]),
    ]);
  });

  it("treats intervals as closed: an operation invoked when another returns is concurrent with it", () => {
    expectOk([put("c1", "x", "a", [0, 5]), get("c2", "x", null, [5, 6])]);
  });

  it("accepts one cas winning and a concurrent one with the same expectation failing", () => {
    expectOk([
      put("c1", "x", "a", [0, 1]),
      cas("c1", "x", "a", "b", true, [2, 5]),
      cas("c2", "x", "a", "c", false, [3, 6]),
      get("c3", "x", "b", [7, 8]),
    ]);
  });

  it("accepts cas on absence and on version, with versions reported by reads", () => {
    expectOk([
      cas("c1", "x", null, "a", true, [0, 1]),
      casVersion("c2", "x", 1, "b", true, [2, 3]),
      casVersion("c1", "x", 1, "c", false, [4, 5]),
      get("c2", "x", "b", [6, 7], 2),
      del("c1", "x", [8, 9], 1),
      casVersion("c2", "x", 0, "d", true, [10, 11]),
      get("c1", "x", "d", [12, 13], 1),
    ]);
  });

  it("checks put's previous value and delete's count", () => {
    expectOk([
      put("c1", "x", "a", [0, 1], null),
      put("c2", "x", "b", [2, 3], "a"),
      del("c1", "x", [4, 5], 1),
      del("c2", "x", [6, 7], 0),
      put("c1", "x", "c", [8, 9], null),
    ]);
  });

  it("accepts a pending put that took effect (seen by a later read)", () => {
    expectOk([put("c1", "x", "a", [0, 1]), put("c2", "x", "b", [2, null]), get("c1", "x", "b", [10, 11])]);
  });

  it("accepts a pending put that never took effect", () => {
    const info = expectOk([
      put("c1", "x", "a", [0, 1]),
      put("c2", "x", "b", [2, null]),
      get("c1", "x", "a", [10, 11]),
      get("c3", "x", "a", [20, 21]),
    ]);
    // The search placed the pending put last, after every read: the same as it never happening.
    // Nobody read "b", so the model marked the put unread: one of a class of interchangeable writes.
    expect(info.partitions[0]!.linearization.at(-1)!.input).toEqual({
      op: "put",
      key: "x",
      value: "b",
      unread: true,
    });
  });

  it("accepts a pending put that took effect long after its client gave up", () => {
    expectOk([
      put("c1", "x", "a", [0, 1]),
      put("c2", "x", "b", [2, null]),
      get("c1", "x", "a", [10, 11]),
      get("c2", "x", "a", [12, 13]),
      get("c1", "x", "b", [500, 501]),
    ]);
  });

  it("accepts pending cas operations whether or not they took effect", () => {
    expectOk([
      put("c1", "x", "a", [0, 1]),
      cas("c2", "x", "a", "b", true, [2, null]),
      cas("c3", "x", "a", "c", true, [3, null]),
      get("c1", "x", "c", [10, 11]),
    ]);
  });

  it("lets a timed-out write nobody read still explain a failed cas", () => {
    // The cas expected "a" and failed: only the lost put of "b" (never read, so marked unread) can have
    // changed the value in between.
    const info = expectOk([
      put("c1", "x", "a", [0, 1]),
      put("c2", "x", "b", [2, null]),
      cas("c1", "x", "a", "c", false, [3, 4]),
      put("c3", "x", "d", [5, 6]),
      get("c1", "x", "d", [7, 8]),
    ]);
    expect(info.partitions[0]!.linearization.map((op) => op.input.op)).toEqual([
      "put",
      "put",
      "cas",
      "put",
      "get",
    ]);
  });

  it("drops pending reads: they constrain nothing", () => {
    const info = expectOk([put("c1", "x", "a", [0, 1]), get("c2", "x", null, [2, null])]);
    expect(info.droppedReads).toBe(1);
    expect(info.partitions[0]!.operations).toHaveLength(1);
  });

  it("checks keys independently and reports one partition per key", () => {
    const info = expectOk([
      put("c1", "x", "a", [0, 10]),
      put("c2", "y", "a", [1, 2]),
      get("c2", "y", "a", [3, 4]),
      get("c3", "x", null, [3, 4]),
      get("c3", "x", "a", [11, 12]),
    ]);
    expect(info.partitions.map((p) => p.name)).toEqual(['key "x"', 'key "y"']);
    expect(info.partitions.every((p) => p.unplaced.length === 0)).toBe(true);
  });
});
