// Scenario runner in the spirit of Proxmox ha-manager's regression tests: three nodes' real HA agents
// (src/ha) on one virtual clock, over a real KvStore with leases, simulated hypervisors and shared disk. A
// scenario is a command list (`cmds`); the run produces an event log on the virtual clock — the HA's own
// info/warn events, the commands, and checkpoints the runner adds whenever the cluster's visible state
// changes — compared exactly with `expected.log`. The invariant (at most one host runs the MN-VM with
// write access to its disk) is checked after every timer; a violation is written into the log and fails
// the run. The command language is documented in README.md.

import { readFileSync } from "node:fs";
import { create } from "@bufbuild/protobuf";
import { RangeRequestSchema } from "../../src/gen/zsha/kv/v1/kv_pb.js";
import { HaAgent } from "../../src/ha/agent.js";
import { DEFAULT_TIMING, type HaEnv, type HaKv, type HaLogLevel } from "../../src/ha/env.js";
import {
  decodeRecord,
  encodeRecord,
  HistorySchema,
  KEYS,
  type Migration,
  NodeReportSchema,
  OwnerSchema,
} from "../../src/ha/records.js";
import { SimWorld } from "../../src/hypervisor/sim.js";
import { SimImageStore } from "../../src/image/sim.js";
import { LocalKv, SimClock } from "../ha/support.js";

export const DOMAIN = "zsha-mnvm";
const IMAGE = "/shared/mnvm.img";
export const NODES = ["n1", "n2", "n3"] as const;
const WALL0 = new SimClock().wallMs();

function memoryGb(config: Uint8Array): number {
  return (JSON.parse(new TextDecoder().decode(config)) as { MemorySizeInGB: number }).MemorySizeInGB;
}

function domainXml(memoryGb: number): string {
  return `<domain type='qemu'><name>${DOMAIN}</name><memory unit='GiB'>${memoryGb}</memory><devices><disk type='file' device='disk'><source file='${IMAGE}'/></disk></devices></domain>`;
}

export class ScenarioError extends Error {
  override readonly name = "ScenarioError";
}

/** `10s`, `1.5s`, `250ms` → milliseconds. */
export function parseDuration(s: string, where: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(s);
  if (!m) throw new ScenarioError(`${where}: "${s}" is not a duration (use 10s, 1.5s, 250ms or 2m)`);
  const n = Number(m[1]);
  return Math.round(m[2] === "ms" ? n : m[2] === "s" ? n * 1000 : n * 60_000);
}

function fmtTime(ms: number): string {
  return `${(ms / 1000).toFixed(3)}s`.padStart(9);
}

/**
 * A node's agent process: SIGSTOP-like. While frozen, none of its calls is issued or returns and none of
 * its sleeps ends; the world (clock, leases, its qemu) goes on. A killed agent stays frozen for ever.
 */
class Gate {
  frozen = false;
  private waiters: (() => void)[] = [];

  pass(): Promise<void> {
    if (!this.frozen) return Promise.resolve();
    return new Promise((r) => this.waiters.push(r));
  }

  thaw(): void {
    this.frozen = false;
    const w = this.waiters;
    this.waiters = [];
    for (const r of w) r();
  }
}

/** `target` with the async methods named in `methods` held at `gate` before they are issued and after. */
function gated<T extends object>(target: T, gate: Gate, methods: readonly string[]): T {
  return new Proxy(target, {
    get(t, p) {
      const v = Reflect.get(t, p, t) as unknown;
      if (typeof v !== "function") return v;
      const f = v as (...a: unknown[]) => unknown;
      if (typeof p !== "string" || !methods.includes(p)) return f.bind(t);
      return async (...args: unknown[]) => {
        await gate.pass();
        const out = await f.apply(t, args);
        await gate.pass();
        return out;
      };
    },
  });
}

/** `kv` whose watch callbacks (code of the agent process) run only while the agent is not frozen. */
function watchGated(kv: HaKv, gate: Gate): HaKv {
  return {
    ...kv,
    watch: (prefix, onChange) => kv.watch(prefix, (c) => void gate.pass().then(() => onChange(c))),
  };
}

