/**
 * The sequential specification of the zsha KV store as clients see one key (etcd v3 semantics): a register
 * holding a value or nothing, with the key's version (1 at creation, +1 per write, back to 0 on delete).
 * Operations touch one key each, so histories are checked per key.
 */
import type { Operation, Unknown } from "./history.js";
import { isUnknown } from "./history.js";
import { hashString, type Model, type Partition } from "./model.js";

/** What a CAS compares: the current value (null = key absent) or the current version (0 = absent). */
export type CasExpect = { readonly value: string | null } | { readonly version: number };

export type KvInput =
  | { readonly op: "put"; readonly key: string; readonly value: string }
  | { readonly op: "get"; readonly key: string }
  | { readonly op: "delete"; readonly key: string }
  /** A Txn: if the compare holds, put `value`; answers whether it did. */
  | { readonly op: "cas"; readonly key: string; readonly expect: CasExpect; readonly value: string };

/** Optional fields are checked only when the client recorded them. */
export type KvOutput =
  | { readonly op: "put"; readonly prev?: string | null }
  | { readonly op: "get"; readonly value: string | null; readonly version?: number }
  | { readonly op: "delete"; readonly deleted?: number }
  | { readonly op: "cas"; readonly ok: boolean };

export interface KeyState {
  readonly value: string | null;
  readonly version: number;
}

export type KvOperation = Operation<KvInput, KvOutput>;

const ABSENT: KeyState = Object.freeze({ value: null, version: 0 });

const written = (state: KeyState, value: string): KeyState => ({ value, version: state.version + 1 });

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
        return { ok: true, next: written(state, input.value) };
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
        return { ok: true, next: ABSENT };
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
        return { ok: true, next: holds ? written(state, input.value) : state };
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
      ([key, operations]): Partition<KvInput, KvOutput> => ({ name: `key ${show(key)}`, operations }),
    );
  },

  equal: (a, b) => a.value === b.value && a.version === b.version,
  hash: (s) =>
    (hashString(s.value ?? "") ^ Math.imul(s.version + (s.value === null ? 0x9e3779b9 : 0), 0x85ebca6b)) >>>
    0,
  isReadOnly: (input) => input.op === "get",

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
  return state.value === null ? "absent" : `${show(state.value)} (version ${state.version})`;
}

function describeInput(input: KvInput): string {
  switch (input.op) {
    case "put":
      return `put(${show(input.key)}, ${show(input.value)})`;
    case "get":
      return `get(${show(input.key)})`;
    case "delete":
      return `delete(${show(input.key)})`;
    case "cas": {
      const expect = "version" in input.expect ? `version ${input.expect.version}` : show(input.expect.value);
      return `cas(${show(input.key)}, ${expect} -> ${show(input.value)})`;
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
function show(value: string | null): string {
  if (value === null) return "null";
  return JSON.stringify(value.length > 24 ? `${value.slice(0, 21)}...` : value);
}
