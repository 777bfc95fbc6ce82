// `npm run sim -- --seeds N [--from S] [--members 3|5] [--verbose]`: runs N seeded simulations of a Raft
// cluster under faults and checks Raft's safety properties after every event. The last line is exactly
// `sim: N seeds, V violations`; the exit code is non-zero when V > 0. A failing seed is printed with a
// trace and reproduces with `--from SEED --seeds 1`.

import { parseArgs } from "node:util";
import { runSeed } from "../test/sim/cluster-sim.js";

function fail(msg: string): never {
  console.error(`sim: ${msg}`);
  process.exit(2);
}

const { values } = parseArgs({
  options: {
    seeds: { type: "string", default: "100" },
    from: { type: "string", default: "1" },
    members: { type: "string" },
    verbose: { type: "boolean", default: false },
    "fault-ms": { type: "string" },
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
const faultMs = values["fault-ms"] === undefined ? undefined : Number(values["fault-ms"]);

const started = performance.now();
let violations = 0;
let failedSeeds = 0;
for (let seed = from; seed < from + seeds; seed++) {
  // Without --members, seeds alternate between 3- and 5-member clusters.
  const members = values.members ? (Number(values.members) as 3 | 5) : seed % 2 === 0 ? 5 : 3;
  const res = runSeed({ seed, members, ...(faultMs ? { faultMs } : {}) });
  if (values.verbose) console.log(`seed ${seed} (${members} members): ${JSON.stringify(res.stats)}`);
  if (res.violations.length > 0) {
    violations += res.violations.length;
    failedSeeds++;
    console.log(`\nFAILED seed ${seed} (${members} members): ${res.violations.length} violation(s)`);
    for (const v of res.violations.slice(0, 5)) console.log(`  ${v}`);
    console.log("  trace (last events):");
    for (const line of res.trace.slice(-60)) console.log(`    ${line}`);
    console.log(`  reproduce: npm run sim -- --from ${seed} --seeds 1 --members ${members}\n`);
  }
  const done = seed - from + 1;
  if (!values.verbose && done % 100 === 0 && done < seeds) {
    console.log(
      `  ... ${done}/${seeds} seeds, ${failedSeeds} failed, ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
  }
}
console.log(`took ${((performance.now() - started) / 1000).toFixed(1)} s`);
console.log(`sim: ${seeds} seeds, ${violations} violations`);
process.exit(violations > 0 ? 1 : 0);
