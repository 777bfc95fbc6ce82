// A full or read-only log disk must never stop or slow HA: the log folder sits on a tiny tmpfs that is
// filled to the last byte (or mounted read-only), thousands of lines are logged, and a 10 ms timer loop
// must keep firing on time while no exception escapes and every lost line is counted.
// Needs root (mount); CI runs as root.

import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAgentLog } from "../../src/log/index.js";

const root = mkdtempSync(join(tmpdir(), "zsha-log-"));
const full = join(root, "full");
const ro = join(root, "ro");
const mounted: string[] = [];

function mountTmpfs(dir: string, opts: string): void {
  execFileSync("mkdir", ["-p", dir]);
  execFileSync("mount", ["-t", "tmpfs", "-o", opts, "tmpfs", dir]);
  mounted.push(dir);
}

/** Fills the filesystem holding `dir` until the kernel says ENOSPC. */
function fill(dir: string): void {
  const chunk = Buffer.alloc(4096, 120);
  for (let i = 0; ; i++) {
    try {
      writeFileSync(join(dir, `filler-${i}`), chunk);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOSPC") return;
      throw e;
    }
  }
}

beforeAll(() => {
  mountTmpfs(full, "size=64k");
  fill(full);
  mountTmpfs(ro, "size=64k,ro");
});

afterAll(() => {
  for (const d of mounted) execFileSync("umount", ["-l", d]);
  rmSync(root, { recursive: true, force: true });
});

interface Run {
  maxLatenessMs: number;
  ticks: number;
}

/** Logs `lines` lines in bursts while a 10 ms timer loop measures how late it fires. */
async function logUnderTimer(log: (i: number) => void, lines: number): Promise<Run> {
  let maxLatenessMs = 0;
  let ticks = 0;
  let running = true;
  let expected = performance.now() + 10;
  const tick = () => {
    const now = performance.now();
    maxLatenessMs = Math.max(maxLatenessMs, now - expected);
    ticks++;
    expected = now + 10;
    if (running) setTimeout(tick, 10);
  };
  setTimeout(tick, 10);
  // Bursts of 100 lines every 5 ms, yielding between bursts as HA code would, so the timer loop runs
  // throughout (5000 lines take about half a second).
  for (let i = 0; i < lines; i++) {
    log(i);
    if (i % 100 === 99) await new Promise((r) => setTimeout(r, 5));
  }
  await new Promise((r) => setTimeout(r, 100));
  running = false;
  return { maxLatenessMs, ticks };
}

describe("agent log on a broken disk", () => {
  it("a full disk: no exception, timers on time, lost lines counted", async () => {
    const log = createAgentLog({ dir: full, retryMs: 50, maxQueuedBytes: 64 << 10 });
    const n = 5000;
    const run = await logUnderTimer((i) => log.logger.info({ i, payload: "x".repeat(100) }, "ha.tick"), n);
    await log.idle();
    const s = log.stats();
    console.log(
      `full disk: max timer lateness ${run.maxLatenessMs.toFixed(1)} ms over ${run.ticks} ticks`,
      s,
    );
    expect(run.maxLatenessMs).toBeLessThan(200);
    expect(run.ticks).toBeGreaterThan(10);
    expect(s.failures).toBeGreaterThan(0);
    expect(s.lastError).toMatch(/ENOSPC|no space/i);
    expect(s.written).toBe(0);
    expect(s.dropped).toBe(n);

    // Space comes back: after the retry pause the log file receives lines again.
    for (const f of readdirSync(full)) if (f.startsWith("filler-")) rmSync(join(full, f));
    await new Promise((r) => setTimeout(r, 120));
    log.logger.info("disk.recovered");
    await new Promise((r) => setTimeout(r, 120));
    await log.idle();
    expect(log.stats().written).toBeGreaterThan(0);
    await log.close();
    expect(readFileSync(join(full, "agent.log"), "utf8")).toContain("disk.recovered");
  });

  it("a read-only disk: no exception, timers on time, lost lines counted", async () => {
    const log = createAgentLog({ dir: ro, retryMs: 20 });
    const n = 3000;
    const run = await logUnderTimer((i) => log.logger.warn({ i }, "ha.tick"), n);
    await log.close();
    const s = log.stats();
    console.log(`read-only disk: max timer lateness ${run.maxLatenessMs.toFixed(1)} ms`, s);
    expect(run.maxLatenessMs).toBeLessThan(200);
    expect(s.lastError).toMatch(/EROFS|read-only/i);
    expect(s.written).toBe(0);
    expect(s.dropped).toBe(n);
  });

  it("a folder that cannot be created (a file is in the way) is a counted failure, not an exception", async () => {
    const blocker = join(root, "not-a-dir");
    writeFileSync(blocker, "");
    const log = createAgentLog({ dir: join(blocker, "logs"), retryMs: 20 });
    log.logger.error("lost");
    await new Promise((r) => setTimeout(r, 50));
    await log.close();
    expect(log.stats()).toMatchObject({ written: 0, dropped: 1 });
    expect(log.stats().failures).toBeGreaterThan(0);
  });
});
