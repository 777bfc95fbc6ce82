/**
 * The checker itself, apart from the KV model: input validation, the deadline, partitions being an
 * optimisation rather than a change of meaning, and a model of a different shape (a FIFO queue).
 */
import { describe, expect, it } from "vitest";
import {
  checkOperations,
  HistoryError,
  hashString,
  historyFromJson,
  historyToJson,
  type KeyState,
  type KvOperation,
  kvModel,
  type Model,
  type Operation,
  UNKNOWN,
} from "../support/linearizability/index.js";
import { get, put } from "./builders.js";
import { randomHistory } from "./random-history.js";

describe("history validation", () => {
  it("refuses a return before the call, naming the operation and field", () => {
    const bad = { ...put("c1", "x", "a", [5, 6]), returnAt: 4 };
    expect(() => checkOperations(kvModel, [bad])).toThrow(
      new HistoryError("operation 0 (client c1): returnAt 4 is before callAt 5.", 0),
    );
  });

  it("refuses a non-finite call time and a NaN return time", () => {
    expect(() => checkOperations(kvModel, [{ ...put("c1", "x", "a", [0, 1]), callAt: Number.NaN }])).toThrow(
      /operation 0 \(client c1\): callAt must be a finite number/,
    );
    expect(() =>
      checkOperations(kvModel, [{ ...put("c1", "x", "a", [0, 1]), returnAt: Number.NaN }]),
    ).toThrow(/returnAt must be a number or Infinity/);
  });

  it("refuses an infinite return time that carries an output", () => {
    const bad = { ...put("c1", "x", "a", [0, 1]), returnAt: Number.POSITIVE_INFINITY };
    expect(() => checkOperations(kvModel, [bad])).toThrow(/returnAt is Infinity .* use UNKNOWN/);
  });

  it("refuses an output that does not match its input, through the model's validate", () => {
    const bad: KvOperation = { ...put("c2", "x", "a", [0, 1]), output: { op: "get", value: "a" } };
    expect(() => checkOperations(kvModel, [put("c1", "x", "a", [0, 1]), bad])).toThrow(
      new HistoryError(
        "operation 1 (client c2): output.op must be put to match the input (or the output UNKNOWN).",
        1,
      ),
    );
  });

  it("refuses a cas without a usable expectation", () => {
    const bad = {
      client: "c1",
      input: { op: "cas", key: "x", expect: { value: 3 }, value: "b" },
      callAt: 0,
      output: { op: "cas", ok: true },
      returnAt: 1,
    } as unknown as KvOperation;
    expect(() => checkOperations(kvModel, [bad])).toThrow(/input\.expect must be either/);
  });

  it("refuses a negative timeout", () => {
    expect(() => checkOperations(kvModel, [], { timeoutMs: -1 })).toThrow(/timeoutMs must be a non-negative/);
  });
});

describe("deadline", () => {
  it("answers unknown, not ok, when the search runs out of time", () => {
    // A clock that advances 1 ms per reading: the 10 ms budget ends long before 2000 operations are placed.
    let now = 0;
    const clock = () => now++;
    const history = randomHistory({ seed: 1, clients: 3, operations: 2000, keys: 1 });
    const { result, info } = checkOperations(kvModel, history, { timeoutMs: 10, clock });
    expect(result).toBe("unknown");
    expect(info.partitions[0]!.result).toBe("unknown");
    expect(info.explanation).toMatch(/key "k0": no verdict — the search ran out of time after \d+ steps/);
  });

  it("still answers illegal when a violation is found before the deadline", () => {
    let now = 0;
    const clock = () => now++;
    const history = [
      put("c1", "a", "1", [0, 1]),
      get("c2", "a", "2", [2, 3]),
      ...randomHistory({ seed: 2, clients: 3, operations: 2000, keys: 1 }),
    ];
    const { result, info } = checkOperations(kvModel, history, { timeoutMs: 10, clock });
    expect(result).toBe("illegal");
    expect(info.partitions.map((p) => p.result)).toContain("unknown");
  });
});

/** The whole store as one state: the KV model without partitioning, to cross-check partitioned verdicts. */
type Store = ReadonlyMap<string, KeyState>;
const wholeStoreModel: Model<Store, KvOperation["input"], KvOperation["output"]> = {
  init: () => new Map(),
  step(state, input, output) {
    const before = state.get(input.key) ?? kvModel.init();
    const step = kvModel.step(before, input, output);
    if (!step.ok) return step;
    const next = new Map(state);
    next.set(input.key, step.next);
    return { ok: true, next };
  },
  equal: (a, b) =>
    a.size === b.size && [...a].every(([k, s]) => kvModel.equal(s, b.get(k) ?? kvModel.init())),
  hash: (s) => [...s].reduce((h, [k, v]) => (h ^ hashString(k, kvModel.hash(v))) >>> 0, 0),
  describeOperation: kvModel.describeOperation,
  describeState: (s) => [...s].map(([k, v]) => `${k}=${kvModel.describeState(v)}`).join(", "),
};

