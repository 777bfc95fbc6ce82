// `npm run bench:cli`: wall time of `zsha status` end to end (a fresh process, as an operator runs it) on a
// 3-agent cluster, three ways, 30 runs each, p50/p99:
//   - installed: the package `zsha install` ships (npm run package, src/install/package.ts), unpacked into
//     a temp prefix and run through its bin/zsha, as on a node; also `bin/zsha -v` (start-up alone);
//   - checkout: `node --import tsx cmd/zsha.ts` (TypeScript compiled on the fly: a developer's figure);
//   - in-process: the same command through runCli (the API round trips alone).
// Writes bench/results/cli.json. Target (installed): ≤ 300 ms. Figures are printed, never asserted.

import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli } from "../src/cli/main.js";
import { PACKAGE_LAYOUT, packageSelf } from "../src/install/package.js";
import { until } from "../test/support/cluster.js";
import { HaCluster, runningOn } from "../test/support/ha-cluster.js";

const ROOT = join(import.meta.dirname, "..");
const RUNS = 30;

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!);
}

/** Runs `cmd args` RUNS times, each a fresh process; its wall times in ms. */
function timed(cmd: string, args: string[]): number[] {
  const ms: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    const r = spawnSync(cmd, args, { cwd: ROOT });
    ms.push(performance.now() - t0);
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed: ${r.stderr}`);
  }
  return ms;
}

const figures = (xs: number[]) => ({ p50Ms: pct(xs, 50), p99Ms: pct(xs, 99) });

const work = mkdtempSync(join(tmpdir(), "zsha-bench-cli-"));
const c = await HaCluster.start(3, "bench-cli");
try {
  const t = performance.now();
  const pkg = await packageSelf({ outDir: join(work, "out"), log: (l) => console.error(l) });
  const prefix = join(work, "prefix");
  mkdirSync(prefix);
  const untar = spawnSync("tar", ["-xzf", pkg.tarball, "-C", prefix]);
  if (untar.status !== 0) throw new Error(`tar -xzf ${pkg.tarball} failed: ${untar.stderr}`);
  console.error(`bench: package built and unpacked in ${Math.round(performance.now() - t)} ms`);
  const zsha = join(prefix, PACKAGE_LAYOUT.wrapper);

  await until("the MN-VM running", () => runningOn(c.kv), 60_000, 200);
  const ep = c.procs.get("n2")!.client;
  const installed = timed(zsha, ["--endpoint", ep, "status"]);
  const version = timed(zsha, ["-v"]);
  const checkout = timed(process.execPath, [
    "--import",
    "tsx",
    join(ROOT, "cmd/zsha.ts"),
    "--endpoint",
    ep,
    "status",
  ]);
  const inproc: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t1 = performance.now();
    await runCli(["--endpoint", ep, "status"], { out: () => {}, err: () => {}, progress: () => {} });
    inproc.push(performance.now() - t1);
  }
  const summary = {
    runs: RUNS,
    installed: { status: figures(installed), version: figures(version) },
    process: figures(checkout),
    inProcess: figures(inproc),
  };
  const say = (what: string, f: { p50Ms: number; p99Ms: number }, note = "") =>
    console.log(`${what}: p50 ${f.p50Ms} ms, p99 ${f.p99Ms} ms${note}`);
  say("zsha status, installed package (bin/zsha)", summary.installed.status, " (target <= 300 ms)");
  say("zsha -v, installed package (bin/zsha)", summary.installed.version);
  say("zsha status, checkout (node --import tsx cmd/zsha.ts)", summary.process);
  say("zsha status, in-process (API round trips only)", summary.inProcess);
  mkdirSync(join(ROOT, "bench", "results"), { recursive: true });
  writeFileSync(join(ROOT, "bench", "results", "cli.json"), `${JSON.stringify(summary, null, 2)}\n`);
} finally {
  await c.stop();
  rmSync(work, { recursive: true, force: true });
}
process.exit(0);
