/**
 * The Wing & Gong search with Lowe's memoisation, over one partition (the algorithm porcupine implements;
 * Lowe, "Testing for linearizability", 2017, §3–4).
 *
 * Every operation contributes a call entry and a return entry; all entries sit in one doubly linked list in
 * time order. Walking the list from the front, a call entry is a candidate to linearize next: if the model
 * accepts it, both its entries are unlinked ("lifted"), the previous state is pushed, and the walk restarts
 * at the front. Reaching a return entry means the operation it closes had to be linearized by now and
 * was not, so the last choice is undone (its entries are relinked in place, dancing-links style) and the walk
 * goes on with the entry after it. The list empties when every operation is placed; an empty stack at a
 * return entry means no order exists.
 *
 * The cache holds every (set of placed operations, state) already reached: two paths arriving at the same
 * pair have the same futures, so the second is pruned. This is what makes the search practical.
 *
 * An operation with an unknown outcome has its return entry at +Infinity, after every other entry, so the
 * search may place it anywhere after its call — including after every completed operation, which is
 * indistinguishable from it never having taken effect.
 */
import { Bitset } from "./bitset.js";
import type { Operation } from "./history.js";
import type { Model } from "./model.js";

export type Verdict = "ok" | "illegal" | "unknown";

export interface SearchOutcome {
  readonly result: Verdict;
  /** Operation indexes: a complete linearization when ok, else the longest prefix the search reached. */
  readonly linearization: readonly number[];
  /** Loop iterations, a measure of how hard the partition was. */
  readonly steps: number;
}

export interface Deadline {
  passed(): boolean;
}

interface Entry {
  readonly id: number;
  /** For a call entry, its return entry; null for a return entry. */
  readonly match: Entry | null;
  prev: Entry | null;
  next: Entry | null;
}

interface Frame<State> {
  readonly call: Entry;
  /** The state before this operation took effect. */
  readonly state: State;
}

/** How often (in loop iterations) the deadline is consulted; reading a clock every step would dominate. */
const DEADLINE_EVERY = 128;

export function searchPartition<State, Input, Output>(
  model: Model<State, Input, Output>,
  operations: readonly Operation<Input, Output>[],
  deadline: Deadline,
): SearchOutcome {
  const head = linkEntries(operations);
  const placed = Bitset.ofSize(operations.length);
  const seen = new Map<number, { placed: Bitset; state: State }[]>();
  const stack: Frame<State>[] = [];
  let longest: readonly number[] = [];
  const keepLongest = () => {
    if (stack.length > longest.length) longest = stack.map((frame) => frame.call.id);
  };

  let state = model.init();
  let entry = head.next;
  let steps = 0;
  while (head.next !== null) {
    steps++;
    if (steps % DEADLINE_EVERY === 0 && deadline.passed()) {
      keepLongest();
      return { result: "unknown", linearization: longest, steps };
    }
    // The list always ends with a return entry, so the walk meets one before running off the end.
    if (entry === null) throw new Error("linearizability search: entry list ended without a return entry");
    if (entry.match !== null) {
      const op = operations[entry.id]!;
      const step = model.step(state, op.input, op.output);
      if (step.ok) {
        placed.set(entry.id);
        if (remember(seen, model, placed, step.next)) {
          stack.push({ call: entry, state });
          state = step.next;
          lift(entry);
          entry = head.next;
          continue;
        }
        placed.clear(entry.id);
      }
      entry = entry.next;
    } else {
      // Only a dead end can shorten the stack, so this is the moment to keep the longest prefix.
      keepLongest();
      const frame = stack.pop();
      if (frame === undefined) return { result: "illegal", linearization: longest, steps };
      placed.clear(frame.call.id);
      state = frame.state;
      unlift(frame.call);
      entry = frame.call.next;
    }
  }
  return { result: "ok", linearization: stack.map((frame) => frame.call.id), steps };
}

/** Adds (placed, state) to the cache; false if it was already there (the path is pruned). */
function remember<State>(
  seen: Map<number, { placed: Bitset; state: State }[]>,
  model: Model<State, unknown, unknown>,
  placed: Bitset,
  state: State,
): boolean {
  const key = (placed.hash() ^ model.hash(state)) >>> 0;
  let bucket = seen.get(key);
  if (bucket === undefined) {
    bucket = [];
    seen.set(key, bucket);
  } else if (bucket.some((e) => e.placed.equals(placed) && model.equal(e.state, state))) {
    return false;
  }
  bucket.push({ placed: placed.clone(), state });
  return true;
}

/** Builds the time-ordered entry list behind a sentinel head; calls sort before returns at equal times. */
function linkEntries<I, O>(operations: readonly Operation<I, O>[]): Entry {
  const events: { id: number; time: number; isCall: boolean }[] = [];
  operations.forEach((op, id) => {
    events.push({ id, time: op.callAt, isCall: true });
    events.push({ id, time: op.returnAt, isCall: false });
  });
  // Closed intervals: at equal times a call goes first, so the two operations count as concurrent.
  // (Compared rather than subtracted: Infinity - Infinity is NaN for two pending returns.)
  events.sort((a, b) => {
    if (a.time === b.time) return a.isCall === b.isCall ? a.id - b.id : a.isCall ? -1 : 1;
    return a.time < b.time ? -1 : 1;
  });

  const head: Entry = { id: -1, match: null, prev: null, next: null };
  const returns = new Map<number, Entry>();
  // Built back to front so every call entry can point at its (later) return entry.
  let next: Entry | null = null;
  for (let i = events.length - 1; i >= 0; i--) {
    const event = events[i]!;
    const match = event.isCall ? returns.get(event.id)! : null;
    const entry: Entry = { id: event.id, match, prev: null, next };
    if (!event.isCall) returns.set(event.id, entry);
    if (next !== null) next.prev = entry;
    next = entry;
  }
  head.next = next;
  if (next !== null) next.prev = head;
  return head;
}

/** Unlinks a call entry and its return entry. */
function lift(call: Entry): void {
  call.prev!.next = call.next;
  call.next!.prev = call.prev;
  const ret = call.match!;
  ret.prev!.next = ret.next;
  if (ret.next !== null) ret.next.prev = ret.prev;
}

/** Relinks what `lift` removed; valid because lifts are undone in reverse order. */
function unlift(call: Entry): void {
  const ret = call.match!;
  ret.prev!.next = ret;
  if (ret.next !== null) ret.next.prev = ret;
  call.prev!.next = call;
  call.next!.prev = call;
}
