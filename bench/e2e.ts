// `npm run bench:e2e`: the real-stack benchmarks of issue 8 on three installed hosts of the e2e harness
// (systemd, sshd, libvirtd + qemu TCG, Ceph RBD for the MN-VM's disk; zsha installed with `zsha install`,
// Timing at the product's defaults). In this order, on one cluster:
//   1. `zsha status` wall time on a host (the installed program), against bare peers on the same host in the
//      same run: `virsh -c qemu:///system list` and `/opt/zsha/bin/node -e 0` (Node's start-up alone).
//   2. Planned migration: `zsha migrate TARGET` (until it exits and the target owns the MN-VM) against a bare
//      libvirt peer-to-peer live migration of the same guest between the same two hosts, alternating; the
//      bare one runs under global maintenance so zsha does not react, and zsha must agree afterwards.
//   3. Failover: hard power loss of the owner -> MN-VM running elsewhere (polled with `zsha status --json`
//      on a survivor), split into detection / fencing / start from the survivors' agent logs.
// The harness switch's MAC is pinned first (pinSwitchMac: otherwise every power change of h1 cuts the other
// hosts off Ceph for 20-40 s, which is the harness, not zsha; --floating-switch-mac shows it).
// Commands are timed on the host itself (date +%s%N around them), so the harness's nsenter is not counted;
// hosts share the kernel clock with this process, so host timestamps and the agents' log times compare.
// Writes bench/results/e2e.json (raw samples, summaries, machine load) and prints a table. Figures are
// printed, never asserted; a failed step is recorded with its error and log excerpts.

import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { type SwitchCeph, startSwitchCeph } from "../test/e2e/support/ceph.js";
import { buildGuestImage } from "../test/e2e/support/guest.js";
import { Hosts } from "../test/e2e/support/hosts.js";
import { e2eUnavailable } from "../test/e2e/support/requirements.js";
import { run, sleep, waitFor } from "../test/e2e/support/run.js";
import {
  CONFIG_PATH,
  e2eConfig,
  PASSWORD,
  prepareNode,
  writeConfig,
  zsha,
  zshaDev,
} from "../test/e2e/support/zsha-nodes.js";
import {
  EVENT_PATTERNS,
  type FailoverSplit,
  type HaEvent,
  parseHaEvents,
  splitFailover,
} from "./lib/failover-split.js";
import { summary } from "./lib/stats.js";

const { values } = parseArgs({
  options: {
    failovers: { type: "string", default: "10" },
    "migration-rounds": { type: "string", default: "3" },
    "status-runs": { type: "string", default: "30" },
    // Leave the harness switch's MAC floating (see pinSwitchMac), to reproduce what it does to failover.
    "floating-switch-mac": { type: "boolean", default: false },
  },
});
const FAILOVERS = Number(values.failovers);
const MIGRATION_ROUNDS = Number(values["migration-rounds"]);
const STATUS_RUNS = Number(values["status-runs"]);
const DOMAIN = "zsha-mnvm";
const ZSHA = "/usr/local/bin/zsha";
const RESULTS = join(import.meta.dirname, "results", "e2e.json");

const why = e2eUnavailable();
if (why) {
  console.error(`bench:e2e cannot run here: ${why}`);
  process.exit(2);
}

// ---- measuring on a host ------------------------------------------------------------------------------------

