// `npm run sim:ha -- --seeds N [--from S] [--members 3|5] [--schedule faults|storm] [--verbose] [--trace]`: runs N
// seeded simulations of the whole HA stack (real Raft, KV and HA agents on simulated hosts, network and
// clocks) under faults, checking after every event that no two hosts run the MN-VM with write access to its
// disk, plus liveness after healing and no failover under a storm alone. The last line is exactly
// `sim: N seeds, V violations`; the exit code is non-zero when V > 0. A failing seed is printed with a trace
// and reproduces with `--from SEED --seeds 1`; `--trace` prints every seed's whole trace.

import { parseArgs } from "node:util";
import { runHaSeed, type Schedule } from "../test/sim-ha/ha-sim.js";

function fail(msg: string): never {
  console.error(`sim:ha: ${msg}`);
  process.exit(2);
}

const { values } = parseArgs({
  options: {
    seeds: { type: "string", default: "20" },
    from: { type: "string", default: "1" },
    members: { type: "string" },
    schedule: { type: "string" },
    verbose: { type: "boolean", default: false },
    trace: { type: "boolean", default: false },
  },
  strict: true,
});

const seeds = Number(values.seeds);
const from = Number(values.from);
if (!Number.isInteger(seeds) || seeds < 1) fail(`--seeds must be a positive integer, got '${values.seeds}'`);
if (!Number.isInteger(from) || from < 0) fail(`--from must be a non-negative integer, got '${values.from}'`);
if (values.members !== undefined && values.members !== "3" && values.members !== "5") {
  fail(`--members must be 3 or 5, got '${values.members}'`);
}
if (values.schedule !== undefined && values.schedule !== "faults" && values.schedule !== "storm") {
  fail(`--schedule must be faults or storm, got '${values.schedule}'`);
}
const schedule = values.schedule as Schedule | undefined;

const started = performance.now();
let violations = 0;
let failedSeeds = 0;
for (let seed = from; seed < from + seeds; seed++) {
  // Without --members, seeds alternate between 3- and 5-member clusters.
  const members = values.members ? (Number(values.members) as 3 | 5) : seed % 2 === 0 ? 5 : 3;
  const t0 = performance.now();
  const res = await runHaSeed({
    seed,
    members,
    ...(schedule ? { schedule } : {}),
    ...(values.trace ? { traceSize: 1_000_000 } : {}),
  });
  if (values.trace) for (const line of res.trace) console.log(line);
  if (values.verbose) {
    const s = ((performance.now() - t0) / 1000).toFixed(2);
    console.log(`seed ${seed} (${members} members, ${res.schedule}, ${s} s): ${JSON.stringify(res.stats)}`);
  }
  if (res.violations.length > 0) {
    violations += res.violations.length;
    failedSeeds++;
    console.log(
      `\nFAILED seed ${seed} (${members} members, ${res.schedule}): ${res.violations.length} violation(s)`,
    );
    for (const v of res.violations.slice(0, 5)) console.log(`  ${v}`);
    console.log("  trace (last events):");
    for (const line of res.trace.slice(-80)) console.log(`    ${line}`);
    const flags = `${values.members ? ` --members ${members}` : ""}${schedule ? ` --schedule ${schedule}` : ""}`;
    console.log(`  reproduce: npm run sim:ha -- --from ${seed} --seeds 1${flags}\n`);
  }
  const done = seed - from + 1;
  if (!values.verbose && done % 25 === 0 && done < seeds) {
    console.log(
      `  ... ${done}/${seeds} seeds, ${failedSeeds} failed, ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
  }
}
const took = (performance.now() - started) / 1000;
console.log(`took ${took.toFixed(1)} s (${(took / seeds).toFixed(2)} s/seed)`);
console.log(`sim: ${seeds} seeds, ${violations} violations`);
process.exit(violations > 0 ? 1 : 0);
