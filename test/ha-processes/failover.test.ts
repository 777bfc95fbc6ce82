// The HA on real processes: three agents on loopback (real level, gRPC, Raft), each with libvirt's in-process
// test driver as its own "host" (state lives in the process, so kill -9 is a host's power loss), and a
// FileConf image in a shared temp folder. Issue 5's "real processes" proof.

import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KvClient, text } from "../../src/client/kv-client.js";
import { KEYS } from "../../src/ha/records.js";
import { loadLibvirt } from "../../src/hypervisor/libvirt.js";
import { freePort, until } from "../support/cluster.js";

const ROOT = join(import.meta.dirname, "..", "..");
const NAMES = ["n1", "n2", "n3"];
// libvirt's test driver when our binding is built (CI installs libvirt-dev), else the simulated driver:
// either way each process is its own host.
const HYPERVISOR = (await loadLibvirt()).ok ? "test:///default" : "sim";

interface Proc {
  name: string;
  args: string[];
  client: string;
  log: string;
  proc?: ChildProcess;
}

let dir: string;
const procs = new Map<string, Proc>();
let kv: KvClient;

function start(p: Proc): void {
  const fd = openSync(p.log, "a");
  p.proc = spawn(process.execPath, ["--import", "tsx", join(ROOT, "cmd/agent.ts"), ...p.args], {
    cwd: ROOT,
    stdio: ["ignore", fd, fd],
  });
  closeSync(fd);
}

async function kill(p: Proc): Promise<void> {
  const proc = p.proc;
  if (!proc) return;
  p.proc = undefined;
  await new Promise<void>((r) => {
    proc.once("exit", () => r());
    proc.kill("SIGKILL");
  });
}

function events(p: Proc, msg: string): number {
  return readFileSync(p.log, "utf8")
    .split("\n")
    .filter((l) => l.includes(`"msg":"${msg}"`)).length;
}

/** The owner record and whether its node reports the MN-VM running, as the cluster says. */
async function running(client: KvClient): Promise<string | undefined> {
  const o = await client.getValue(KEYS.owner, { deadlineMs: 1000 });
  if (!o) return undefined;
  const owner = JSON.parse(text(o.value)) as { node: string };
  const r = await client.getValue(KEYS.node(owner.node), { deadlineMs: 1000 });
  if (!r) return undefined;
  const report = JSON.parse(text(r.value)) as { mnvm?: { value: string } };
  return report.mnvm?.value === "running" ? owner.node : undefined;
}

describe(`HA on real agent processes (${HYPERVISOR}, FileConf)`, () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "zsha-ha-"));
    const shared = join(dir, "shared");
    mkdirSync(shared);
    writeFileSync(join(shared, "mnvm.img"), Buffer.alloc(1 << 20));
    const ports = await Promise.all(NAMES.flatMap(() => [freePort(), freePort()]));
    const peers = NAMES.map((n, i) => `${n}=127.0.0.1:${ports[2 * i]}`).join(",");
    NAMES.forEach((name, i) => {
      const client = `127.0.0.1:${ports[2 * i + 1]}`;
      const p: Proc = {
        name,
        client,
        log: join(dir, `${name}.log`),
        args: [
          "--name",
          name,
          "--peer-listen",
          `127.0.0.1:${ports[2 * i]}`,
          "--client-listen",
          client,
          "--data-dir",
          join(dir, name),
          "--initial-cluster",
          peers,
          "--hypervisor-uri",
          HYPERVISOR,
          "--seed-dir",
          join(dir, name, "seed"),
        ],
      };
      procs.set(name, p);
      start(p);
    });
    kv = new KvClient({ endpoints: NAMES.map((n) => procs.get(n)!.client), deadlineMs: 3000 });
    const sample = JSON.parse(readFileSync(join(ROOT, "deploy/samples/FileConf.config.json"), "utf8"));
    const config = {
      ...sample,
      Node: ["127.0.0.11 n1", "127.0.0.12 n2", "127.0.0.13 n3"],
      ChronyServers: ["127.0.0.11"],
      ImageFolder: shared,
      DomainType: "qemu",
    };
    await until(
      "the cluster to accept the config",
      () => kv.put(KEYS.config, JSON.stringify(config)).then(() => true),
      30_000,
      200,
    );
  }, 60_000);

  afterAll(async () => {
    kv?.close();
    await Promise.all([...procs.values()].map(kill));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("starts the MN-VM on one node, fails over when that node's agent is killed, and the old node does not start it again", async () => {
    const first = await until("the MN-VM running somewhere", () => running(kv), 40_000, 200);
    const t0 = performance.now();
    await kill(procs.get(first)!);
    const others = new KvClient({
      endpoints: NAMES.filter((n) => n !== first).map((n) => procs.get(n)!.client),
      deadlineMs: 3000,
    });
    try {
      const second = await until(
        "the MN-VM running on another node",
        async () => {
          const n = await running(others);
          return n && n !== first ? n : undefined;
        },
        40_000,
        200,
      );
      const failoverMs = performance.now() - t0;
      console.log(`failover ${first} -> ${second}: ${Math.round(failoverMs)} ms`);
      expect(second).not.toBe(first);
      // The old node comes back: it must not start the MN-VM (the owner is elsewhere).
      start(procs.get(first)!);
      await new Promise((r) => setTimeout(r, 8000));
      expect(await running(kv)).toBe(second);
      expect(events(procs.get(first)!, "ha.started")).toBe(1); // only its first life's start
    } finally {
      others.close();
    }
  }, 120_000);

  it("with two agents down nobody runs it (the cut-off copy stops itself); with a majority back it runs again", async () => {
    const owner = await until("the MN-VM running", () => running(kv), 40_000, 200);
    const others = NAMES.filter((n) => n !== owner);
    // Kill the two others: the owner is alone, without quorum, and must fence itself.
    await Promise.all(others.map((n) => kill(procs.get(n)!)));
    const lone = procs.get(owner)!;
    await until("the lone owner to destroy its copy", () => events(lone, "ha.self-fence") > 0, 20_000, 200);
    // Majority back: the MN-VM runs again (on any node).
    for (const n of others) start(procs.get(n)!);
    const back = await until("the MN-VM running again", () => running(kv), 60_000, 300);
    expect(NAMES).toContain(back);
  }, 150_000);
});