interface Timed {
  /** Wall clock (epoch ms, fractional) when the command started and ended, read on the host. */
  readonly startMs: number;
  readonly endMs: number;
  readonly ms: number;
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

const TIMED = 't0=$(date +%s%N); "$@"; rc=$?; t1=$(date +%s%N); echo "@@timed $t0 $t1 $rc" >&2';

/** Runs `argv` on host `h`, timed there. */
async function timed(hosts: Hosts, h: string, argv: readonly string[], timeoutMs = 120_000): Promise<Timed> {
  const r = await hosts.exec(h, ["sh", "-c", TIMED, "sh", ...argv], { reject: false, timeoutMs });
  const m = /@@timed (\d+) (\d+) (-?\d+)\s*$/.exec(r.stderr);
  if (!m) throw new Error(`on ${h}: ${argv.join(" ")} was not timed (exit ${r.exitCode}): ${r.stderr}`);
  const [t0, t1] = [BigInt(m[1]!), BigInt(m[2]!)];
  return {
    startMs: Number(t0 / 1000n) / 1000,
    endMs: Number(t1 / 1000n) / 1000,
    ms: Number(t1 - t0) / 1e6,
    exitCode: Number(m[3]),
    stdout: r.stdout,
    stderr: r.stderr.slice(0, m.index).trim(),
  };
}

interface Status {
  mnvm: {
    owner: string | null;
    state: string;
    epoch: number;
    globalMaintenance: boolean;
    migration: { from: string; to: string; state: string } | null;
  };
  nodes: {
    name: string;
    reporting: boolean;
    mnvm: string;
    image: { ok: boolean; error: string | null } | null;
    hypervisor: { ok: boolean; error: string | null } | null;
  }[];
  storage?: { health: string | null };
  hostIo?: string | null;
  members: { name: string; alive: boolean; role: string }[];
  leader: string;
}

async function status(hosts: Hosts, h: string, timeoutMs = 10_000): Promise<Status | undefined> {
  const r = await zsha(hosts, h, ["status", "--json"], timeoutMs).catch(() => undefined);
  if (r?.exitCode !== 0) return undefined;
  try {
    return JSON.parse(r.stdout) as Status;
  } catch {
    return undefined;
  }
}

/**
 * Waits until every member is alive, every node reports a working hypervisor and image, and the MN-VM runs
 * with no migration under way.
 */
async function healthy(hosts: Hosts, timeoutMs = 240_000): Promise<Status> {
  let st: Status | undefined;
  await waitFor(
    "a healthy cluster (3 members alive, 3 nodes reporting, the MN-VM running)",
    async () => {
      for (const h of hosts.names().filter((x) => hosts.isUp(x))) {
        st = await status(hosts, h);
        if (!st) continue;
        const migrating = st.mnvm.migration?.state === "requested" || st.mnvm.migration?.state === "running";
        return (
          st.members.length === 3 &&
          st.members.every((m) => m.alive) &&
          st.nodes.length === 3 &&
          // Reporting is not enough: a node just powered on reports before it has read the cluster config
          // ("no cluster config is stored yet") and cannot take the MN-VM until its image check passes.
          st.nodes.every((n) => n.reporting && n.image?.ok === true && n.hypervisor?.ok === true) &&
          st.mnvm.state === "running" &&
          st.mnvm.owner !== null &&
          !migrating
        );
      }
      return false;
    },
    timeoutMs,
    500,
  );
  return st!;
}

/** Host `h`'s HA events, Raft role changes and lease expiries (all rotated files of the agent's log). */
async function haEvents(hosts: Hosts, h: string): Promise<HaEvent[]> {
  const grep = EVENT_PATTERNS.map((p) => `-e '${p}'`).join(" ");
  const r = await hosts.exec(h, ["sh", "-c", `cat /var/log/z/agent*.log 2>/dev/null | grep -F ${grep}`], {
    reject: false,
  });
  return parseHaEvents(r.stdout).sort((a, b) => a.time - b.time);
}

/** The HA events of `hosts` since `sinceMs`, one line each, for a failure report. */
async function eventTrail(
  hosts: Hosts,
  names: readonly string[],
  sinceMs: number,
  marginMs = 2000,
): Promise<string[]> {
  const lines: [number, string][] = [];
  for (const h of names) {
    for (const e of await haEvents(hosts, h)) {
      if (e.time < sinceMs - marginMs) continue;
      const { time, msg, level: _l, pid: _p, hostname: _n, ...rest } = e;
      lines.push([time, `${new Date(time).toISOString()} ${h} ${msg} ${JSON.stringify(rest)}`]);
    }
  }
  return lines.sort((a, b) => a[0] - b[0]).map(([, l]) => l);
}

function machineLoad(hosts?: Hosts) {
  return {
    atMs: Date.now(),
    loadavg: loadavg().map((x) => Math.round(x * 100) / 100),
    cpus: cpus().length,
    hostsUp: hosts?.names().filter((h) => hosts.isUp(h)),
  };
}

/** Other harness runs on this machine (their network namespaces), which share its two cores with us. */
async function otherRuns(prefix: string): Promise<string[]> {
  const r = await run(["ip", "netns", "list"], { reject: false });
  return r.stdout
    .split("\n")
    .map((l) => l.split(" ")[0] ?? "")
    .filter((n) => n && !n.startsWith(prefix));
}

// ---- the three benchmarks -------------------------------------------------------------------------------

async function benchStatus(hosts: Hosts, h: string) {
  const samples = {
    zshaStatus: [] as number[],
    zshaVersion: [] as number[],
    cephStatus: [] as number[],
    virshList: [] as number[],
    nodeStart: [] as number[],
  };
  const failures: string[] = [];
  for (let i = 0; i < STATUS_RUNS; i++) {
    // Interleaved, so a burst of load elsewhere hits all three alike.
    for (const [key, argv] of [
      ["zshaStatus", [ZSHA, "status"]],
      // The same program without any RPC: its start-up (module loading) alone.
      ["zshaVersion", [ZSHA, "-v"]],
      // What the status RPC asks Ceph for each time (health; it also reads one RBD object), with the CLI.
      ["cephStatus", ["ceph", "status", "--format", "json"]],
      ["virshList", ["virsh", "-c", "qemu:///system", "list"]],
      ["nodeStart", ["/opt/zsha/bin/node", "-e", "0"]],
    ] as const) {
      const t = await timed(hosts, h, argv);
      if (t.exitCode !== 0) failures.push(`${argv.join(" ")} exited ${t.exitCode}: ${t.stderr.slice(-300)}`);
      else samples[key].push(t.ms);
    }
  }
  const s = {
    zshaStatus: summary(samples.zshaStatus),
    zshaVersion: summary(samples.zshaVersion),
    cephStatus: summary(samples.cephStatus),
    virshList: summary(samples.virshList),
    nodeStart: summary(samples.nodeStart),
  };
  return {
    host: h,
    runs: STATUS_RUNS,
    samplesMs: Object.fromEntries(
      Object.entries(samples).map(([k, v]) => [k, v.map((x) => Math.round(x * 10) / 10)]),
    ),
    summary: s,
    ratio: {
      p50VsVirshList: Math.round((s.zshaStatus.p50Ms / s.virshList.p50Ms) * 100) / 100,
      p50VsNodeStart: Math.round((s.zshaStatus.p50Ms / s.nodeStart.p50Ms) * 100) / 100,
    },
    targetP99Ms: 300,
    metTarget: s.zshaStatus.p99Ms <= 300,
    failures,
    load: machineLoad(hosts),
  };
}

interface MigrationRow {
  kind: "zsha" | "virsh";
  from: string;
  to: string;
  /** Until the command exited. */
  commandMs: number;
  /** zsha: until the command exited AND the target owned the MN-VM (its ha.ownership-taken); virsh: = commandMs. */
  wallMs: number;
  /** zsha: how long after the command's start the target took ownership. */
  ownershipAfterMs?: number;
  /** zsha: when the source's agent logged ha.migrated (libvirt done, ownership handed over), after the start. */
  migratedAfterMs?: number;
  /** zsha: when a status poll (from this process) first said "running" on the target, after the start. */
  runningSeenAfterMs?: number;
  error?: string;
  trail?: string[];
}

async function zshaMigrate(hosts: Hosts, from: string, to: string): Promise<MigrationRow> {
  const t = await timed(hosts, from, [ZSHA, "migrate", to], 300_000);
  const row: MigrationRow = { kind: "zsha", from, to, commandMs: Math.round(t.ms), wallMs: Math.round(t.ms) };
  if (t.exitCode !== 0) {
    return {
      ...row,
      error: `zsha migrate ${to} on ${from} exited ${t.exitCode}: ${(t.stderr || t.stdout).trim().slice(-600)}`,
      trail: await eventTrail(hosts, [from, to], t.startMs),
    };
  }
  // Whoever asks next sees the new owner from the moment it took ownership; the log says when that was.
  let taken: number | undefined;
  await waitFor(
    `${to} to take ownership`,
    async () => {
      taken = (await haEvents(hosts, to)).find(
        (e) => e.time >= t.startMs && e.msg === "ha.ownership-taken",
      )?.time;
      return taken !== undefined;
    },
    30_000,
    200,
  );
  // Right after the hand-over status says "starting" until the target's next node report: wait for
  // "running" (not part of the wall time: the MN-VM never stopped), failing only if it does not come.
  let st: Status | undefined;
  await waitFor(
    `status to show the MN-VM running on ${to}`,
    async () => {
      st = await status(hosts, to);
      return st?.mnvm.owner === to && st.mnvm.state === "running";
    },
    15_000,
    100,
  ).catch(() => {});
  if (st?.mnvm.owner !== to || st.mnvm.state !== "running")
    return { ...row, error: `after zsha migrate ${to}: status says ${JSON.stringify(st?.mnvm)}` };
  return {
    ...row,
    runningSeenAfterMs: Math.round(Date.now() - t.startMs),
    wallMs: Math.round(Math.max(t.endMs, taken!) - t.startMs),
    ownershipAfterMs: Math.round(taken! - t.startMs),
    migratedAfterMs: Math.round(
      ((await haEvents(hosts, from)).find((e) => e.time >= t.startMs && e.msg === "ha.migrated")?.time ??
        Number.NaN) - t.startMs,
    ),
  };
}

async function virshMigrate(hosts: Hosts, from: string, to: string): Promise<MigrationRow> {
  // The flags zsha's agent passes to libvirt (src/ha/local.ts migrateAway), to the URI it uses.
  const argv = [
    ...["virsh", "-c", "qemu:///system", "migrate", "--live", "--p2p", "--persistent", "--undefinesource"],
    ...["--auto-converge", DOMAIN, `qemu+tcp://${hosts.ip(to)}/system`],
  ];
  const t = await timed(hosts, from, argv, 300_000);
  const row: MigrationRow = {
    kind: "virsh",
    from,
    to,
    commandMs: Math.round(t.ms),
    wallMs: Math.round(t.ms),
  };
  if (t.exitCode !== 0)
    return { ...row, error: `virsh migrate on ${from} exited ${t.exitCode}: ${t.stderr.slice(-600)}` };
  const state = await hosts.exec(to, ["virsh", "-q", "domstate", DOMAIN], { reject: false });
  if (state.stdout.trim() !== "running")
    return { ...row, error: `after virsh migrate: ${to} says ${state.stdout.trim()}` };
  return row;
}

async function runsOn(hosts: Hosts): Promise<string[]> {
  const on: string[] = [];
  for (const h of hosts.names()) {
    const r = await hosts.exec(h, ["virsh", "-q", "list", "--name"], { reject: false });
    if (r.stdout.split("\n").includes(DOMAIN)) on.push(h);
  }
  return on;
}

/**
 * Copies a file the MN-VM's domain refers to (e.g. its cloud-init seed ISO) from host `from` to the same path
 * on every other host, so a migration target can open it.
 */
async function stageFile(hosts: Hosts, from: string, path: string): Promise<void> {
  const b64 = (await hosts.exec(from, ["base64", "-w0", path])).stdout;
  for (const h of hosts.names().filter((x) => x !== from)) {
    await hosts.exec(h, ["sh", "-ec", 'mkdir -p "$(dirname "$1")"; base64 -d > "$1"', "sh", path], {
      input: b64,
    });
  }
}

async function benchMigration(hosts: Hosts) {
  const st = await healthy(hosts);
  const a = st.mnvm.owner!;
  const b = hosts.names().find((h) => h !== a)!;
  const rows: MigrationRow[] = [];
  const problems: string[] = [];
  const say = (r: MigrationRow) =>
    console.log(
      `  ${r.kind.padEnd(5)} ${r.from}->${r.to} ${r.wallMs} ms${r.error ? `  FAILED: ${r.error}` : ""}`,
    );
  // A first migration as the product does it. A target without a file the domain uses (the seed ISO is
  // written only by the node that starts the MN-VM) fails: recorded as a product bug, then the file is
  // copied to every host so the migration itself can be measured.
  const first = await zshaMigrate(hosts, a, b);
  say(first);
  let workaround: string | undefined;
  const missing = first.error && /Cannot access storage file '([^']+)'/.exec(first.error)?.[1];
  if (missing) {
    await healthy(hosts);
    await stageFile(hosts, a, missing);
    workaround = `copied ${missing} from ${a} to every host before measuring (zsha writes it only on the node that starts the MN-VM)`;
    problems.push(`PRODUCT BUG: zsha migrate ${b} failed: ${first.error}`);
    console.log(`  workaround: ${workaround}`);
  } else if (first.error) {
    throw new Error(`migration section: ${first.error}`);
  } else {
    rows.push(first);
    if ((await zshaMigrate(hosts, b, a)).error) throw new Error("migration section: could not migrate back");
  }
  for (let round = 0; round < MIGRATION_ROUNDS; round++) {
    // zsha there and back.
    for (const [from, to] of [
      [a, b],
      [b, a],
    ] as const) {
      await healthy(hosts);
      const r = await zshaMigrate(hosts, from, to);
      rows.push(r);
      say(r);
      if (r.error) {
        // Put it back where the bare migrations expect it, with zsha if it can, else give up on this section.
        const now = (await healthy(hosts)).mnvm.owner;
        if (now !== a && (await zshaMigrate(hosts, now!, a)).error)
          throw new Error(`migration section: ${r.error}`);
        break;
      }
    }
    // libvirt alone, there and back, with HA frozen.
    await healthy(hosts);
    const on = await zsha(hosts, a, ["maintenance", "global", "enable"]);
    if (on.exitCode !== 0) throw new Error(`zsha maintenance global enable: ${on.stderr}`);
    const frozenAt = Date.now();
    await sleep(1500); // a round of every agent's loop, so none acts on a view from before the freeze
    for (const [from, to] of [
      [a, b],
      [b, a],
    ] as const) {
      const r = await virshMigrate(hosts, from, to);
      rows.push(r);
      say(r);
      if (r.error) break;
    }
    const off = await zsha(hosts, a, ["maintenance", "global", "disable"]);
    if (off.exitCode !== 0) throw new Error(`zsha maintenance global disable: ${off.stderr}`);
    // zsha must still agree where it runs, and nothing may have moved or restarted it behind libvirt's back.
    await sleep(3000);
    const after = await healthy(hosts, 60_000);
    const where = await runsOn(hosts);
    const acted = (await eventTrail(hosts, hosts.names(), frozenAt, 0)).filter((l) =>
      /ha\.(unowned-copy|destroyed|started|ownership-(taken|lost|released)|self-fence|restart-after-stop)/.test(
        l,
      ),
    );
    if (after.mnvm.owner !== a || where.join() !== a || acted.length > 0) {
      problems.push(
        `after the bare migrations (round ${round + 1}): status owner ${after.mnvm.owner}, libvirt runs it on [${where}], HA events: ${acted.join(" | ")}`,
      );
    }
  }
  const ok = (k: "zsha" | "virsh") => rows.filter((r) => r.kind === k && !r.error).map((r) => r.wallMs);
  const z = summary(ok("zsha"));
  const v = summary(ok("virsh"));
  return {
    hosts: [a, b],
    firstAttempt: first,
    workaround,
    guest: { memoryGiB: 8, note: "TCG guest that touches a few KiB: the 8 GiB are almost all zero pages" },
    rows,
    summary: {
      zsha: z,
      virsh: v,
      overheadP50Ms: z.p50Ms - v.p50Ms,
      overheadMeanMs: z.meanMs - v.meanMs,
      ratioP50: Math.round((z.p50Ms / v.p50Ms) * 100) / 100,
      zshaCommandP50Ms: Math.round(
        summary(rows.filter((r) => r.kind === "zsha" && !r.error).map((r) => r.commandMs)).p50Ms,
      ),
    },
    targetOverheadMs: 500,
    metTarget: z.p50Ms - v.p50Ms <= 500,
    failures: rows.filter((r) => r.error).length,
    problems,
    load: machineLoad(hosts),
  };
}

