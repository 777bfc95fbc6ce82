// `npm run bench:kv`: zsha's replicated store against etcd 3.4 on loopback, in one run, driven by the same
// harness. Puts of 256-byte values and linearizable gets at several concurrencies, then leader kills.
// Prints a table and writes bench/results/kv.json (figures only: nothing here is asserted).
//
//   npm run bench:kv                  full run (20,000 ops per case, 10 leader kills each)
//   npm run bench:kv -- --quick       smoke run (2,000 ops per case, 3 kills), writes kv-quick.json
//   flags: --ops N --kills K --out FILE --cpu-prof DIR (profiles of the zsha agents, written at the end)

import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { EtcdCluster, ensureEtcd, etcdVersion } from "./support/etcd.js";
import { type FailoverRound, leaderKillRound } from "./support/failover.js";
import { type LoadResult, runLoad } from "./support/load.js";
import { cleanup, sleep, tempDir } from "./support/procs.js";
import { type CaseRow, printTable, summarize } from "./support/report.js";
import type { Cluster, Driver } from "./support/system.js";
import { ZshaCluster } from "./support/zsha.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** The zsha source that ran: the commit, and whether the work tree differed from it. */
function sourceVersion(): string {
  try {
    const git = (...args: string[]) => execFileSync("git", args, { cwd: root, encoding: "utf8" }).trim();
    const dirty = git("status", "--porcelain", "--", "src", "cmd") !== "";
    return `${git("rev-parse", "--short", "HEAD")}${dirty ? " (src/ or cmd/ modified)" : ""}`;
  } catch {
    return "unknown (not a git checkout)";
  }
}

function fail(msg: string): never {
  console.error(`bench:kv: ${msg}`);
  process.exit(2);
}

const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    ops: { type: "string" },
    kills: { type: "string" },
    out: { type: "string" },
    "cpu-prof": { type: "string" },
  },
  strict: true,
});
const int = (flag: string, v: string | undefined, dflt: number) => {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) fail(`--${flag} must be a positive integer, got '${v}'`);
  return n;
};
const quick = values.quick;
const ops = int("ops", values.ops, quick ? 2_000 : 20_000);
const kills = int("kills", values.kills, quick ? 3 : 10);
const out = resolve(values.out ?? join(root, "bench/results", quick ? "kv-quick.json" : "kv.json"));
const concurrencies = [1, 16, 64];
const timing = { heartbeatMs: 100, electionMs: 1000, tickMs: 100, electionTicks: 10 };
const value = new Uint8Array(randomBytes(256));

interface Systems {
  etcd: { cluster: Cluster; driver: Driver };
  zsha: { cluster: Cluster; driver: Driver };
}

/** Runs `f` on both systems, etcd first on even turns and zsha first on odd ones. */
async function both<T>(
  turn: number,
  sys: Systems,
  f: (s: Systems["etcd"]) => Promise<T>,
): Promise<{ etcd: T; zsha: T }> {
  const order = turn % 2 === 0 ? (["etcd", "zsha"] as const) : (["zsha", "etcd"] as const);
  const r: Partial<{ etcd: T; zsha: T }> = {};
  for (const name of order) {
    r[name] = await f(sys[name]);
    await sleep(500);
  }
  return r as { etcd: T; zsha: T };
}

function line(name: string, what: string, r: LoadResult): void {
  console.log(
    `  ${name.padEnd(4)} ${what.padEnd(10)} ${r.opsPerSec.toFixed(0).padStart(6)} ops/s  p50 ${r.p50Ms.toFixed(2)} ms  p99 ${r.p99Ms.toFixed(2)} ms${r.errors ? `  errors ${r.errors} (${r.firstError})` : ""}`,
  );
}

