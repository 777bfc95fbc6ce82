// Runs every scenario folder under test/ha-scenarios/ and compares its event log with expected.log exactly.
// UPDATE_GOLDEN=1 rewrites the expected logs instead; review the diff before committing it. An invariant
// violation fails the scenario either way.

import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runScenario } from "./runner.js";

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