/** What a status answer says about eligibility and storage, briefly (for a slow trial's post-mortem). */
function pollFacts(s: Status): string {
  const nodes = s.nodes
    .map((n) => {
      const bad = [
        n.reporting ? "" : "not-reporting",
        n.image && !n.image.ok ? `image:${n.image.error}` : "",
        n.hypervisor && !n.hypervisor.ok ? `hypervisor:${n.hypervisor.error}` : "",
      ].filter(Boolean);
      return `${n.name}${bad.length ? `(${bad.join(",")})` : ""}`;
    })
    .join(" ");
  const storage = s.storage?.health === "HEALTH_OK" ? "" : ` storage:${s.storage?.health}`;
  const io = s.hostIo?.startsWith("FAILED") ? ` hostIo:${s.hostIo}` : "";
  return `[${nodes}]${storage}${io}`;
}

interface FailoverRow {
  trial: number;
  from: string;
  to?: string;
  ownerWasLeader: boolean;
  /** Power loss -> a survivor's `zsha status --json` answered that the MN-VM runs elsewhere. */
  totalMs?: number;
  split?: FailoverSplit;
  /** Each poll: "+<ms after the power loss> <host> <ms it took> <owner/state or error>". */
  statusPolls?: string[];
  powerOffMs: number;
  rejoinMs?: number;
  error?: string;
  trail?: string[];
}

