// The HA agents of three nodes on one virtual clock: the real controller and local managers over a real
// KvStore (leases expiring on the virtual clock), the simulated hypervisors and shared disk of SimWorld.
// After every timer the MN-VM invariant is checked: at most one host runs it with write access to its disk.

import { afterEach, describe, expect, it } from "vitest";
import { HaAgent } from "../../src/ha/agent.js";
import { DEFAULT_TIMING, type HaEnv, type HaLogLevel } from "../../src/ha/env.js";
import { decodeRecord, encodeRecord, HistorySchema, KEYS } from "../../src/ha/records.js";
import { SimWorld } from "../../src/hypervisor/sim.js";
import { SimImageStore } from "../../src/image/sim.js";
import { LocalKv, SimClock } from "./support.js";

const DOMAIN = "zsha-mnvm";
const IMAGE = "/shared/mnvm.img";
const NODES = ["n1", "n2", "n3"];

function domainXml(config: Uint8Array): string {
  const gb = (JSON.parse(new TextDecoder().decode(config)) as { MemorySizeInGB: number }).MemorySizeInGB;
  return `<domain type='qemu'><name>${DOMAIN}</name><memory unit='GiB'>${gb}</memory><devices><disk type='file' device='disk'><source file='${IMAGE}'/></disk></devices></domain>`;
}

class Cluster {
  readonly clock = new SimClock();
  readonly world = new SimWorld(this.clock);
  readonly kv = new LocalKv(this.clock);
  readonly agents = new Map<string, HaAgent>();
  readonly images = new Map<string, SimImageStore>();
  readonly events: string[] = [];
  violations: string[] = [];
  /** Nodes whose KV Txns get no answer (the request may or may not have applied: here it did not). */
  readonly txnUnanswered = new Set<string>();
  /** Called when a live migration from a node returned success (before the agent goes on). */
  onMigrated: ((node: string) => void) | undefined;

  constructor() {
    this.clock.afterEach = () => {
      const w = this.world.writersOf(DOMAIN);
      if (w.length > 1) this.violations.push(`t=${this.clock.now()} two writers: ${w.join(",")}`);
    };
    for (const n of NODES) this.startAgent(n);
    this.kv.leader = "n1";
  }

  env(node: string): HaEnv {
    let image = this.images.get(node);
    if (!image) {
      image = new SimImageStore(this.world, IMAGE);
      this.images.set(node, image);
    }
    const kv = this.kv.forNode(node);
    const hv = this.world.host(node);
    return {
      node,
      agentVersion: "test",
      clock: this.clock,
      kv: {
        ...kv,
        txn: (...a) =>
          this.txnUnanswered.has(node) ? Promise.reject(new Error("deadline exceeded")) : kv.txn(...a),
      },
      hypervisor: new Proxy(hv, {
        get: (t, p) => {
          if (p !== "migrate") {
            const v = Reflect.get(t, p, t) as unknown;
            return typeof v === "function" ? v.bind(t) : v;
          }
          return async (...a: Parameters<typeof hv.migrate>) => {
            const r = await t.migrate(...a);
            this.onMigrated?.(node);
            return r;
          };
        },
      }),
      image,
      probes: { qemuRunning: async () => this.world.host(node).isRunning(DOMAIN), peers: () => ({}) },
      launcher: {
        domainName: DOMAIN,
        domainXml: async (c) => domainXml(c),
        migrationUri: (n) => `sim://${n}`,
      },
      log: (level: HaLogLevel, fields, event) => {
        if (level !== "debug")
          this.events.push(`${this.clock.now()} ${node} ${event} ${JSON.stringify(fields)}`);
      },
      timing: DEFAULT_TIMING,
    };
  }

  startAgent(node: string): void {
    const a = new HaAgent(this.env(node));
    this.agents.set(node, a);
    a.start();
  }

  async stopAgent(node: string): Promise<void> {
    const a = this.agents.get(node)!;
    this.agents.delete(node);
    await this.settle(a.stop());
  }

