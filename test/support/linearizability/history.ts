/**
 * The history format the linearizability checker reads: one record per client operation, with the time it
 * was invoked and the time its answer arrived, both read from the same monotonic clock.
 *
 * Intervals are closed: an operation returning at t overlaps one invoked at t. A clock that returns equal
 * readings for two successive calls could otherwise order two concurrent operations (porcupine's
 * documentation works through this case).
 *
 * An operation whose client never learned the outcome (timeout, connection lost, server killed) may take
 * effect at any moment after its call, or never. It is recorded with `returnAt = Infinity` and the output
 * `UNKNOWN`: the search may then place it anywhere after its call, and placing it after every completed
 * operation is the same as it never having taken effect.
 */

export type ClientId = string | number;

/** The output of an operation whose outcome the client never learned. */
export interface Unknown {
  readonly unknown: true;
}

export const UNKNOWN: Unknown = Object.freeze({ unknown: true as const });

export function isUnknown(output: unknown): output is Unknown {
  return typeof output === "object" && output !== null && (output as { unknown?: unknown }).unknown === true;
}

export interface Operation<Input, Output> {
  readonly client: ClientId;
  readonly input: Input;
  /** Clock reading taken before the request left the client. */
  readonly callAt: number;
  readonly output: Output | Unknown;
  /** Clock reading taken after the answer arrived; Infinity when the outcome is unknown. */
  readonly returnAt: number;
}

export type History<Input, Output> = readonly Operation<Input, Output>[];

/** A malformed history: a recorder or test bug, never a linearizability verdict. */
export class HistoryError extends Error {
  override name = "HistoryError";
  constructor(
    message: string,
    readonly index: number,
  ) {
    super(message);
  }
}

/** Throws a HistoryError naming the first operation and field that cannot be checked. */
export function validateHistory<I, O>(history: History<I, O>): void {
  history.forEach((op, index) => {
    const where = `operation ${index} (client ${String(op.client)})`;
    if (typeof op.callAt !== "number" || !Number.isFinite(op.callAt)) {
      throw new HistoryError(`${where}: callAt must be a finite number, got ${String(op.callAt)}.`, index);
    }
    if (typeof op.returnAt !== "number" || Number.isNaN(op.returnAt)) {
      throw new HistoryError(
        `${where}: returnAt must be a number or Infinity, got ${String(op.returnAt)}.`,
        index,
      );
    }
    if (op.returnAt < op.callAt) {
      throw new HistoryError(`${where}: returnAt ${op.returnAt} is before callAt ${op.callAt}.`, index);
    }
    if (op.returnAt === Number.POSITIVE_INFINITY && !isUnknown(op.output)) {
      throw new HistoryError(
        `${where}: returnAt is Infinity (outcome unknown) but an output was recorded; use UNKNOWN.`,
        index,
      );
    }
  });
}

/**
 * JSON for a history, to save one that failed next to the test's logs and check it again offline.
 * JSON has no Infinity: an unknown outcome is written as `"returnAt": null`.
 */
export function historyToJson<I, O>(history: History<I, O>): string {
  return JSON.stringify(
    history.map((op) => (op.returnAt === Number.POSITIVE_INFINITY ? { ...op, returnAt: null } : op)),
    null,
    1,
  );
}

/** The inverse of historyToJson; the result is validated (a HistoryError names the bad operation). */
export function historyFromJson<I, O>(json: string): Operation<I, O>[] {
  const parsed: unknown = JSON.parse(json);
  if (!Array.isArray(parsed)) throw new HistoryError("a history must be a JSON array of operations.", -1);
  const history = parsed.map((op: unknown, index): Operation<I, O> => {
    if (typeof op !== "object" || op === null) {
      throw new HistoryError(`operation ${index}: must be an object, got ${JSON.stringify(op)}.`, index);
    }
    const { returnAt } = op as { returnAt?: unknown };
    return {
      ...(op as Operation<I, O>),
      returnAt: returnAt === null ? Number.POSITIVE_INFINITY : (returnAt as number),
    };
  });
  validateHistory(history);
  return history;
}
