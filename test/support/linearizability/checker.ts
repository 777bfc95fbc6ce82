/**
 * checkOperations: is a recorded client history linearizable with respect to a model?
 *
 * The history is split by the model's partition function and each part searched on its own
 * (P-compositionality); the verdict is "illegal" if any part is, else "unknown" if any part ran out of
 * time, else "ok". Like porcupine, "unknown" means no violation was found in the time given.
 */
import { explainPartition } from "./explain.js";
import { type History, HistoryError, isUnknown, type Operation, validateHistory } from "./history.js";
import type { Model } from "./model.js";
import { searchPartition, type Verdict } from "./search.js";

export type { Verdict } from "./search.js";

export interface CheckOptions {
  /** Give up (verdict "unknown") after this long over all partitions; no limit if absent. */
  readonly timeoutMs?: number;
  /** Milliseconds from an arbitrary origin, for the deadline and timings (default performance.now). */
  readonly clock?: () => number;
}

export interface PartitionReport<Input, Output, State = unknown> {
  readonly name: string;
  /** The state the search started from. */
  readonly init: State;
  readonly result: Verdict;
  /** The operations searched (reads with an unknown outcome already dropped). */
  readonly operations: readonly Operation<Input, Output>[];
  /** A complete linearization when ok; otherwise the longest linearizable prefix the search reached. */
  readonly linearization: readonly Operation<Input, Output>[];
  /** Operations not in `linearization` (empty when ok). */
  readonly unplaced: readonly Operation<Input, Output>[];
  readonly steps: number;
  readonly elapsedMs: number;
}

export interface CheckInfo<Input, Output, State = unknown> {
  readonly partitions: readonly PartitionReport<Input, Output, State>[];
  /** Reads whose outcome was unknown: they constrain nothing and are not searched. */
  readonly droppedReads: number;
  readonly elapsedMs: number;
  /** Text for a person: one section per partition that is not ok; empty when the verdict is ok. */
  readonly explanation: string;
}

export interface CheckResult<Input, Output, State = unknown> {
  readonly result: Verdict;
  readonly info: CheckInfo<Input, Output, State>;
}

const defaultClock = () => performance.now();

export function checkOperations<State, Input, Output>(
  model: Model<State, Input, Output>,
  history: History<Input, Output>,
  options: CheckOptions = {},
): CheckResult<Input, Output, State> {
  const clock = options.clock ?? defaultClock;
  if (options.timeoutMs !== undefined && !(options.timeoutMs >= 0)) {
    throw new RangeError(
      `timeoutMs must be a non-negative number of milliseconds, got ${options.timeoutMs}.`,
    );
  }
  validateHistory(history);
  history.forEach((op, index) => {
    const problem = model.validate?.(op);
    if (problem !== undefined) {
      throw new HistoryError(`operation ${index} (client ${String(op.client)}): ${problem}`, index);
    }
  });

  const started = clock();
  const deadlineAt = options.timeoutMs === undefined ? Number.POSITIVE_INFINITY : started + options.timeoutMs;
  const deadline = { passed: () => clock() >= deadlineAt };

  const searched = history.filter((op) => !(isUnknown(op.output) && model.isReadOnly?.(op.input) === true));
  const parts = model.partition?.(searched) ?? [{ name: "history", operations: searched }];

  const partitions: PartitionReport<Input, Output, State>[] = [];
  for (const part of parts) {
    const partStarted = clock();
    const operations = part.operations;
    const init = part.init?.() ?? model.init();
    // Once time is up, the remaining partitions are not searched at all.
    const outcome =
      clock() >= deadlineAt
        ? { result: "unknown" as const, linearization: [], steps: 0 }
        : searchPartition(model, operations, init, deadline);
    const inPrefix = new Set(outcome.linearization);
    partitions.push({
      name: part.name,
      init,
      result: outcome.result,
      operations,
      linearization: outcome.linearization.map((id) => operations[id]!),
      unplaced: operations.filter((_, id) => !inPrefix.has(id)),
      steps: outcome.steps,
      elapsedMs: clock() - partStarted,
    });
  }

  const result: Verdict = partitions.some((p) => p.result === "illegal")
    ? "illegal"
    : partitions.some((p) => p.result === "unknown")
      ? "unknown"
      : "ok";
  const origin = Math.min(...history.map((op) => op.callAt));
  const explanation = partitions
    .filter((p) => p.result !== "ok")
    .map((p) => explainPartition(model, p, origin))
    .join("\n\n");
  return {
    result,
    info: {
      partitions,
      droppedReads: history.length - searched.length,
      elapsedMs: clock() - started,
      explanation,
    },
  };
}