  /** Advances the virtual clock until `p` settles (it may be waiting on that clock) and returns its value. */
  async settle<T>(p: Promise<T>): Promise<T> {
    let done = false;
    const watched = p.finally(() => {
      done = true;
    });
    watched.catch(() => {});
    await this.clock.until(() => done, 120_000, 50);
    return watched;
  }

  async put(key: string, value: unknown): Promise<void> {
    await this.kv.forNode("operator", 0).put(key, encodeRecord(value));
  }

  async configure(memoryGb = 8): Promise<void> {
    await this.put(KEYS.config, { MemorySizeInGB: memoryGb });
  }

  runningOn(): string[] {
    return this.world.writersOf(DOMAIN);
  }

  async history(): Promise<{ node: string; kind: string; reason: string }[]> {
    const list = await this.kv.forNode("operator", 0).list(KEYS.historyPrefix);
    return list.map((e) => decodeRecord(HistorySchema, e.key, e.value));
  }

  async shutdown(): Promise<void> {
    const stops = [...this.agents.values()].map((a) => a.stop());
    this.agents.clear();
    await this.settle(Promise.allSettled(stops));
  }
}

let cl: Cluster | undefined;
afterEach(async () => {
  await cl?.shutdown();
  cl = undefined;
});

async function ownerEpoch(c: Cluster): Promise<number> {
  const e = await c.kv.forNode("operator", 0).get(KEYS.epoch);
  return (JSON.parse(new TextDecoder().decode(e!.value)) as { epoch: number }).epoch;
}

function migration(c: Cluster, from: string, to: string, epoch: number, state: string) {
  const atMs = c.clock.wallMs();
  return { id: `${epoch}-${atMs}`, from, to, epoch, state, percent: 0, reason: "operator", atMs };
}

/** `zsha migrate`: the record the Migrate API writes (ha-service.ts), on the current owner epoch. */
async function requestMigration(c: Cluster, from: string, to: string): Promise<void> {
  const kv = c.kv.forNode("operator", 0);
  const e = await kv.get(KEYS.epoch);
  const epoch = await ownerEpoch(c);
  const ok = await kv.txn(
    [{ key: KEYS.epoch, target: "modRevision", op: "==", value: e!.modRevision }],
    [{ put: { key: KEYS.migration, value: encodeRecord(migration(c, from, to, epoch, "requested")) } }],
  );
  expect(ok).toBe(true);
}

async function started(): Promise<Cluster> {
  cl = new Cluster();
  await cl.configure();
  await cl.clock.until(() => cl!.runningOn().length === 1, 20_000);
  return cl;
}

