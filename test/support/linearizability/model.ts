/**
 * A sequential specification the checker tests a history against (porcupine's Model, typed).
 *
 * Models are pure: `step` never mutates the state it is given, it returns the next one. The checker keeps
 * earlier states on its backtracking stack and in its cache, so a mutated state would corrupt the search.
 */
import type { Operation, Unknown } from "./history.js";

export type StepResult<State> =
  | { readonly ok: true; readonly next: State }
  /** `why` is one sentence for the failure report ("get returned "b" but the value is "a""). */
  | { readonly ok: false; readonly why?: string };

/** A sub-history that can be checked on its own, with a name for reports (`key "a"`). */
export interface Partition<State, Input, Output> {
  readonly name: string;
  readonly operations: readonly Operation<Input, Output>[];
  /**
   * This part's initial state, when it differs from `Model.init` (e.g. a finer state for a part whose
   * operations never observe some detail: tracking it would only multiply the states to search).
   */
  init?(): State;
}

export interface Model<State, Input, Output> {
  init(): State;
  /**
   * Can `input` take effect in `state` and answer `output`? `output` is UNKNOWN for an operation whose
   * outcome the client never learned: the model must accept it from any state and return the state it
   * would leave if it did take effect (the checker covers "never took effect" by itself).
   */
  step(state: State, input: Input, output: Output | Unknown): StepResult<State>;
  /**
   * Split a history into parts that are linearizable together if and only if each one is (P-compositionality,
   * Herlihy & Wing 1990 §3.3): per key for a key-value store. Without it, the whole history is one part.
   */
  partition?(history: readonly Operation<Input, Output>[]): Partition<State, Input, Output>[];
  equal(a: State, b: State): boolean;
  /** 32-bit hash; equal states must hash the same. */
  hash(state: State): number;
  /**
   * True for operations that never change the state (reads). A read whose outcome is unknown constrains
   * nothing, so the checker drops it instead of searching over where to put it.
   */
  isReadOnly?(input: Input): boolean;
  /**
   * Optional symmetry for operations with an unknown outcome: two such operations with the same class name
   * must have the same effect from every state (`step(s, a, UNKNOWN)` equals `step(s, b, UNKNOWN)`). The
   * checker then only tries the earliest-invoked unplaced member of a class, instead of every subset.
   */
  effectClass?(input: Input): string | undefined;
  /** One sentence naming the field if an operation cannot be interpreted (e.g. output kind ≠ input kind). */
  validate?(operation: Operation<Input, Output>): string | undefined;
  describeOperation(input: Input, output: Output | Unknown): string;
  describeState(state: State): string;
}

/** FNV-1a over a string's UTF-16 code units: a cheap 32-bit hash for model states. */
export function hashString(text: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
