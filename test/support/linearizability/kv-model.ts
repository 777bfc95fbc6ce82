/**
 * The sequential specification of the zsha KV store as clients see one key (etcd v3 semantics): a register
 * holding a value or nothing, with the key's version (1 at creation, +1 per write, back to 0 on delete).
 * Operations touch one key each, so histories are checked per key.
 *
 * A key whose history never observes a version (no get reporting one, no CAS comparing one) is checked
 * without tracking it: otherwise two orders that differ only in how many unknown-outcome writes took
 * effect would count as different states, and the search would have to tell them apart for nothing.
 *
 * Likewise a write with an unknown outcome whose value no operation of its key ever reads (no get returns
 * it, no put reports it as previous, no CAS expects it) is marked `unread`: its effect is "the key holds
 * some value nobody saw", the same for all such writes, so they form one effect class and the checker
 * tries them in call order instead of in every combination. Timed-out writes that never took effect are
 * exactly these, and a run with leader kills produces many.
 */
import type { Operation, Unknown } from "./history.js";
import { isUnknown } from "./history.js";
import { hashString, type Model, type Partition } from "./model.js";

/** What a CAS compares: the current value (null = key absent) or the current version (0 = absent). */
export type CasExpect = { readonly value: string | null } | { readonly version: number };

/** `unread` is set by the partition function, never by a recorder (see the module comment). */
export type KvInput =
  | { readonly op: "put"; readonly key: string; readonly value: string; readonly unread?: true }
  | { readonly op: "get"; readonly key: string }
  | { readonly op: "delete"; readonly key: string }
  /** A Txn: if the compare holds, put `value`; answers whether it did. */
  | {
      readonly op: "cas";
      readonly key: string;
      readonly expect: CasExpect;
      readonly value: string;
      readonly unread?: true;
    };

/** Optional fields are checked only when the client recorded them. */
export type KvOutput =
  | { readonly op: "put"; readonly prev?: string | null }
  | { readonly op: "get"; readonly value: string | null; readonly version?: number }
  | { readonly op: "delete"; readonly deleted?: number }
  | { readonly op: "cas"; readonly ok: boolean };

/** The value of a key after an `unread` write: equal to no value any operation observed. */
export interface UnreadValue {
  readonly unread: true;
}

const UNREAD: UnreadValue = Object.freeze({ unread: true as const });

export interface KeyState {
  readonly value: string | null | UnreadValue;
  /** null when this key's history never observes versions, so they are not tracked. */
  readonly version: number | null;
}

export type KvOperation = Operation<KvInput, KvOutput>;

const ABSENT: KeyState = Object.freeze({ value: null, version: 0 });
const ABSENT_UNTRACKED: KeyState = Object.freeze({ value: null, version: null });

const written = (state: KeyState, input: { value: string; unread?: true }): KeyState => ({
  value: input.unread ? UNREAD : input.value,
  version: state.version === null ? null : state.version + 1,
});

/** Values some operation of the key observes: only writes of other values can be marked unread. */
function observedValues(operations: readonly KvOperation[]): Set<string> {
  const seen = new Set<string>();
  for (const { input, output } of operations) {
    if (input.op === "cas" && "value" in input.expect && input.expect.value !== null)
      seen.add(input.expect.value);
    if (isUnknown(output)) continue;
    if (output.op === "get" && output.value !== null) seen.add(output.value);
    if (output.op === "put" && output.prev !== undefined && output.prev !== null) seen.add(output.prev);
  }
  return seen;
}

function markUnread(operations: readonly KvOperation[]): KvOperation[] {
  const observed = observedValues(operations);
  return operations.map((op) =>
    isUnknown(op.output) && (op.input.op === "put" || op.input.op === "cas") && !observed.has(op.input.value)
      ? { ...op, input: { ...op.input, unread: true } }
      : op,
  );
}

const observesVersion = (op: KvOperation): boolean =>
  (op.input.op === "cas" && "version" in op.input.expect) ||
  (!isUnknown(op.output) && op.output.op === "get" && op.output.version !== undefined);

function casHolds(state: KeyState, expect: CasExpect): boolean {
  return "version" in expect ? state.version === expect.version : state.value === expect.value;
}

