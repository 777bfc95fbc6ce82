/**
 * Histories from a simulated store that is linearizable by construction: every operation gets a random
 * interval and a random linearization point inside it, the points are applied in order to a real map, and
 * the outputs are what the map answered. So the checker must accept every one of them.
 *
 * Clients run one operation at a time. Some operations time out: the client stops waiting and moves on,
 * and the operation either takes effect later (possibly after the client gave up) or never does (as a
 * write lost with a killed leader).
 *
 * Every written value is unique, which is what lets `injectStaleRead` make a history certainly illegal.
 */
import type { KvInput, KvOperation, KvOutput } from "../support/linearizability/index.js";
import { UNKNOWN } from "../support/linearizability/index.js";
import { Rng } from "./rng.js";

export interface RandomHistoryOptions {
  readonly seed: number;
  readonly clients: number;
  readonly operations: number;
  readonly keys: number;
  /** Share of operations whose outcome the client never learns. */
  readonly pendingRate?: number;
  /** Share of those that take effect anyway, at a random later time (default 0.5). */
  readonly pendingApplied?: number;
  /** Whether gets report versions and some CAS compare versions (default true). */
  readonly versions?: boolean;
}

interface Draft {
  readonly client: number;
  readonly input: KvInput;
  readonly callAt: number;
  /** When it takes effect; undefined if it never does. */
  readonly effectAt: number | undefined;
  /** Infinity when the client never learns the outcome. */
  readonly returnAt: number;
  output?: KvOutput;
}

const CLIENT_TIMEOUT_MS = 5;

/** The simulated store's own record of a key (independent of the checker's model). */
interface KeyState {
  readonly value: string | null;
  readonly version: number;
}

export function randomHistory(options: RandomHistoryOptions): KvOperation[] {
  const rng = new Rng(options.seed);
  const pendingRate = options.pendingRate ?? 0.03;
  const versions = options.versions ?? true;
  const pendingApplied = options.pendingApplied ?? 0.5;
  const keys = Array.from({ length: options.keys }, (_, i) => `k${i}`);
  const writtenPerKey = new Map<string, string[]>(keys.map((k) => [k, []]));
  const freeAt = Array.from({ length: options.clients }, () => rng.next());
  const drafts: Draft[] = [];

  for (let n = 0; n < options.operations; n++) {
    // The client that is free first goes next, so operations interleave as they would in real time.
    const client = freeAt.indexOf(Math.min(...freeAt));
    const callAt = freeAt[client]! + rng.next() * 0.5;
    const key = rng.pick(keys);
    const input = randomInput(rng, key, `c${client}-${n}`, writtenPerKey.get(key)!, versions);
    if (input.op === "put" || input.op === "cas") writtenPerKey.get(key)!.push(input.value);

    if (rng.chance(pendingRate)) {
      // Gave up after a timeout; the request may still be applied, even long after.
      const effectAt = rng.chance(pendingApplied) ? callAt + rng.next() * 4 * CLIENT_TIMEOUT_MS : undefined;
      drafts.push({ client, input, callAt, effectAt, returnAt: Number.POSITIVE_INFINITY });
      freeAt[client] = callAt + CLIENT_TIMEOUT_MS;
    } else {
      const effectAt = callAt + rng.next() * 2;
      const returnAt = effectAt + rng.next() * 2;
      drafts.push({ client, input, callAt, effectAt, returnAt });
      freeAt[client] = returnAt;
    }
  }

  const store = new Map<string, KeyState>();
  const applied = drafts.filter((d) => d.effectAt !== undefined).sort((a, b) => a.effectAt! - b.effectAt!);
  for (const draft of applied) {
    const before = store.get(draft.input.key) ?? { value: null, version: 0 };
    const [after, output] = apply(before, draft.input, rng, versions);
    store.set(draft.input.key, after);
    draft.output = output;
  }

  return drafts.map((d) => ({
    client: `c${d.client}`,
    input: d.input,
    callAt: d.callAt,
    output: d.returnAt === Number.POSITIVE_INFINITY ? UNKNOWN : d.output!,
    returnAt: d.returnAt,
  }));
}