async function main(): Promise<void> {
  const etcdBin = ensureEtcd();
  const dir = tempDir("zsha-bench-kv-");
  mkdirSync(join(dir, "etcd"));
  mkdirSync(join(dir, "zsha"));
  const profDir = values["cpu-prof"] ? resolve(values["cpu-prof"]) : undefined;
  if (profDir) mkdirSync(profDir, { recursive: true });
  const etcd = new EtcdCluster(etcdBin, join(dir, "etcd"), timing);
  const zsha = new ZshaCluster(
    root,
    join(dir, "zsha"),
    timing,
    profDir ? ["--cpu-prof", "--cpu-prof-dir", profDir] : [],
  );
  console.log(
    `bench:kv: ${ops} ops per case, concurrency ${concurrencies.join("/")}, ${kills} leader kills; ${etcdVersion(etcdBin)}; temp ${dir}`,
  );
  await etcd.start();
  await zsha.start();
  const sys: Systems = {
    etcd: { cluster: etcd, driver: etcd.client() },
    zsha: { cluster: zsha, driver: zsha.client() },
  };
  const routing = { etcd: await etcd.routing(), zsha: await zsha.routing() };
  const startedAt = new Date().toISOString();
  const load0 = loadavg()[0];

  const cases: CaseRow[] = [];
  let turn = 0;
  for (const op of ["put", "get"] as const) {
    for (const c of concurrencies) {
      const what = `${op} c=${c}`;
      console.log(`${what}:`);
      const r = await both(turn++, sys, async (s) => {
        const d = s.driver;
        const run =
          op === "put"
            ? (i: number) => d.put(`/bench/${c}/${i}`, value)
            : (i: number) => d.get(`/bench/1/${(i * 7919) % ops}`);
        // Warm-up (JIT, connections, leader state) that is not measured.
        await runLoad(Math.min(500, ops), c, (i) =>
          op === "put" ? d.put(`/bench/warm/${i}`, value) : d.get(`/bench/warm/${i}`),
        );
        const res = await runLoad(ops, c, run);
        line(s.cluster.name, what, res);
        return res;
      });
      cases.push({ name: what, op, concurrency: c, n: ops, ...r });
    }
  }

  const rounds: { etcd: FailoverRound[]; zsha: FailoverRound[] } = { etcd: [], zsha: [] };
  for (let k = 0; k < kills; k++) {
    console.log(`leader kill ${k + 1}/${kills}:`);
    const r = await both(turn++, sys, async (s) => {
      const res = await leaderKillRound(s.cluster, k, value);
      console.log(
        `  ${s.cluster.name.padEnd(4)} killed member ${res.killed + 1}, new leader ${res.newLeader === undefined ? "?" : res.newLeader + 1} answered after ${res.ms.toFixed(0)} ms`,
      );
      return res;
    });
    rounds.etcd.push(r.etcd);
    rounds.zsha.push(r.zsha);
  }

  const summary = summarize({
    startedAt,
    finishedAt: new Date().toISOString(),
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? "?",
      loadAvg1mAtStart: load0,
      loadAvg1mAtEnd: loadavg()[0],
    },
    versions: {
      zsha: sourceVersion(),
      etcd: etcdVersion(etcdBin),
      node: process.version,
      etcd3Client: "etcd3 npm",
    },
    config: { ops, concurrencies, kills, valueBytes: value.length, timing, routing },
    cases,
    rounds,
  });
  printTable(summary);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(summary, null, 2)}\n`);
  // Committed results must pass `biome check .` (part of npm test) as they are written.
  try {
    execFileSync(join(root, "node_modules/.bin/biome"), ["format", "--write", out], { stdio: "ignore" });
  } catch {
    console.error(`bench:kv: could not biome-format ${out}; run npx biome format --write on it`);
  }
  console.log(`wrote ${out}`);

  sys.etcd.driver.close();
  sys.zsha.driver.close();
  await etcd.stop();
  await zsha.stop();
}

try {
  await main();
} catch (e) {
  console.error(`bench:kv failed: ${(e as Error).stack ?? e}`);
  process.exitCode = 1;
} finally {
  cleanup();
}
// Open gRPC channels (retry timers) must not keep the run alive once the work is done.
process.exit();