const KV_METHODS = ["get", "list", "txn", "put", "leaseGrant", "leaseKeepAlive", "leaseRevoke"];
const HV_METHODS = ["state", "define", "start", "shutdown", "destroy", "undefine", "getXml", "migrate"];
const IMAGE_METHODS = ["check", "fence", "claim", "renew", "release", "health", "readProbe"];

interface Node {
  readonly name: string;
  agent: HaAgent | undefined;
  gate: Gate;
  readonly image: SimImageStore;
}

export interface ScenarioResult {
  readonly log: string;
  readonly violations: readonly string[];
}

/** Renders one log field's value: wall-clock times as seconds on the scenario clock, strings quoted. */
function fmtValue(key: string, v: unknown): string | undefined {
  if (v === null || v === undefined) return "-";
  if (typeof v === "bigint" || typeof v === "boolean") return String(v);
  if (typeof v === "number") {
    if (/Ms$/.test(key) && v > 1e12) return `${((v - WALL0) / 1000).toFixed(3)}s`;
    return String(v);
  }
  if (typeof v === "string") return /^[\w./:@>-]+$/.test(v) ? v : JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map((x) => fmtValue(key, x)).join(",")}]`;
  return undefined;
}

/** key=value pairs; nested objects flattened (`owner.node=n1`); lease ids dropped (allocation order). */
function fmtFields(fields: Record<string, unknown>, prefix = ""): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(fields)) {
    if (k === "lease" || k === "atMs") continue;
    // The controller's decision reads best as its kind followed by its own fields.
    if (k === "decision" && v && typeof v === "object") {
      const { kind, ...rest } = v as Record<string, unknown>;
      out.push(`decision=${String(kind)}`, ...fmtFields(rest));
      continue;
    }
    const s = fmtValue(k, v);
    if (s !== undefined) out.push(`${prefix}${k}=${s}`);
    else out.push(...fmtFields(v as Record<string, unknown>, `${prefix}${k}.`));
  }
  return out;
}

export class Scenario {
  readonly clock = new SimClock();
  readonly world = new SimWorld(this.clock);
  readonly kv = new LocalKv(this.clock);
  private readonly operator: HaKv = this.kv.forNode("operator", 0);
  private readonly nodes = new Map<string, Node>();
  private readonly lines: string[] = [];
  readonly violations: string[] = [];
  private lastVm = "";
  private lastOwner = "";
  private lastReporting = "";
  private readonly lastHealth = new Map<string, string>();
  private readonly seenReport = new Map<string, bigint>();

  constructor() {
    for (const n of NODES)
      this.nodes.set(n, {
        name: n,
        agent: undefined,
        gate: new Gate(),
        image: new SimImageStore(this.world, IMAGE),
      });
    this.clock.afterEach = () => this.checkpoint();
  }

  private emit(line: string): void {
    this.lines.push(`${fmtTime(this.clock.now())} ${line}`);
  }

  private node(name: string | undefined, where: string): Node {
    const n = name === undefined ? undefined : this.nodes.get(name);
    if (!n) throw new ScenarioError(`${where}: unknown node "${name}" (nodes: ${NODES.join(", ")})`);
    return n;
  }

  private env(n: Node): HaEnv {
    const gate = n.gate;
    const clock = this.clock;
    return {
      node: n.name,
      agentVersion: "test",
      clock: {
        now: () => clock.now(),
        wallMs: () => clock.wallMs(),
        sleep: async (ms) => {
          await clock.sleep(ms);
          await gate.pass();
        },
      },
      kv: gated(watchGated(this.kv.forNode(n.name), gate), gate, KV_METHODS),
      hypervisor: gated(this.world.host(n.name), gate, HV_METHODS),
      image: gated(n.image, gate, IMAGE_METHODS),
      probes: {
        qemuRunning: async () => {
          await gate.pass();
          return this.world.host(n.name).isRunning(DOMAIN);
        },
        peers: () => ({}),
      },
      launcher: {
        domainName: DOMAIN,
        domainXml: async (config) => {
          const gb = memoryGb(config);
          this.emit(`${n.name} (domain XML built: memory=${gb}GiB)`);
          return domainXml(gb);
        },
        migrationUri: (to) => `sim://${to}`,
      },
      log: (level: HaLogLevel, fields, event) => {
        if (level === "debug") return;
        const lv = level === "info" ? "" : `${level.toUpperCase()} `;
        this.emit(`${n.name} ${lv}${event} ${fmtFields(fields).join(" ")}`.trimEnd());
      },
      timing: DEFAULT_TIMING,
    };
  }

  private startAgent(n: Node): void {
    n.gate = new Gate();
    n.agent = new HaAgent(this.env(n));
    n.agent.start();
  }

  /** The agent process dies where it stands: no call of it is ever issued again, its leases just expire. */
  private killAgent(n: Node): void {
    n.gate.frozen = true;
    n.agent = undefined;
  }

  /** After every timer: the invariant, then a line for each change an operator would see in `zsha status`. */
  checkpoint(): void {
    const writers = this.world.writersOf(DOMAIN);
    if (writers.length > 1) {
      const v = `${fmtTime(this.clock.now())} !! VIOLATION: ${writers.length} hosts run the MN-VM with write access: ${writers.join(", ")}`;
      this.violations.push(v);
      this.lines.push(v);
    }
    const running = this.world.runningOn(DOMAIN);
    const vm =
      running.length === 0
        ? "not running"
        : `running on ${running.map((h) => (writers.includes(h) ? h : `${h} (fenced: no write access)`)).join(", ")}`;
    if (vm !== this.lastVm) {
      this.lastVm = vm;
      this.emit(`-- mnvm ${vm}`);
    }
    const range = (prefix: string) =>
      this.kv.store.range(create(RangeRequestSchema, { key: new TextEncoder().encode(prefix), prefix: true }))
        .kvs;
    const ownerKv = range(KEYS.owner)[0];
    const owner = ownerKv ? decodeRecord(OwnerSchema, KEYS.owner, ownerKv.value) : undefined;
    const o = owner ? `${owner.node} (epoch ${owner.epoch})` : "none";
    if (o !== this.lastOwner) {
      this.lastOwner = o;
      this.emit(`-- owner ${o}`);
    }
    const reporting = range(KEYS.nodesPrefix)
      .map((e) => new TextDecoder().decode(e.key).slice(KEYS.nodesPrefix.length))
      .join(" ");
    if (reporting !== this.lastReporting) {
      this.lastReporting = reporting;
      this.emit(`-- nodes reporting: ${reporting || "none"}`);
    }
    // What each live report says about the node's health (not the MN-VM state: the lines above show it).
    for (const e of range(KEYS.nodesPrefix)) {
      const key = new TextDecoder().decode(e.key);
      if (this.seenReport.get(key) === e.modRevision) continue; // decoding every report per timer is slow
      this.seenReport.set(key, e.modRevision);
      const r = decodeRecord(NodeReportSchema, key, e.value);
      const qemu = r.qemuRunning ? ` (qemu ${r.qemuRunning.value ? "running" : "not running"})` : "";
      const health = `hypervisor ${r.hypervisor.value ? "ok" : "not answering"}${qemu}, image ${r.image.value ? "ok" : "unreachable"}, start failures ${r.startFailures.length}`;
      if (this.lastHealth.get(r.node) !== health) {
        this.lastHealth.set(r.node, health);
        this.emit(`-- ${r.node} reports: ${health}`);
      }
    }
  }

  private async put(key: string, value: unknown): Promise<void> {
    await this.operator.put(key, encodeRecord(value));
  }

  /** One command at the current virtual time. */
  async exec(words: string[], where: string): Promise<void> {
    const [cmd, ...args] = words;
    const arg = (i: number, what: string): string => {
      const a = args[i];
      if (a === undefined) throw new ScenarioError(`${where}: ${cmd} needs ${what}`);
      return a;
    };
    const now = this.clock.wallMs();
    switch (cmd) {
      case "leader": {
        const l = arg(0, "a node name or none");
        this.kv.leader = l === "none" ? undefined : this.node(l, where).name;
        return;
      }
      case "start-agent":
        this.startAgent(this.node(arg(0, "a node"), where));
        return;
      case "kill-agent":
        this.killAgent(this.node(arg(0, "a node"), where));
        return;
      case "freeze-agent":
        this.node(arg(0, "a node"), where).gate.frozen = true;
        return;
      case "thaw-agent":
        this.node(arg(0, "a node"), where).gate.thaw();
        return;
      case "power-off": {
        // Sudden power loss: the agent and qemu die, nothing is sent, the node is unreachable.
        const n = this.node(arg(0, "a node"), where);
        this.killAgent(n);
        this.world.host(n.name).powerOff();
        this.kv.cutOff.add(n.name);
        n.image.unreachable = true;
        return;
      }
      case "shutdown": {
        // Orderly shutdown of a node (systemd stops the agent, which drops its node lease), then off.
        const n = this.node(arg(0, "a node"), where);
        // Runs on the virtual clock while later commands proceed, as a real shutdown does.
        const agent = n.agent;
        n.agent = undefined;
        void (agent ? agent.stop() : Promise.resolve()).then(() => {
          this.world.host(n.name).powerOff();
          this.kv.cutOff.add(n.name);
          n.image.unreachable = true;
          this.emit(`${n.name} (agent stopped, host powered off)`);
        });
        return;
      }
      case "power-on": {
        const n = this.node(arg(0, "a node"), where);
        this.world.host(n.name).powerOn();
        this.kv.cutOff.delete(n.name);
        n.image.unreachable = false;
        this.startAgent(n);
        return;
      }
      case "cut": {
        // Full network loss: neither the cluster nor the storage network answers; the host runs on.
        const n = this.node(arg(0, "a node"), where);
        this.kv.cutOff.add(n.name);
        n.image.unreachable = true;
        return;
      }
      case "heal": {
        const n = this.node(arg(0, "a node"), where);
        this.kv.cutOff.delete(n.name);
        n.image.unreachable = false;
        return;
      }
      case "hang-libvirt":
        this.world.host(this.node(arg(0, "a node"), where).name).hang();
        return;
      case "unhang-libvirt":
        this.world.host(this.node(arg(0, "a node"), where).name).unhang();
        return;
      case "fail-migration":
        this.world.host(this.node(arg(0, "a node"), where).name).failNextMigration();
        return;
      case "virsh-start": {
        // An operator starts the MN-VM by hand behind HA's back (`virsh start`): nothing fences that.
        const h = this.world.host(this.node(arg(0, "a node"), where).name);
        void h
          .define(domainXml(8))
          .then(() => h.start(DOMAIN))
          .catch((e: Error) => this.emit(`${h.hostName} (virsh start failed: ${e.message})`));
        return;
      }
      case "fail-starts":
        this.world
          .host(this.node(arg(0, "a node"), where).name)
          .failStarts(Number.parseInt(arg(1, "a count"), 10));
        return;
      case "guest-shutdown": {
        const on = this.world.runningOn(DOMAIN);
        if (on.length !== 1) throw new ScenarioError(`${where}: the MN-VM runs on ${on.length} hosts, not 1`);
        this.world.host(on[0]!).guestShutdown(DOMAIN);
        return;
      }
      case "migrate": {
        // What the HA API writes for `zsha migrate <target>`: the intent, on the current owner epoch.
        const to = this.node(arg(0, "a target node"), where).name;
        const e = await this.operator.get(KEYS.owner);
        if (!e) throw new ScenarioError(`${where}: migrate: the MN-VM has no owner at this time`);
        const owner = decodeRecord(OwnerSchema, KEYS.owner, e.value);
        const m: Migration = {
          id: `${owner.epoch}-${now}`,
          from: owner.node,
          to,
          epoch: owner.epoch,
          state: "requested",
          percent: 0,
          reason: `zsha migrate ${to}`,
          atMs: now,
        };
        await this.put(KEYS.migration, m);
        return;
      }
      case "maintenance": {
        const mode = arg(0, "enable or disable");
        const n = this.node(arg(1, "a node"), where).name;
        if (mode === "enable")
          await this.put(KEYS.maintenance(n), { state: "entering", atMs: now, by: "operator" });
        else if (mode === "disable") await this.operator.txn([], [{ delete: { key: KEYS.maintenance(n) } }]);
        else throw new ScenarioError(`${where}: maintenance takes enable or disable, not "${mode}"`);
        return;
      }
      case "stop":
      case "start":
        await this.put(KEYS.desired, {
          state: cmd === "stop" ? "stopped" : "running",
          by: "operator",
          atMs: now,
        });
        return;
      case "reset-password":
        // What the HA API writes for `zsha reset-MNVM-password` (after checking AllowResetRootPassword).
        await this.put(KEYS.passwordReset, { id: `reset-${now}`, state: "requested", atMs: now });
        return;
      case "global-maintenance": {
        const on = arg(0, "on or off");
        if (on !== "on" && on !== "off")
          throw new ScenarioError(`${where}: global-maintenance takes on or off`);
        await this.put(KEYS.globalMaintenance, { enabled: on === "on", atMs: now, by: "operator" });
        return;
      }
      case "import-config": {
        const m = /^memory=(\d+)$/.exec(arg(0, "memory=<GiB>"));
        if (!m) throw new ScenarioError(`${where}: import-config takes memory=<GiB>`);
        await this.put(KEYS.config, { MemorySizeInGB: Number(m[1]) });
        return;
      }
      default:
        throw new ScenarioError(`${where}: unknown command "${cmd}"`);
    }
  }

  /** Parses and runs `cmds`; returns the log. */
  async run(cmds: string): Promise<ScenarioResult> {
    const steps = cmds
      .split("\n")
      .map((raw, i) => ({ line: raw.replace(/#.*/, "").trim(), where: `cmds:${i + 1}` }));
    // Every scenario starts the same way: three agents, n1 leads, the cluster config (8 GiB) stored.
    await this.put(KEYS.config, { MemorySizeInGB: 8 });
    this.kv.leader = "n1";
    for (const n of this.nodes.values()) this.startAgent(n);
    for (const { line, where } of steps) {
      if (!line) continue;
      const words = line.split(/\s+/);
      if (words[0] === "run") {
        await this.clock.advance(parseDuration(words[1] ?? "", where));
        continue;
      }
      if (words[0] !== "at")
        throw new ScenarioError(`${where}: a line starts with "at <time>" or "run <duration>"`);
      const at = parseDuration(words[1] ?? "", where);
      if (at < this.clock.now())
        throw new ScenarioError(`${where}: at ${words[1]} is before the current time ${this.clock.now()} ms`);
      await this.clock.advance(at - this.clock.now());
      this.emit(`>> ${words.slice(2).join(" ")}`);
      await this.exec(words.slice(2), where);
      this.checkpoint();
    }
    await this.summary();
    return { log: `${this.lines.join("\n")}\n`, violations: this.violations };
  }

  /** The start history as `zsha status --history` would list it. */
  private async summary(): Promise<void> {
    this.lines.push("== history (/zsha/mnvm/history)");
    for (const e of await this.operator.list(KEYS.historyPrefix)) {
      const h = decodeRecord(HistorySchema, e.key, e.value);
      this.lines.push(
        `${fmtTime(h.atMs - WALL0)} ${h.node} epoch=${h.epoch} kind=${h.kind} reason=${JSON.stringify(h.reason)}`,
      );
    }
  }

  /** Leaves no loop waiting: kills every agent (their pending timers are dropped with the scenario). */
  dispose(): void {
    for (const n of this.nodes.values()) this.killAgent(n);
  }
}

export async function runScenario(cmdsPath: string): Promise<ScenarioResult> {
  const s = new Scenario();
  try {
    return await s.run(readFileSync(cmdsPath, "utf8"));
  } finally {
    s.dispose();
  }
}
