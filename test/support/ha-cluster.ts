// Agents with HA on loopback, as real processes: each one a "host" (libvirt's in-process test driver, or the
// simulated driver without our binding), a FileConf image in a shared temp folder. Used by the real-process
// HA tests and by `npm run bench:failover`.

import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KvClient, text } from "../../src/client/kv-client.js";
import { KEYS } from "../../src/ha/records.js";
import { loadLibvirt } from "../../src/hypervisor/libvirt.js";
import { freePort, until } from "./cluster.js";

const ROOT = join(import.meta.dirname, "..", "..");

export interface HaProc {
  readonly name: string;
  readonly args: string[];
  readonly client: string;
  readonly log: string;
  proc?: ChildProcess;
}

export class HaCluster {
  readonly procs = new Map<string, HaProc>();
  readonly kv: KvClient;

  private constructor(
    readonly dir: string,
    readonly names: string[],
    readonly hypervisor: string,
  ) {
    this.kv = new KvClient({ endpoints: ["unix:/nonexistent"], deadlineMs: 3000 });
  }

  /** Starts `size` agents with HA and stores a FileConf config naming them. */
  static async start(size = 3, label = "ha"): Promise<HaCluster> {
    const hypervisor = (await loadLibvirt()).ok ? "test:///default" : "sim";
    const names = Array.from({ length: size }, (_, i) => `n${i + 1}`);
    const dir = mkdtempSync(join(tmpdir(), `zsha-${label}-`));
    const c = new HaCluster(dir, names, hypervisor);
    const shared = join(dir, "shared");
    mkdirSync(shared);
    writeFileSync(join(shared, "mnvm.img"), Buffer.alloc(1 << 20));
    const ports = await Promise.all(names.flatMap(() => [freePort(), freePort()]));
    const peers = names.map((n, i) => `${n}=127.0.0.1:${ports[2 * i]}`).join(",");
    names.forEach((name, i) => {
      const client = `127.0.0.1:${ports[2 * i + 1]}`;
      const p: HaProc = {
        name,
        client,
        log: join(dir, `${name}.log`),
        args: [
          ...["--name", name, "--peer-listen", `127.0.0.1:${ports[2 * i]}`, "--client-listen", client],
          ...["--data-dir", join(dir, name), "--initial-cluster", peers],
          ...["--hypervisor-uri", hypervisor, "--seed-dir", join(dir, name, "seed")],
        ],
      };
      c.procs.set(name, p);
      c.startAgent(name);
    });
    (c as { kv: KvClient }).kv = c.client(names);
    const sample = JSON.parse(readFileSync(join(ROOT, "deploy/samples/FileConf.config.json"), "utf8"));
    const config = {
      ...sample,
      Node: names.map((n, i) => `127.0.0.${11 + i} ${n}`),
      ChronyServers: ["127.0.0.11"],
      ImageFolder: shared,
      DomainType: "qemu",
    };
    await until(
      "the cluster to accept the config",
      () => c.kv.put(KEYS.config, JSON.stringify(config)).then(() => true),
      30_000,
      200,
    );
    return c;
  }

  client(names: string[]): KvClient {
    return new KvClient({ endpoints: names.map((n) => this.procs.get(n)!.client), deadlineMs: 3000 });
  }

  startAgent(name: string): void {
    const p = this.procs.get(name)!;
    const fd = openSync(p.log, "a");
    p.proc = spawn(process.execPath, ["--import", "tsx", join(ROOT, "cmd/agent.ts"), ...p.args], {
      cwd: ROOT,
      stdio: ["ignore", fd, fd],
    });
    closeSync(fd);
  }

  /** kill -9 (a host's power loss: the test driver's domains live in the process). */
  async kill(name: string): Promise<void> {
    const p = this.procs.get(name)!;
    const proc = p.proc;
    if (!proc) return;
    p.proc = undefined;
    await new Promise<void>((r) => {
      proc.once("exit", () => r());
      proc.kill("SIGKILL");
    });
  }

  /** The agent's pino log lines with `msg`, parsed (lines cut by kill -9 skipped). */
  events(name: string, msg: string): Array<Record<string, unknown>> {
    const out: Array<Record<string, unknown>> = [];
    for (const line of readFileSync(this.procs.get(name)!.log, "utf8").split("\n")) {
      if (!line.includes(`"msg":"${msg}"`)) continue;
      try {
        out.push(JSON.parse(line));
      } catch {
        // cut by kill -9
      }
    }
    return out;
  }

  async stop(): Promise<void> {
    this.kv.close();
    await Promise.all(this.names.map((n) => this.kill(n)));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The node whose owner record exists and whose report says the MN-VM runs, per `client`. */
export async function runningOn(client: KvClient): Promise<string | undefined> {
  const o = await client.getValue(KEYS.owner, { deadlineMs: 1000 });
  if (!o) return undefined;
  const owner = JSON.parse(text(o.value)) as { node: string };
  const r = await client.getValue(KEYS.node(owner.node), { deadlineMs: 1000 });
  if (!r) return undefined;
  const report = JSON.parse(text(r.value)) as { mnvm?: { value: string } };
  return report.mnvm?.value === "running" ? owner.node : undefined;
}