async function failoverTrial(hosts: Hosts, trial: number): Promise<FailoverRow> {
  let st = await healthy(hosts);
  // Every other trial the owner also leads Raft (the worst case: an election, then the owner lease restarts
  // on the new leader), as in bench/failover.ts; the others it does not. Arranged with zsha migrate.
  const wantLeader = trial % 2 === 0;
  if ((st.mnvm.owner === st.leader) !== wantLeader) {
    const to = wantLeader ? st.leader : hosts.names().find((h) => h !== st.leader && h !== st.mnvm.owner)!;
    const m = await zshaMigrate(hosts, st.mnvm.owner!, to);
    if (m.error) console.log(`  (could not move the MN-VM to ${to}: ${m.error})`);
    st = await healthy(hosts);
  }
  const from = st.mnvm.owner!;
  const survivors = hosts.names().filter((h) => h !== from);
  const killedAt = Date.now();
  await hosts.stop(from, "hard");
  const row: FailoverRow = {
    trial,
    from,
    ownerWasLeader: st.leader === from,
    powerOffMs: Date.now() - killedAt,
  };
  const polls: string[] = [];
  const deadline = killedAt + 60_000;
  while (Date.now() < deadline && row.to === undefined) {
    const h = survivors[polls.length % survivors.length]!;
    const p0 = Date.now();
    const s = await status(hosts, h, 20_000);
    const answer = s ? `${s.mnvm.owner}/${s.mnvm.state} ${pollFacts(s)}` : "no answer";
    polls.push(`+${p0 - killedAt} ${h} ${Date.now() - p0} ${answer}`);
    if (s?.mnvm.owner && s.mnvm.owner !== from && s.mnvm.state === "running") {
      row.totalMs = Date.now() - killedAt;
      row.to = s.mnvm.owner;
    } else await sleep(100);
  }
  row.statusPolls = polls;
  if (row.to === undefined) {
    row.error = "the MN-VM was not running elsewhere within 60 s of the power loss";
    row.trail = await eventTrail(hosts, survivors, killedAt);
  } else {
    const to = row.to;
    // The agents log asynchronously: give the new owner's lines a moment to reach the file.
    let events = new Map<string, HaEvent[]>();
    await waitFor(
      `${to}'s ha.started in its log`,
      async () => {
        events = new Map(
          await Promise.all(survivors.map(async (h) => [h, await haEvents(hosts, h)] as const)),
        );
        return (events.get(to) ?? []).some((e) => e.time >= killedAt && e.msg === "ha.started");
      },
      10_000,
      200,
    ).catch(() => {});
    try {
      row.split = splitFailover({ killedAt, to, events });
      // Keep the event trail of a trial over the target, to say why.
      if ((row.totalMs ?? 0) > 10_000 || row.split.totalMs > 10_000)
        row.trail = await eventTrail(hosts, survivors, killedAt);
    } catch (e) {
      row.error = (e as Error).message;
      row.trail = await eventTrail(hosts, survivors, killedAt);
    }
  }
  const t0 = Date.now();
  await hosts.start(from);
  await healthy(hosts);
  row.rejoinMs = Date.now() - t0;
  return row;
}

