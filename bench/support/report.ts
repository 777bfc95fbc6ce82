// The results: per case both systems' figures and the ratio zsha/etcd, the leader-kill rounds, and how the
// figures compare with the targets of issue 3. A ratio above 1 is better for ops/s, below 1 for latency.

import type { FailoverRound } from "./failover.js";
import type { LoadResult } from "./load.js";

export interface CaseRow {
  readonly name: string;
  readonly op: "put" | "get";
  readonly concurrency: number;
  readonly n: number;
  readonly etcd: LoadResult;
  readonly zsha: LoadResult;
}

const r3 = (x: number) => Math.round(x * 1000) / 1000;
const r2 = (x: number) => Math.round(x * 100) / 100;
const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

function figures(r: LoadResult) {
  return {
    opsPerSec: r2(r.opsPerSec),
    p50Ms: r3(r.p50Ms),
    p99Ms: r3(r.p99Ms),
    maxMs: r3(r.maxMs),
    seconds: r3(r.seconds),
    errors: r.errors,
    ...(r.firstError ? { firstError: r.firstError } : {}),
  };
}

export function summarize(run: {
  startedAt: string;
  finishedAt: string;
  machine: object;
  versions: object;
  config: object;
  cases: readonly CaseRow[];
  rounds: { etcd: readonly FailoverRound[]; zsha: readonly FailoverRound[] };
}) {
  const cases = run.cases.map((c) => ({
    name: c.name,
    op: c.op,
    concurrency: c.concurrency,
    n: c.n,
    etcd: figures(c.etcd),
    zsha: figures(c.zsha),
    ratio: {
      opsPerSec: r3(c.zsha.opsPerSec / c.etcd.opsPerSec),
      p50: r3(c.zsha.p50Ms / c.etcd.p50Ms),
      p99: r3(c.zsha.p99Ms / c.etcd.p99Ms),
    },
  }));
  const side = (rs: readonly FailoverRound[]) => ({
    timesMs: rs.map((r) => Math.round(r.ms)),
    meanMs: Math.round(mean(rs.map((r) => r.ms))),
    minMs: Math.round(Math.min(...rs.map((r) => r.ms))),
    maxMs: Math.round(Math.max(...rs.map((r) => r.ms))),
    killed: rs.map((r) => r.killed + 1),
  });
  const reelection = {
    etcd: side(run.rounds.etcd),
    zsha: side(run.rounds.zsha),
    ratioMean: r3(mean(run.rounds.zsha.map((r) => r.ms)) / mean(run.rounds.etcd.map((r) => r.ms))),
  };
  const find = (name: string) => cases.find((c) => c.name === name);
  const targets = {
    putsC64AtLeast1x: find("put c=64") ? find("put c=64")!.ratio.opsPerSec >= 1 : null,
    putsC1AtLeast08x: find("put c=1") ? find("put c=1")!.ratio.opsPerSec >= 0.8 : null,
    p99NotAboveEtcd: Object.fromEntries(cases.map((c) => [c.name, c.ratio.p99 <= 1])),
    meanReelectionNotAboveEtcd: reelection.ratioMean <= 1,
  };
  return { ...run, cases, rounds: undefined, reelection, targets };
}

export function printTable(s: ReturnType<typeof summarize>): void {
  const pad = (x: string | number, w: number) => String(x).padStart(w);
  console.log(
    `\n${"case".padEnd(10)}${pad("etcd ops/s", 12)}${pad("zsha ops/s", 12)}${pad("ratio", 7)}` +
      `${pad("etcd p50", 10)}${pad("zsha p50", 10)}${pad("etcd p99", 10)}${pad("zsha p99", 10)}${pad("ratio", 7)}`,
  );
  for (const c of s.cases) {
    console.log(
      `${c.name.padEnd(10)}${pad(c.etcd.opsPerSec.toFixed(0), 12)}${pad(c.zsha.opsPerSec.toFixed(0), 12)}` +
        `${pad(c.ratio.opsPerSec.toFixed(2), 7)}${pad(c.etcd.p50Ms.toFixed(2), 10)}${pad(c.zsha.p50Ms.toFixed(2), 10)}` +
        `${pad(c.etcd.p99Ms.toFixed(2), 10)}${pad(c.zsha.p99Ms.toFixed(2), 10)}${pad(c.ratio.p99.toFixed(2), 7)}` +
        `${c.etcd.errors || c.zsha.errors ? `  errors etcd ${c.etcd.errors} zsha ${c.zsha.errors}` : ""}`,
    );
  }
  const e = s.reelection;
  console.log(
    `\nre-election (ms)  etcd mean ${e.etcd.meanMs} [${e.etcd.timesMs.join(" ")}]\n` +
      `                  zsha mean ${e.zsha.meanMs} [${e.zsha.timesMs.join(" ")}]  ratio ${e.ratioMean.toFixed(2)}`,
  );
  console.log(`targets: ${JSON.stringify(s.targets)}\n(latencies in ms; ratio = zsha/etcd)`);
}
