// The healthy path: JSON lines land in <dir>/agent.log and the file is rotated by size into dated names.

import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createAgentLog, rotatedName } from "../../src/log/index.js";

const dir = mkdtempSync(join(tmpdir(), "zsha-logrot-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("agent log files", () => {
  it("names rotated files by UTC day and sequence", () => {
    expect(rotatedName(null)).toBe("agent.log");
    expect(rotatedName(Date.UTC(2026, 0, 5, 23, 59), 3)).toBe("agent-20260105-3.log");
  });

  it("writes JSON lines and rotates by size", async () => {
    const log = createAgentLog({ dir, size: "1K", level: "debug" });
    for (let i = 0; i < 40; i++) {
      log.logger.debug({ i, pad: "y".repeat(60) }, "line");
      // Let each batch reach the file so the size check sees it grow.
      await log.idle();
    }
    await log.close();
    expect(log.stats()).toMatchObject({ written: 40, dropped: 0, failures: 0 });
    const files = readdirSync(dir).sort();
    const rotated = files.filter((f) => /^agent-\d{8}-\d+\.log$/.test(f));
    expect(rotated.length, files.join(",")).toBeGreaterThan(0);
    const all = files
      .filter((f) => f.endsWith(".log"))
      .flatMap((f) => readFileSync(join(dir, f), "utf8").split("\n").filter(Boolean));
    const ids = all
      .map((l) => (JSON.parse(l) as { i: number; msg: string; pid: number }).i)
      .sort((a, b) => a - b);
    expect(ids).toEqual(Array.from({ length: 40 }, (_, i) => i));
  });
});