async function benchFailover(hosts: Hosts) {
  const rows: FailoverRow[] = [];
  for (let i = 1; i <= FAILOVERS; i++) {
    const r = await failoverTrial(hosts, i);
    rows.push(r);
    const s = r.split;
    console.log(
      `  trial ${i}/${FAILOVERS}: ${r.from}->${r.to ?? "?"} ${r.totalMs ?? "-"} ms` +
        (s
          ? ` (detect ${s.detectMs}${s.electedMs !== undefined ? ` incl. election ${s.electedMs}` : ""}${s.reassignMs ? `, re-assign ${s.reassignMs}` : ""}, claim ${s.claimMs}, fence ${s.fenceMs}, start ${s.startMs}; logs ${s.totalMs})`
          : "") +
        (r.ownerWasLeader ? " owner led Raft" : "") +
        (r.error ? `  FAILED: ${r.error}` : ""),
    );
  }
  const ok = rows.filter((r) => r.totalMs !== undefined);
  const split = rows.flatMap((r) => (r.split ? [r.split] : []));
  const total = summary(ok.map((r) => r.totalMs!));
  return {
    rows,
    summary: {
      total,
      byLogs: summary(split.map((s) => s.totalMs)),
      detect: summary(split.map((s) => s.detectMs)),
      elected: summary(split.flatMap((s) => (s.electedMs !== undefined ? [s.electedMs] : []))),
      reassign: summary(split.map((s) => s.reassignMs)),
      claim: summary(split.map((s) => s.claimMs)),
      fence: summary(split.map((s) => s.fenceMs)),
      start: summary(split.map((s) => s.startMs)),
      ownerWasLeaderIn: rows.filter((r) => r.ownerWasLeader).length,
      totalOwnerLedRaft: summary(ok.filter((r) => r.ownerWasLeader).map((r) => r.totalMs!)),
      totalOwnerFollower: summary(ok.filter((r) => !r.ownerWasLeader).map((r) => r.totalMs!)),
    },
    targetP99Ms: 10_000,
    metTarget: ok.length === rows.length && total.p99Ms <= 10_000,
    failures: rows.filter((r) => r.error).length,
    load: machineLoad(hosts),
  };
}