describe("HA agents (three nodes, virtual clock)", () => {
  it("starts the MN-VM once on the best node and records an initial start", async () => {
    const c = await started();
    expect(c.runningOn()).toEqual(["n1"]);
    await c.clock.advance(10_000);
    expect(c.runningOn()).toEqual(["n1"]);
    expect((await c.history()).map((h) => [h.node, h.kind])).toEqual([["n1", "initial"]]);
    expect(c.violations).toEqual([]);
  });

  it("fails over when the owner loses power, within the budget, never running two writable copies", async () => {
    const c = await started();
    c.kv.leader = "n2"; // the Raft leader moved off the dead node
    c.world.host("n1").powerOff();
    c.kv.cutOff.add("n1");
    const took = await c.clock.until(() => c.runningOn().length === 1 && c.runningOn()[0] !== "n1", 20_000);
    expect(took).toBeLessThanOrEqual(10_000);
    await c.clock.advance(500); // the start record follows the start by a few ms
    const h = await c.history();
    expect(h.at(-1)).toMatchObject({ kind: "failover", reason: "failover from n1" });
    expect(c.violations).toEqual([]);
  });

  it("an owner cut off from the cluster destroys its own copy before the new owner starts (self-fencing)", async () => {
    const c = await started();
    c.kv.leader = "n2";
    c.kv.cutOff.add("n1"); // n1 still runs qemu, but cannot renew its owner lease
    await c.clock.until(() => !c.world.host("n1").isRunning(DOMAIN), 10_000);
    const selfFencedAt = c.clock.now();
    await c.clock.until(() => c.runningOn().length === 1 && c.runningOn()[0] !== "n1", 20_000);
    expect(c.clock.now()).toBeGreaterThan(selfFencedAt);
    expect(c.events.some((e) => e.includes("n1 ha.self-fence"))).toBe(true);
    expect(c.violations).toEqual([]);
  });

  it("an owner whose agent is frozen (its qemu keeps running) is fenced at the storage level", async () => {
    const c = await started();
    c.kv.leader = "n2";
    await c.stopAgent("n1"); // the agent is gone; its qemu is not
    c.kv.cutOff.add("n1");
    await c.clock.until(() => c.runningOn().length === 1 && c.runningOn()[0] !== "n1", 20_000);
    // The old copy still runs, but it lost its disk: it cannot write.
    expect(c.world.host("n1").isRunning(DOMAIN)).toBe(true);
    expect(c.world.host("n1").isRunningWithWriteAccess(DOMAIN)).toBe(false);
    expect(c.violations).toEqual([]);
  });

  it("drains a node entering maintenance by live migration; the MN-VM never stops", async () => {
    const c = await started();
    let stopped = false;
    const prev = c.clock.afterEach;
    c.clock.afterEach = () => {
      prev?.();
      if (c.world.runningOn(DOMAIN).length === 0) stopped = true;
    };
    await c.put(KEYS.maintenance("n1"), { state: "entering", atMs: c.clock.wallMs(), by: "test" });
    await c.clock.until(() => c.runningOn()[0] === "n2", 20_000);
    await c.clock.until(() => c.events.some((e) => e.includes("maintenance-reached")), 10_000);
    expect(stopped).toBe(false);
    expect((await c.history()).at(-1)).toMatchObject({
      node: "n2",
      kind: "migration",
      reason: "migration from n1",
    });
    expect(c.violations).toEqual([]);
  });

  it("a requested migration starts at once and ownership moves as soon as libvirt is done (no waiting for rounds)", async () => {
    const c = await started();
    await c.clock.advance(2000);
    const asked = c.clock.now();
    await requestMigration(c, "n1", "n2");
    await c.clock.until(() => c.events.some((e) => e.includes("n2 ha.ownership-taken")), 10_000, 5);
    // The simulated libvirt takes 2000 ms; the HA adds KV round trips (a few ms each here), not rounds.
    expect(c.clock.now() - asked).toBeLessThan(2000 + 100);
    expect(c.runningOn()).toEqual(["n2"]);
    expect(c.violations).toEqual([]);
  });

  it("the hand-over Txn after libvirt moved the MN-VM gets no answer: the source lets go instead of restarting it", async () => {
    const c = await started();
    c.onMigrated = (node) => c.txnUnanswered.add(node);
    await requestMigration(c, "n1", "n2");
    await c.clock.until(() => c.events.some((e) => e.includes("n1 ha.migrated")), 10_000);
    expect(c.events.find((e) => e.includes("n1 ha.migrated"))).toContain('"handedOver":false');
    c.txnUnanswered.clear();
    // n1 let go (it revoked its owner lease) rather than restart it as after a guest shutdown: the
    // controller reassigns, the new owner fences before starting, and exactly one copy runs.
    await c.clock.advance(20_000);
    expect(c.runningOn()).toHaveLength(1);
    expect(c.events.some((e) => e.includes("n1 ha.restart-after-stop"))).toBe(false);
    expect(c.violations).toEqual([]);
  });

  it("an agent restarted after its previous life migrated the MN-VM away (record still running) hands over, never restarts it", async () => {
    const c = await started();
    const epoch = await ownerEpoch(c);
    // The previous agent process wrote the record and started the job, then died; libvirt finishes alone.
    await c.stopAgent("n1");
    await c.put(KEYS.migration, migration(c, "n1", "n2", epoch, "running"));
    const job = c.world
      .host("n1")
      .migrate(DOMAIN, "sim://n2", { live: true, persistentOnDest: true, undefineSource: true });
    await c.settle(job);
    c.startAgent("n1"); // within the owner lease: it adopts the ownership, and finds no MN-VM here
    await c.clock.until(() => c.events.some((e) => e.includes("n2 ha.ownership-taken")), 10_000);
    expect(c.events.some((e) => e.includes("n1 ha.migration-hand-over-resumed"))).toBe(true);
    expect(c.events.some((e) => e.includes("n1 ha.restart-after-stop"))).toBe(false);
    await c.clock.advance(5000);
    expect(c.runningOn()).toEqual(["n2"]);
    expect(c.violations).toEqual([]);
  });

  it("a migration record left running while the MN-VM still runs on its owner is marked failed, so HA moves on", async () => {
    const c = await started();
    const epoch = await ownerEpoch(c);
    await c.put(KEYS.migration, migration(c, "n1", "n2", epoch, "running"));
    await c.clock.until(() => c.events.some((e) => e.includes("n1 ha.migration-abandoned")), 5000);
    await c.clock.advance(1000);
    const rec = await c.kv.forNode("operator", 0).get(KEYS.migration);
    expect(JSON.parse(new TextDecoder().decode(rec!.value))).toMatchObject({ state: "failed" });
    expect(c.runningOn()).toEqual(["n1"]);
    expect(c.violations).toEqual([]);
  });

  it("restarts the MN-VM after an in-guest shutdown, with the current config", async () => {
    const c = await started();
    await c.configure(16); // import-config: applies at the next start
    c.world.host("n1").guestShutdown(DOMAIN);
    await c.clock.until(() => !c.world.host("n1").isRunning(DOMAIN), 10_000);
    await c.clock.until(() => c.runningOn().length === 1, 10_000);
    expect(c.runningOn()).toEqual(["n1"]);
    expect(await c.settle(c.world.host("n1").getXml(DOMAIN))).toContain("<memory unit='GiB'>16</memory>");
    expect((await c.history()).at(-1)).toMatchObject({ kind: "restart-after-guest-shutdown" });
  });

  it("stop keeps it down; start brings it back on the best node", async () => {
    const c = await started();
    await c.put(KEYS.desired, { state: "stopped", by: "operator", atMs: c.clock.wallMs() });
    await c.clock.until(() => c.world.runningOn(DOMAIN).length === 0, 20_000);
    await c.clock.advance(15_000);
    expect(c.world.runningOn(DOMAIN)).toEqual([]);
    await c.put(KEYS.desired, { state: "running", by: "operator", atMs: c.clock.wallMs() });
    await c.clock.until(() => c.runningOn().length === 1, 20_000);
    expect((await c.history()).at(-1)).toMatchObject({ kind: "operator" });
  });

  it("global maintenance freezes HA: a dead owner agent causes no failover", async () => {
    const c = await started();
    await c.put(KEYS.globalMaintenance, { enabled: true, atMs: c.clock.wallMs(), by: "test" });
    await c.clock.advance(2000);
    c.kv.leader = "n2";
    await c.stopAgent("n1");
    await c.clock.advance(30_000);
    expect(c.world.runningOn(DOMAIN)).toEqual(["n1"]);
    expect(c.violations).toEqual([]);
  });

  it("start failures move the MN-VM to the next node and are reported", async () => {
    cl = new Cluster();
    const c = cl;
    c.world.host("n1").failStarts(10);
    await c.configure();
    await c.clock.until(() => c.runningOn().length === 1, 30_000);
    expect(c.runningOn()).toEqual(["n2"]);
    expect((await c.history()).at(-1)).toMatchObject({ node: "n2", kind: "failover" });
    expect((await c.history()).at(-1)?.reason).toMatch(/^start failed on n1/);
  });
});
