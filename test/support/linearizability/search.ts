/**
 * The Wing & Gong search with Lowe's memoisation, over one partition (the algorithm porcupine implements;
 * Lowe, "Testing for linearizability", 2017, §3–4).
 *
 * Every operation contributes a call entry and a return entry; all entries sit in one doubly linked list in
 * time order. Walking the list from the front, a call entry is a candidate to linearize next: if the model
 * accepts it, both its entries are unlinked ("lifted"), the previous state is pushed, and the walk restarts
 * at the front. Reaching a return entry means the operation it closes had to be linearized by now and
 * was not, so the last choice is undone (its entries are relinked in place, dancing-links style) and the walk
 * goes on with the entry after it. The search succeeds when every completed operation is placed (see
 * below for the others); an empty stack at a return entry means no order exists.
 *
 * The cache holds every (set of placed operations, state) already reached: two paths arriving at the same
 * pair have the same futures, so the second is pruned. This is what makes the search practical.
 *
 * An operation with an unknown outcome has its return entry at +Infinity, after every other entry, so the
 * search may place it anywhere after its call — including after every completed operation, which is
 * indistinguishable from it never having taken effect.
 *
 * Such operations stay candidates from their call to the end, so k of them outstanding could be placed
 * in up to 2^k combinations. The model may name an effect class for them (`Model.effectClass`): members
 * of one class have the same effect in every state, so any linearization that places a later-invoked
 * member while an earlier-invoked one is still unplaced stays valid with the two swapped (the earlier one
 * is available whenever the later one is, and both may end at infinity). Only the earliest unplaced member
 * of each class is therefore ever tried, and the placed members of a class are always a prefix of it in
 * call order: k + 1 combinations instead of 2^k.
 *
 * And the search ends as soon as every completed operation is placed: the unknown-outcome ones left over
 * go at the end. Both rules are our additions to porcupine's algorithm. Measured on generated histories
 * where many timed-out writes never took effect (what a leader kill leaves behind), they turn searches
 * that ran out of time into ones of about a second; where most of them did take effect they change
 * little. (We also tried skipping placements that leave the state unchanged, and trying completed
 * operations first: both sound, both slower — an eagerly placed no-op leaves the window, a skipped one
 * is tried again at every step.)
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
  init: State,
  deadline: Deadline,
): SearchOutcome {
  const head = linkEntries(operations);
  const classes = effectClasses(model, operations);
  const placed = Bitset.ofSize(operations.length);
  const seen = new Map<number, { placed: Bitset; state: State }[]>();
  const stack: Frame<State>[] = [];
  let longest: readonly number[] = [];
  const keepLongest = () => {
    if (stack.length > longest.length) longest = stack.map((frame) => frame.call.id);
  };

  // Done once every completed operation is placed: unplaced unknown-outcome ones go at the end.
  const isOpen = operations.map((op) => op.returnAt === Number.POSITIVE_INFINITY);
  const completedCount = isOpen.filter((open) => !open).length;
  let completedPlaced = 0;

  let state = init;
  let entry = head.next;
  let steps = 0;
  while (completedPlaced < completedCount) {
    steps++;
    if (steps % DEADLINE_EVERY === 0 && deadline.passed()) {
      keepLongest();
      return { result: "unknown", linearization: longest, steps };
    }
    // The list always ends with a return entry, so the walk meets one before running off the end.
    if (entry === null) throw new Error("linearizability search: entry list ended without a return entry");
    if (entry.match !== null) {
      const cls = classes.of[entry.id];
      if (cls !== undefined && cls.members[cls.placed] !== entry.id) {
        // A member of an effect class that is not its earliest unplaced one: covered by that one.
        entry = entry.next;
        continue;
      }
      const op = operations[entry.id]!;
      const step = model.step(state, op.input, op.output);
      if (step.ok) {
        placed.set(entry.id);
        if (remember(seen, model, placed, step.next)) {
          stack.push({ call: entry, state });
          if (cls !== undefined) cls.placed++;
          if (!isOpen[entry.id]) completedPlaced++;
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
      const cls = classes.of[frame.call.id];
      if (cls !== undefined) cls.placed--;
      if (!isOpen[frame.call.id]) completedPlaced--;
      state = frame.state;
      unlift(frame.call);
      entry = frame.call.next;
    }
  }
  const order = stack.map((frame) => frame.call.id);
  const inOrder = new Set(order);
  // The unknown-outcome operations left over are valid last, in any order: the model accepts them anywhere.
  operations.forEach((_, id) => {
    if (!inOrder.has(id)) order.push(id);
  });
  return { result: "ok", linearization: order, steps };
}

interface EffectClass {
  /** Operation ids in call order (ties by id, as in the entry list). */
  readonly members: readonly number[];
  /** How many members are placed: always the first `placed` of them. */
  placed: number;
}

/** Groups unknown-outcome operations by the model's effect class; `of[id]` is undefined when not grouped. */
function effectClasses<State, Input, Output>(
  model: Model<State, Input, Output>,
  operations: readonly Operation<Input, Output>[],
): { of: (EffectClass | undefined)[] } {
  const of: (EffectClass | undefined)[] = [];
  if (model.effectClass === undefined) return { of };
  const byName = new Map<string, { members: number[]; placed: number }>();
  operations.forEach((op, id) => {
    if (op.returnAt !== Number.POSITIVE_INFINITY) return;
    const name = model.effectClass!(op.input);
    if (name === undefined) return;
    let cls = byName.get(name);
    if (cls === undefined) {
      cls = { members: [], placed: 0 };
      byName.set(name, cls);
    }
    cls.members.push(id);
    of[id] = cls;
  });
  for (const cls of byName.values()) {
    cls.members.sort((a, b) => operations[a]!.callAt - operations[b]!.callAt || a - b);
  }
  return { of };
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
