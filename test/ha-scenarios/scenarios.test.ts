// Runs every scenario folder under test/ha-scenarios/ and compares its event log with expected.log exactly.
// UPDATE_GOLDEN=1 rewrites the expected logs instead; review the diff before committing it. An invariant
// violation fails the scenario either way.

import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runScenario, Scenario } from "./runner.js";

const here = dirname(fileURLToPath(import.meta.url));
const scenarios = readdirSync(here, { withFileTypes: true })
  .filter((d) => d.isDirectory() && existsSync(join(here, d.name, "cmds")))
  .map((d) => d.name)
  .sort();

describe("HA scenarios (golden event logs on the virtual clock)", () => {
  it("finds the scenario folders", () => {
    expect(scenarios.length).toBeGreaterThan(0);
  });

  for (const name of scenarios) {
    it(name, async () => {
      const dir = join(here, name);
      const { log, violations } = await runScenario(join(dir, "cmds"));
      const expectedPath = join(dir, "expected.log");
      if (process.env.UPDATE_GOLDEN === "1") writeFileSync(expectedPath, log);
      expect(violations).toEqual([]);
      expect(
        existsSync(expectedPath),
        `${expectedPath} is missing: run with UPDATE_GOLDEN=1 and review it`,
      ).toBe(true);
      expect(log).toBe(readFileSync(expectedPath, "utf8"));
    });
  }
});

describe("the scenario runner", () => {
  it("reports a second writable copy as a violation (the invariant check can fail)", async () => {
    const s = new Scenario();
    try {
      // `virsh start` by hand on n2 while n1 owns it: n2's agent destroys the unowned copy, but for a moment
      // two hosts write — exactly what the invariant check is there to see.
      const { log, violations } = await s.run("run 10s\nat 10s virsh-start n2\nrun 5s\n");
      expect(violations.length).toBeGreaterThan(0);
      expect(log).toContain("!! VIOLATION: 2 hosts run the MN-VM with write access: n1, n2");
      expect(log).toMatch(/n2 WARN ha\.unowned-copy/);
    } finally {
      s.dispose();
    }
  });

  it("rejects a malformed command with one sentence naming the line", async () => {
    const fails = async (cmds: string) => {
      const s = new Scenario();
      try {
        return await s.run(cmds).then(
          () => "ran",
          (e: Error) => e.message,
        );
      } finally {
        s.dispose();
      }
    };
    expect(await fails("run 1s\nat 2s power-off n9\n")).toBe('cmds:2: unknown node "n9" (nodes: n1, n2, n3)');
    expect(await fails("at 1s reboot n1\n")).toBe('cmds:1: unknown command "reboot"');
    expect(await fails("at soon stop\n")).toBe(
      'cmds:1: "soon" is not a duration (use 10s, 1.5s, 250ms or 2m)',
    );
    expect(await fails("run 5s\nat 2s stop\n")).toBe("cmds:2: at 2s is before the current time 5000 ms");
  });
});
