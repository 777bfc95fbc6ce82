/**
 * The checker against the definition. A brute-force search with no cache, no effect classes, no unread
 * marking and no early end — every real-time-respecting order of the completed operations, with any
 * subset of the unknown-outcome ones slotted in — must agree with checkOperations on small histories,
 * legal or mutated. This is what shows the pruning rules never change a verdict.
 */
import { describe, expect, it } from "vitest";
import { checkOperations, isUnknown, type KvOperation, kvModel } from "../support/linearizability/index.js";
import { randomHistory } from "./random-history.js";
import { Rng } from "./rng.js";

/** Linearizable by definition: some order places every completed operation, each step accepted. */
function bruteForce(history: readonly KvOperation[]): boolean {
  const byKey = new Map<string, KvOperation[]>();
  for (const op of history) {
    if (isUnknown(op.output) && op.input.op === "get") continue;
    byKey.set(op.input.key, [...(byKey.get(op.input.key) ?? []), op]);
  }
  return [...byKey.values()].every((ops) => {
    const placed = new Array<boolean>(ops.length).fill(false);
    const search = (state: ReturnType<typeof kvModel.init>, completedLeft: number): boolean => {
      if (completedLeft === 0) return true;
      for (let i = 0; i < ops.length; i++) {
        const op = ops[i]!;
        if (placed[i]) continue;
        // Real time: nothing unplaced may have returned before this one was invoked.
        if (ops.some((other, j) => !placed[j] && other.returnAt < op.callAt)) continue;
        const step = kvModel.step(state, op.input, op.output);
        if (!step.ok) continue;
        placed[i] = true;
        const found = search(step.next, completedLeft - (isUnknown(op.output) ? 0 : 1));
        placed[i] = false;
        if (found) return true;
      }
      return false;
    };
    return search(kvModel.init(), ops.filter((op) => !isUnknown(op.output)).length);
  });
}

/** A random small change to one completed operation's output: often, not always, an anomaly. */
function mutate(history: KvOperation[], rng: Rng): void {
  const completed = history.flatMap((op, i) => (isUnknown(op.output) ? [] : [i]));
  const i = rng.pick(completed);
  const op = history[i]!;
  const values = [
    null,
    ...history.flatMap((o) => (o.input.op === "put" || o.input.op === "cas" ? [o.input.value] : [])),
  ];
  const output = op.output;
  if (isUnknown(output)) return;
  switch (output.op) {
    case "get":
      history[i] = { ...op, output: { op: "get", value: rng.pick(values) } };
      break;
    case "cas":
      history[i] = { ...op, output: { op: "cas", ok: !output.ok } };
      break;
    case "put":
      history[i] = { ...op, output: { op: "put", prev: rng.pick(values) } };
      break;
    case "delete":
      history[i] = { ...op, output: { op: "delete", deleted: rng.int(2) } };
      break;
  }
}

describe("checkOperations agrees with a brute-force search", () => {
  it("on 1000 small histories, half of them mutated, with many unknown outcomes", () => {
    let legal = 0;
    let illegal = 0;
    for (let seed = 1; seed <= 1000; seed++) {
      const rng = new Rng(seed * 7919);
      const history = randomHistory({
        seed,
        clients: 3,
        operations: 8 + (seed % 4),
        keys: 1 + (seed % 2),
        pendingRate: 0.3,
        pendingApplied: rng.next(),
        versions: seed % 3 === 0,
      });
      if (seed % 2 === 0) mutate(history, rng);
      const expected = bruteForce(history);
      const { result, info } = checkOperations(kvModel, history);
      expect(result, `seed ${seed}\n${info.explanation}`).toBe(expected ? "ok" : "illegal");
      if (expected) legal++;
      else illegal++;
    }
    // Both verdicts must be well represented for the comparison to mean anything.
    console.info(`brute force vs checker: ${legal} linearizable, ${illegal} not, all agreeing`);
    expect(legal).toBeGreaterThan(300);
    expect(illegal).toBeGreaterThan(150);
  });
});
