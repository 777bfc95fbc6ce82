// `npm run bench:cli`: wall time of `zsha status` end to end (a fresh process, as an operator runs it) on a
// 3-agent cluster, and of the same command in-process (the API round trips alone), 30 runs each; p50/p99.
// Writes bench/results/cli.json. Target: ≤ 300 ms. Figures are printed, never asserted.

import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCli } from "../src/cli/main.js";
import { until } from "../test/support/cluster.js";
import { HaCluster, runningOn } from "../test/support/ha-cluster.js";

const ROOT = join(import.meta.dirname, "..");
const RUNS = 30;

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!);
}

const c = await HaCluster.start(3, "bench-cli");
try {
  await until("the MN-VM running", () => runningOn(c.kv), 60_000, 200);
  const ep = c.procs.get("n2")!.client;
  const proc: number[] = [];
  const inproc: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    const r = spawnSync(
      process.execPath,
      ["--import", "tsx", join(ROOT, "cmd/zsha.ts"), "--endpoint", ep, "status"],
      { cwd: ROOT },
    );
    proc.push(performance.now() - t0);
    if (r.status !== 0) throw new Error(`zsha status failed: ${r.stderr}`);
    const t1 = performance.now();
    await runCli(["--endpoint", ep, "status"], { out: () => {}, err: () => {}, progress: () => {} });
    inproc.push(performance.now() - t1);
  }
  const summary = {
    runs: RUNS,
    process: { p50Ms: pct(proc, 50), p99Ms: pct(proc, 99) },
    inProcess: { p50Ms: pct(inproc, 50), p99Ms: pct(inproc, 99) },
  };
  console.log(
    `zsha status, fresh process: p50 ${summary.process.p50Ms} ms, p99 ${summary.process.p99Ms} ms (target <= 300 ms)`,
  );
  console.log(
    `zsha status, in-process (API round trips only): p50 ${summary.inProcess.p50Ms} ms, p99 ${summary.inProcess.p99Ms} ms`,
  );
  mkdirSync(join(ROOT, "bench", "results"), { recursive: true });
  writeFileSync(join(ROOT, "bench", "results", "cli.json"), `${JSON.stringify(summary, null, 2)}\n`);
} finally {
  await c.stop();
}
process.exit(0);
