/**
 * Random histories from a store that is linearizable by construction (random-history.ts) must all pass;
 * the same histories with one anomaly injected must all fail. Seeds are fixed, so a failure reproduces.
 */
import { describe, expect, it } from "vitest";
import { checkOperations, kvModel } from "../support/linearizability/index.js";
import { injectPhantomRead, injectStaleRead, randomHistory } from "./random-history.js";
import { Rng } from "./rng.js";

const SEEDS = Array.from({ length: 30 }, (_, i) => 1000 + i);

/** Seeds vary the shape: versions observed or not, and how many timed-out operations took effect. */
const shape = (seed: number) => ({
  seed,
  clients: 4,
  operations: 400,
  keys: 3,
  pendingRate: 0.05 + (seed % 3) * 0.05,
  pendingApplied: (seed % 5) / 4,
  versions: seed % 2 === 0,
});

describe("random linearizable histories", () => {
  it.each(SEEDS)("seed %i: 400 operations, 4 clients, 3 keys, 5-15% outcomes unknown: ok", (seed) => {
    const history = randomHistory(shape(seed));
    expect(history.some((op) => op.returnAt === Number.POSITIVE_INFINITY)).toBe(true);
    const { result, info } = checkOperations(kvModel, history, { timeoutMs: 10_000 });
    expect(result, info.explanation).toBe("ok");
  });
});

describe("random histories with one anomaly", () => {
  it.each(SEEDS)("seed %i: a stale read is found", (seed) => {
    const history = randomHistory(shape(seed));
    const changed = injectStaleRead(history, new Rng(seed));
    expect(changed).toBeDefined();
    const { result, info } = checkOperations(kvModel, history, { timeoutMs: 10_000 });
    expect(result).toBe("illegal");
    // The report points at the key of the changed read.
    expect(info.explanation).toContain(`key "${history[changed!]!.input.key}": NOT linearizable`);
  });

  it.each(SEEDS.slice(0, 10))("seed %i: a read of a value never written is found", (seed) => {
    const history = randomHistory(shape(seed));
    injectPhantomRead(history, new Rng(seed));
    expect(checkOperations(kvModel, history, { timeoutMs: 10_000 }).result).toBe("illegal");
  });
});