function randomInput(
  rng: Rng,
  key: string,
  fresh: string,
  written: readonly string[],
  versions: boolean,
): KvInput {
  const roll = rng.next();
  if (roll < 0.4) return { op: "get", key };
  if (roll < 0.72) return { op: "put", key, value: fresh };
  if (roll < 0.8) return { op: "delete", key };
  // CAS against a recent value (often the current one, so many succeed), absence, or a small version.
  const expect =
    versions && rng.chance(0.25)
      ? { version: rng.int(3) }
      : {
          value:
            written.length === 0 || rng.chance(0.1)
              ? null
              : written[written.length - 1 - rng.int(Math.min(3, written.length))]!,
        };
  return { op: "cas", key, expect, value: fresh };
}

function apply(state: KeyState, input: KvInput, rng: Rng, versions: boolean): [KeyState, KvOutput] {
  switch (input.op) {
    case "get":
      return [
        state,
        versions && rng.chance(0.5)
          ? { op: "get", value: state.value, version: state.version }
          : { op: "get", value: state.value },
      ];
    case "put":
      return [
        { value: input.value, version: state.version + 1 },
        { op: "put", prev: state.value },
      ];
    case "delete":
      return [
        { value: null, version: 0 },
        { op: "delete", deleted: state.value === null ? 0 : 1 },
      ];
    case "cas": {
      const holds =
        "version" in input.expect
          ? state.version === input.expect.version
          : state.value === input.expect.value;
      return holds
        ? [
            { value: input.value, version: state.version + 1 },
            { op: "cas", ok: true },
          ]
        : [state, { op: "cas", ok: false }];
    }
  }
}

const changesValue = (op: KvOperation): boolean =>
  op.returnAt !== Number.POSITIVE_INFINITY &&
  (op.input.op === "put" ||
    op.input.op === "delete" ||
    (op.input.op === "cas" && (op.output as { ok: boolean }).ok));

const writtenValue = (op: KvOperation): string | undefined =>
  changesValue(op) && op.input.op !== "delete" && op.input.op !== "get" ? op.input.value : undefined;

/**
 * Makes one completed get return a value that was certainly overwritten before it started: a write P of
 * value v completed, then a write W to the same key started after P returned and completed before the
 * get started. Values are unique, so no order puts v back before the get: the history becomes illegal.
 * Returns the index of the changed get, or undefined if the history has no such triple.
 */
export function injectStaleRead(history: KvOperation[], rng: Rng): number | undefined {
  const gets = history
    .map((op, i) => [op, i] as const)
    .filter(([op]) => op.input.op === "get" && op.returnAt !== Number.POSITIVE_INFINITY);
  for (let tries = 0; tries < gets.length * 2; tries++) {
    const [g, gi] = rng.pick(gets);
    const key = g.input.key;
    const overwrites = history.filter((w) => w.input.key === key && changesValue(w) && w.returnAt < g.callAt);
    for (const w of overwrites) {
      const p = history.find(
        (p) => p.input.key === key && writtenValue(p) !== undefined && p.returnAt < w.callAt,
      );
      if (p === undefined) continue;
      history[gi] = { ...g, output: { op: "get", value: writtenValue(p)! } };
      return gi;
    }
  }
  return undefined;
}

/** Makes one completed get return a value no operation ever wrote. */
export function injectPhantomRead(history: KvOperation[], rng: Rng): number {
  const gets = history.flatMap((op, i) =>
    op.input.op === "get" && op.returnAt !== Number.POSITIVE_INFINITY ? [i] : [],
  );
  const gi = rng.pick(gets);
  history[gi] = { ...history[gi]!, output: { op: "get", value: "never-written" } };
  return gi;
}