export const kvModel: Model<KeyState, KvInput, KvOutput> = {
  init: () => ABSENT,

  step(state, input, output) {
    const known = !isUnknown(output);
    switch (input.op) {
      case "put": {
        if (known && output.op === "put" && output.prev !== undefined && output.prev !== state.value) {
          return {
            ok: false,
            why: `put saw previous value ${show(output.prev)} but the value is ${show(state.value)}`,
          };
        }
        return { ok: true, next: written(state, input) };
      }
      case "get": {
        if (known && output.op === "get") {
          if (output.value !== state.value) {
            return {
              ok: false,
              why: `get returned ${show(output.value)} but the value is ${show(state.value)}`,
            };
          }
          if (output.version !== undefined && output.version !== state.version) {
            return {
              ok: false,
              why: `get returned version ${output.version} but the version is ${state.version}`,
            };
          }
        }
        return { ok: true, next: state };
      }
      case "delete": {
        const deleted = state.value === null ? 0 : 1;
        if (known && output.op === "delete" && output.deleted !== undefined && output.deleted !== deleted) {
          return { ok: false, why: `delete reported ${output.deleted} deleted but ${deleted} key existed` };
        }
        return { ok: true, next: state.version === null ? ABSENT_UNTRACKED : ABSENT };
      }
      case "cas": {
        const holds = casHolds(state, input.expect);
        if (known && output.op === "cas" && output.ok !== holds) {
          return {
            ok: false,
            why: `cas ${output.ok ? "succeeded" : "failed"} but the compare ${holds ? "holds" : "does not hold"} on ${describeKeyState(state)}`,
          };
        }
        // Unknown outcome: if it took effect here, the compare decided it — a Txn is deterministic.
        return { ok: true, next: holds ? written(state, input) : state };
      }
    }
  },

  partition(history) {
    const byKey = new Map<string, KvOperation[]>();
    for (const op of history) {
      const ops = byKey.get(op.input.key);
      if (ops === undefined) byKey.set(op.input.key, [op]);
      else ops.push(op);
    }
    return [...byKey].map(
      ([key, operations]): Partition<KeyState, KvInput, KvOutput> => ({
        name: `key ${show(key)}`,
        operations: markUnread(operations),
        init: operations.some(observesVersion) ? () => ABSENT : () => ABSENT_UNTRACKED,
      }),
    );
  },

  equal: (a, b) => a.value === b.value && a.version === b.version,
  hash: (s) =>
    (hashString(s.value === null ? "" : typeof s.value === "string" ? s.value : "\u0000unread") ^
      Math.imul((s.version ?? -1) + (s.value === null ? 0x9e3779b9 : 0), 0x85ebca6b)) >>>
    0,
  isReadOnly: (input) => input.op === "get",
  effectClass(input) {
    if (input.op === "delete") return "delete";
    if (input.op === "put" && input.unread) return "put";
    if (input.op === "cas" && input.unread) return `cas ${JSON.stringify(input.expect)}`;
    return undefined;
  },

  validate(op) {
    const input = op.input as Partial<KvInput> | undefined;
    if (typeof input !== "object" || input === null) return "input must be an object.";
    if (!["put", "get", "delete", "cas"].includes(input.op as string)) {
      return `input.op must be put, get, delete or cas, got ${String(input.op)}.`;
    }
    if (typeof input.key !== "string") return "input.key must be a string.";
    if ((input.op === "put" || input.op === "cas") && typeof input.value !== "string") {
      return `input.value must be a string for ${input.op}.`;
    }
    if (input.op === "cas") {
      const expect = input.expect as Partial<{ value: unknown; version: unknown }> | undefined;
      const byValue =
        expect !== undefined &&
        "value" in expect &&
        (expect.value === null || typeof expect.value === "string");
      const byVersion = expect !== undefined && "version" in expect && Number.isInteger(expect.version);
      if (byValue === byVersion)
        return "input.expect must be either { value: string | null } or { version: integer }.";
    }
    if (!isUnknown(op.output)) {
      const output = op.output as { op?: unknown } | null;
      if (typeof output !== "object" || output === null || output.op !== input.op) {
        return `output.op must be ${input.op} to match the input (or the output UNKNOWN).`;
      }
      if (input.op === "get" && !("value" in output)) return "output.value must be a string or null for get.";
      if (input.op === "cas" && typeof (output as { ok?: unknown }).ok !== "boolean") {
        return "output.ok must be a boolean for cas.";
      }
    }
    return undefined;
  },

  describeOperation(input, output) {
    return `${describeInput(input)} -> ${describeOutput(output)}`;
  },
  describeState: describeKeyState,
};

export function describeKeyState(state: KeyState): string {
  if (state.value === null) return "absent";
  return state.version === null ? show(state.value) : `${show(state.value)} (version ${state.version})`;
}

function describeInput(input: KvInput): string {
  switch (input.op) {
    case "put":
      return `put(${show(input.key)}, ${show(input.value)}${input.unread ? " never read" : ""})`;
    case "get":
      return `get(${show(input.key)})`;
    case "delete":
      return `delete(${show(input.key)})`;
    case "cas": {
      const expect = "version" in input.expect ? `version ${input.expect.version}` : show(input.expect.value);
      return `cas(${show(input.key)}, ${expect} -> ${show(input.value)}${input.unread ? " never read" : ""})`;
    }
  }
}

function describeOutput(output: KvOutput | Unknown): string {
  if (isUnknown(output)) return "?";
  switch (output.op) {
    case "put":
      return output.prev === undefined ? "ok" : `ok, prev ${show(output.prev)}`;
    case "get":
      return output.version === undefined ? show(output.value) : `${show(output.value)} v${output.version}`;
    case "delete":
      return output.deleted === undefined ? "ok" : `deleted ${output.deleted}`;
    case "cas":
      return output.ok ? "ok" : "failed";
  }
}

/** Quoted and cut short: values in tests can be hundreds of bytes. */
function show(value: string | null | UnreadValue): string {
  if (value === null) return "null";
  if (typeof value !== "string") return "<a value never read>";
  return JSON.stringify(value.length > 24 ? `${value.slice(0, 21)}...` : value);
}
