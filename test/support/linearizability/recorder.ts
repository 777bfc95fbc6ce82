/**
 * Records what concurrent clients did, in the checker's history format.
 *
 *   const handle = recorder.invoke("c1", { op: "put", key, value });
 *   try { await client.put(key, value); handle.ok({ op: "put" }); } catch { handle.fail(); }
 *
 * `fail()` is for every error after which the operation may still take effect (timeout, connection reset,
 * leader killed): the operation stays open forever (returnAt = Infinity, output UNKNOWN). `rejected()` is
 * for an error that proves nothing happened (e.g. the server refused the request as invalid): the
 * operation is left out of the history. An operation never resolved at all counts as failed.
 */
import { type ClientId, type Operation, UNKNOWN } from "./history.js";

export interface RecorderOptions {
  /** Monotonic milliseconds (default performance.now). Read once at invoke and once at the answer. */
  readonly clock?: () => number;
}

export interface CallHandle<Output> {
  /** The client received this answer. */
  ok(output: Output): void;
  /** The client got no answer it can trust: the operation may or may not take effect, at any time. */
  fail(): void;
  /** The operation certainly did not take effect; drop it from the history. */
  rejected(): void;
}

interface Slot<Input, Output> {
  readonly client: ClientId;
  readonly input: Input;
  readonly callAt: number;
  outcome:
    | { kind: "ok"; output: Output; returnAt: number }
    | { kind: "failed" }
    | { kind: "rejected" }
    | undefined;
}

export class HistoryRecorder<Input, Output> {
  private readonly clock: () => number;
  private readonly slots: Slot<Input, Output>[] = [];

  constructor(options: RecorderOptions = {}) {
    this.clock = options.clock ?? (() => performance.now());
  }

  invoke(client: ClientId, input: Input): CallHandle<Output> {
    const slot: Slot<Input, Output> = { client, input, callAt: this.clock(), outcome: undefined };
    this.slots.push(slot);
    const settle = (outcome: NonNullable<Slot<Input, Output>["outcome"]>) => {
      if (slot.outcome !== undefined) {
        throw new Error(
          `history recorder: operation of client ${String(client)} was already resolved (${slot.outcome.kind}).`,
        );
      }
      slot.outcome = outcome;
    };
    return {
      ok: (output) => {
        const returnAt = this.clock();
        if (returnAt < slot.callAt) {
          throw new Error(
            `history recorder: clock went backwards (${returnAt} < ${slot.callAt}); use a monotonic clock.`,
          );
        }
        settle({ kind: "ok", output, returnAt });
      },
      fail: () => settle({ kind: "failed" }),
      rejected: () => settle({ kind: "rejected" }),
    };
  }

  /**
   * Runs `request` as one operation of `client`: its result is the output; a throw is a failure, or a
   * rejection if `isRejection(error)` says the error proves nothing happened. The error is rethrown.
   */
  async record<T extends Output>(
    client: ClientId,
    input: Input,
    request: () => Promise<T>,
    isRejection: (error: unknown) => boolean = () => false,
  ): Promise<T> {
    const handle = this.invoke(client, input);
    let output: T;
    try {
      output = await request();
    } catch (error) {
      if (isRejection(error)) handle.rejected();
      else handle.fail();
      throw error;
    }
    handle.ok(output);
    return output;
  }

  /** The history so far; operations still in flight are included as failed (outcome unknown). */
  history(): Operation<Input, Output>[] {
    const history: Operation<Input, Output>[] = [];
    for (const slot of this.slots) {
      const { client, input, callAt, outcome } = slot;
      if (outcome?.kind === "rejected") continue;
      if (outcome?.kind === "ok") {
        history.push({ client, input, callAt, output: outcome.output, returnAt: outcome.returnAt });
      } else {
        history.push({ client, input, callAt, output: UNKNOWN, returnAt: Number.POSITIVE_INFINITY });
      }
    }
    return history;
  }
}