describe("partitioning", () => {
  it("gives the same verdicts with and without per-key partitions", () => {
    const bad = [
      put("c1", "x", "a", [0, 1]),
      put("c1", "y", "b", [0.5, 2]),
      put("c1", "x", "b", [2, 3]),
      get("c2", "x", "a", [4, 5]),
    ];
    expect(checkOperations(wholeStoreModel, bad).result).toBe("illegal");
    expect(checkOperations(kvModel, bad).result).toBe("illegal");
    for (const seed of [1, 2, 3]) {
      const history = randomHistory({ seed, clients: 3, operations: 60, keys: 3 });
      expect(checkOperations(wholeStoreModel, history).result).toBe("ok");
      expect(checkOperations(kvModel, history).result).toBe("ok");
    }
  });

  it("reports a model without a partition function as one part called history", () => {
    const { info } = checkOperations(wholeStoreModel, [put("c1", "x", "a", [0, 1])]);
    expect(info.partitions.map((p) => p.name)).toEqual(["history"]);
  });
});

/** A FIFO queue: a model where order matters beyond the last write. */
type QueueInput = { op: "enqueue"; item: number } | { op: "dequeue" };
type QueueOutput = { item: number | null };
const queueModel: Model<readonly number[], QueueInput, QueueOutput> = {
  init: () => [],
  step(state, input, output) {
    if (input.op === "enqueue") return { ok: true, next: [...state, input.item] };
    const head = state[0] ?? null;
    if ("item" in output && output.item !== head)
      return { ok: false, why: `dequeued ${output.item}, head is ${head}` };
    return { ok: true, next: state.slice(1) };
  },
  equal: (a, b) => a.length === b.length && a.every((x, i) => x === b[i]),
  hash: (s) => hashString(s.join(",")),
  describeOperation: (input, output) =>
    input.op === "enqueue"
      ? `enqueue(${input.item})`
      : `dequeue() -> ${"item" in output ? output.item : "?"}`,
  describeState: (s) => `[${s.join(", ")}]`,
};

describe("a model of another shape", () => {
  const op = (
    client: string,
    input: QueueInput,
    callAt: number,
    returnAt: number,
    item?: number | null,
  ): Operation<QueueInput, QueueOutput> => ({
    client,
    input,
    callAt,
    output: returnAt === Number.POSITIVE_INFINITY ? UNKNOWN : { item: item ?? null },
    returnAt,
  });

  it("accepts dequeues in an order concurrent enqueues allow", () => {
    const history = [
      op("a", { op: "enqueue", item: 1 }, 0, 10),
      op("b", { op: "enqueue", item: 2 }, 0, 10),
      op("a", { op: "dequeue" }, 11, 12, 2),
      op("b", { op: "dequeue" }, 13, 14, 1),
    ];
    expect(checkOperations(queueModel, history).result).toBe("ok");
  });

  it("rejects dequeues out of the order sequential enqueues fixed", () => {
    const history = [
      op("a", { op: "enqueue", item: 1 }, 0, 1),
      op("a", { op: "enqueue", item: 2 }, 2, 3),
      op("b", { op: "dequeue" }, 4, 5, 2),
    ];
    const { result, info } = checkOperations(queueModel, history);
    expect(result).toBe("illegal");
    expect(info.explanation).toContain("dequeued 2, head is 1");
  });
});

describe("history JSON", () => {
  it("round-trips a history with unknown outcomes (Infinity is written as null)", () => {
    const history = randomHistory({ seed: 5, clients: 3, operations: 50, keys: 2, pendingRate: 0.2 });
    const json = historyToJson(history);
    expect(json).toContain('"returnAt": null');
    const back = historyFromJson<KvOperation["input"], KvOperation["output"]>(json);
    expect(back).toEqual(history);
    expect(checkOperations(kvModel, back).result).toBe("ok");
  });

  it("refuses JSON that is not a list of operations, naming the bad one", () => {
    expect(() => historyFromJson("{}")).toThrow("a history must be a JSON array of operations.");
    expect(() =>
      historyFromJson('[{"client":"c1","input":{},"callAt":1,"output":{},"returnAt":2}, 7]'),
    ).toThrow("operation 1: must be an object, got 7.");
    expect(() => historyFromJson('[{"client":"c1","input":{},"callAt":3,"output":{},"returnAt":2}]')).toThrow(
      "returnAt 2 is before callAt 3",
    );
  });
});