/**
 * The harness's switch is a Linux bridge without an address of its own, so it takes the lowest MAC of its
 * ports: h1's. Every power-off or power-on of h1 then changes the MAC of the switch's IP (Ceph's monitor and
 * OSD, chrony, DNS) under the other hosts' ARP caches, and they cannot reach Ceph until their entries expire
 * (20-40 s): every Ceph call of the survivors fails ("no Ceph monitor answered"), and a failover waits for
 * it. A real switch or gateway keeps its MAC, so the bench gives the bridge a fixed one (and the hosts fresh
 * neighbour tables). --floating-switch-mac leaves the harness as it is.
 */
async function pinSwitchMac(hosts: Hosts): Promise<void> {
  await hosts.switchExec(["ip", "link", "set", "br0", "address", "02:77:00:00:01:fe"]);
  for (const h of hosts.names()) await hosts.exec(h, ["ip", "neigh", "flush", "all"]);
}

// ---- the run ----------------------------------------------------------------------------------------------

const PREFIX = "zb";
const startedAt = new Date().toISOString();
const t0 = performance.now();
let hosts: Hosts | undefined;
let ceph: SwitchCeph | undefined;
const teardown = async () => {
  await ceph?.stop();
  await hosts?.down();
};
process.on("SIGINT", () => void teardown().then(() => process.exit(130)));
const result: Record<string, unknown> = {
  startedAt,
  machine: { ...machineLoad(), otherRuns: await otherRuns(PREFIX) },
};
try {
  hosts = await Hosts.up({ count: 3, init: "systemd", prefix: PREFIX, subnet: "10.81.0.0/24" });
  const hs = hosts;
  result.switchMacPinned = !values["floating-switch-mac"];
  if (result.switchMacPinned) await pinSwitchMac(hs);
  ceph = await startSwitchCeph(hs);
  const work = await mkdtemp(join(tmpdir(), "zsha-bench-e2e-"));
  try {
    await buildGuestImage(join(work, "mnvm.img"));
    await ceph.importImage("zstack", "mnvm.img", join(work, "mnvm.img"));
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  const c = ceph;
  await Promise.all(hs.names().map((h) => prepareNode(hs, c, h)));
  await writeConfig(hs, "h1", e2eConfig(hs, c));
  const inst = await zshaDev(hs, "h1", ["install", "-p", PASSWORD, "-c", CONFIG_PATH]);
  if (inst.exitCode !== 0) throw new Error(`zsha install failed:\n${inst.stdout}${inst.stderr}`);
  const st = await healthy(hs);
  result.setupMs = Math.round(performance.now() - t0);
  console.log(`bench:e2e: 3 hosts installed in ${result.setupMs} ms; the MN-VM runs on ${st.mnvm.owner}`);

  const statusHost = hs.names().find((h) => h !== st.mnvm.owner && h !== st.leader) ?? "h1";
  console.log(`status: ${STATUS_RUNS} runs on ${statusHost} (a follower, not the owner)`);
  result.status = await benchStatus(hs, statusHost);
  console.log(`migration: ${MIGRATION_ROUNDS} rounds of zsha there and back, then virsh there and back`);
  result.migration = await benchMigration(hs);
  console.log(`failover: ${FAILOVERS} hard power losses of the owner`);
  result.failover = await benchFailover(hs);
} catch (e) {
  result.error = (e as Error).stack ?? String(e);
  console.error(`bench:e2e failed: ${result.error}`);
} finally {
  await teardown();
}
result.finishedAt = new Date().toISOString();
result.totalMs = Math.round(performance.now() - t0);
await writeFile(RESULTS, `${JSON.stringify(result, null, 2)}\n`);
printTable(result);
process.exit(result.error ? 1 : 0);

function printTable(r: Record<string, unknown>): void {
  type S = { p50Ms: number; p99Ms: number; n: number };
  const line = (name: string, s: S | undefined, target: string, extra = "") =>
    console.log(
      `${name.padEnd(34)}${String(s?.p50Ms ?? "-").padStart(8)}${String(s?.p99Ms ?? "-").padStart(8)}${String(s?.n ?? 0).padStart(4)}  ${target.padEnd(14)}${extra}`,
    );
  console.log(`\n${"".padEnd(34)}${"p50 ms".padStart(8)}${"p99 ms".padStart(8)}${"n".padStart(4)}  target`);
  const st = r.status as Awaited<ReturnType<typeof benchStatus>> | undefined;
  if (st) {
    line(
      "zsha status (on a host)",
      st.summary.zshaStatus,
      "p99 <= 300",
      `ratio p50 ${st.ratio.p50VsVirshList}x virsh list, ${st.ratio.p50VsNodeStart}x node -e 0`,
    );
    line("  zsha -v (start-up, no RPC)", st.summary.zshaVersion, "");
    line("  ceph status (CLI; the agent runs it in the background)", st.summary.cephStatus, "");
    line("  peer: virsh list", st.summary.virshList, "");
    line("  peer: node -e 0", st.summary.nodeStart, "");
  }
  const m = r.migration as Awaited<ReturnType<typeof benchMigration>> | undefined;
  if (m) {
    line(
      "zsha migrate",
      m.summary.zsha,
      "overhead<=500",
      `overhead p50 ${m.summary.overheadP50Ms} ms, ratio ${m.summary.ratioP50}x`,
    );
    line("  peer: virsh migrate --p2p --live", m.summary.virsh, "");
    if (m.workaround) console.log(`  (${m.problems[0]}; measured after: ${m.workaround})`);
  }
  const f = r.failover as Awaited<ReturnType<typeof benchFailover>> | undefined;
  if (f) {
    line("failover (power loss of the owner)", f.summary.total, "p99 <= 10000", `${f.failures} failed`);
    line("  same, from the agents' logs", f.summary.byLogs, "");
    line("  owner also led Raft", f.summary.totalOwnerLedRaft, "");
    line("  owner was a follower", f.summary.totalOwnerFollower, "");
    line("  detection", f.summary.detect, "", `owner led Raft in ${f.summary.ownerWasLeaderIn}`);
    line("    of which election", f.summary.elected, "");
    line("  re-assignment (first pick failed)", f.summary.reassign, "");
    line("  claim (assigned -> taken)", f.summary.claim, "");
    line("  fencing", f.summary.fence, "");
    line("  start", f.summary.start, "");
  }
  console.log(
    `\nload ${JSON.stringify((r.machine as { loadavg: number[] }).loadavg)} at start; results in ${RESULTS}`,
  );
}
