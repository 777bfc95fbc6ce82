// A handful of seeds of the whole-stack HA simulator in the ordinary test run (CI runs hundreds through
// `npm run sim:ha`), and the property every failing seed relies on: the same seed replays the same run.

import { describe, expect, it } from "vitest";
import { DOMAIN, domainXml, runHaSeed } from "./ha-sim.js";

describe("HA simulation (real Raft + KV + HA agents on simulated hosts, network and clocks)", () => {
  it("is deterministic: one seed, one trace", async () => {
    const a = await runHaSeed({ seed: 5, members: 3, traceSize: 100_000 });
    const b = await runHaSeed({ seed: 5, members: 3, traceSize: 100_000 });
    expect(a.trace.length).toBeGreaterThan(50);
    expect(b.trace).toEqual(a.trace);
    expect(b.stats).toEqual(a.stats);
  });

  it.each([
    { seed: 1, members: 3 as const },
    { seed: 2, members: 5 as const },
    { seed: 4, members: 5 as const },
    { seed: 6, members: 3 as const },
  ])(
    "faults, seed $seed ($members members): one writer at most, and the MN-VM runs again after healing",
    async (o) => {
      const r = await runHaSeed({ ...o, schedule: "faults" });
      expect(r.violations).toEqual([]);
      // The schedule did hit the owner: it moved at least once.
      expect(r.stats.ownerChanges).toBeGreaterThan(0);
      expect(r.trace.some((l) => l.includes("liveness: MN-VM runs on"))).toBe(true);
    },
  );

  it.each([
    { seed: 3, members: 3 as const },
    { seed: 7, members: 5 as const },
  ])("storm only, seed $seed ($members members): the MN-VM does not move", async (o) => {
    const r = await runHaSeed({ ...o, schedule: "storm" });
    expect(r.violations).toEqual([]);
    expect(r.stats.storms).toBe(1);
    expect(r.stats.ownerChanges).toBe(0);
  });
});

describe("HA simulation checks", () => {
  it("reports two writers when a second copy starts behind the HA's back", async () => {
    const r = await runHaSeed({
      seed: 1,
      members: 3,
      schedule: "storm",
      onStarted: (sim) => {
        const other = sim.nodes.find((n) => n.name !== sim.world.writersOf(DOMAIN)[0])!;
        const h = sim.world.host(other.name);
        void h
          .define(domainXml(new TextEncoder().encode('{"MemorySizeInGB":8}')))
          .then(() => h.start(DOMAIN))
          .catch(() => {});
      },
    });
    expect(r.violations.some((v) => v.startsWith("two writers"))).toBe(true);
  });
});
