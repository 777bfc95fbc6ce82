import { describe, expect, it } from "vitest";
import { runSeed } from "./cluster-sim.js";

describe("Raft cluster simulator", () => {
  it("is deterministic: one seed, one run (trace and counters identical)", () => {
    const a = runSeed({ seed: 4242, members: 5 });
    const b = runSeed({ seed: 4242, members: 5 });
    expect(a.trace).toEqual(b.trace);
    expect(a.stats).toEqual(b.stats);
    expect(runSeed({ seed: 4243, members: 5 }).trace).not.toEqual(a.trace);
  });

  it("finds no violation over 20 seeds of 3- and 5-member clusters under faults, and makes progress", () => {
    for (let seed = 1; seed <= 20; seed++) {
      const res = runSeed({ seed, members: seed % 2 === 0 ? 5 : 3 });
      expect(res.violations, `seed ${seed}`).toEqual([]);
      // The run is not vacuous: faults happened and clients got answers.
      expect((res.stats.crashes ?? 0) + (res.stats.partitions ?? 0)).toBeGreaterThan(0);
      expect(res.stats.writesAcked).toBeGreaterThan(0);
      expect(res.stats.readsServed).toBeGreaterThan(0);
    }
  });
});
