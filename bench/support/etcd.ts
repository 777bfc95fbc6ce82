// The peer: a 3-member etcd 3.4 (Debian `etcd-server`) on loopback, started as in
// ../../../shared/recipes/etcd-peer.md, driven through the `etcd3` npm client.

import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Etcd3, type IOptions } from "etcd3";
import { freePorts, killHard, type Proc, startProcess, waitFor } from "./procs.js";
import type { Cluster, Driver } from "./system.js";

type Policy = NonNullable<NonNullable<IOptions["faultHandling"]>["global"]>;

/**
 * A pass-through fault policy: one attempt, no circuit breaker. The probes of the leader-kill rounds must
 * see each failure as it happens, not the client's retries or a breaker that stays open for seconds.
 */
const oneAttempt = {
  execute: <T>(fn: (ctx: { signal: AbortSignal; attempt: number }) => PromiseLike<T> | T) =>
    Promise.resolve().then(() => fn({ signal: new AbortController().signal, attempt: 0 })),
} as unknown as Policy;

/** Finds `etcd`, installing Debian's etcd-server with apt-get when it is missing (needs root). */
export function ensureEtcd(): string {
  const bin = "/usr/bin/etcd";
  if (existsSync(bin)) return bin;
  if (process.getuid?.() !== 0) {
    throw new Error("etcd is not installed; run as root (the bench installs etcd-server) or apt-get it");
  }
  console.error("bench: installing etcd-server with apt-get");
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  execFileSync("apt-get", ["update"], { stdio: "inherit", env });
  execFileSync("apt-get", ["install", "-y", "--no-install-recommends", "etcd-server"], {
    stdio: "inherit",
    env,
  });
  if (!existsSync(bin)) throw new Error("apt-get installed etcd-server but /usr/bin/etcd is missing");
  return bin;
}

export function etcdVersion(bin: string): string {
  return execFileSync(bin, ["--version"], { encoding: "utf8" }).split("\n")[0] ?? "unknown";
}

function driver(client: Etcd3): Driver {
  return {
    async put(key, value) {
      await client
        .put(key)
        .value(Buffer.from(value.buffer, value.byteOffset, value.byteLength))
        .exec();
    },
    async get(key) {
      await client.get(key).exec();
    },
    close: () => client.close(),
  };
}

export class EtcdCluster implements Cluster {
  readonly name = "etcd";
  readonly size = 3;
  private procs: (Proc | undefined)[] = [];
  private clientPorts: number[] = [];
  private peerPorts: number[] = [];
  private memberIds: string[] = [];
  private probes: Etcd3[] = [];

  constructor(
    private readonly bin: string,
    private readonly dir: string,
    private readonly timing: { heartbeatMs: number; electionMs: number },
  ) {}

  private url(i: number): string {
    return `http://127.0.0.1:${this.clientPorts[i]}`;
  }

  private spawn(i: number, state: "new" | "existing"): void {
    const name = `e${i + 1}`;
    const peers = this.peerPorts.map((p, j) => `e${j + 1}=http://127.0.0.1:${p}`).join(",");
    const peerUrl = `http://127.0.0.1:${this.peerPorts[i]}`;
    this.procs[i] = startProcess(
      this.bin,
      [
        `--name=${name}`,
        `--data-dir=${join(this.dir, name)}`,
        `--listen-client-urls=${this.url(i)}`,
        `--advertise-client-urls=${this.url(i)}`,
        `--listen-peer-urls=${peerUrl}`,
        `--initial-advertise-peer-urls=${peerUrl}`,
        `--initial-cluster=${peers}`,
        "--initial-cluster-token=bench",
        `--initial-cluster-state=${state}`,
        `--heartbeat-interval=${this.timing.heartbeatMs}`,
        `--election-timeout=${this.timing.electionMs}`,
        "--listen-metrics-urls=",
        "--logger=zap",
        `--log-outputs=${join(this.dir, `${name}.log`)}`,
      ],
      join(this.dir, `${name}.out`),
    );
  }

  /** A single-member client without retries or circuit breaker, for status and failover probes. */
  private single(i: number, deadlineMs: number): Etcd3 {
    return new Etcd3({
      hosts: this.url(i),
      defaultCallOptions: () => ({ deadline: new Date(Date.now() + deadlineMs) }),
      faultHandling: { host: () => oneAttempt, global: oneAttempt },
    });
  }

  async start(): Promise<void> {
    const ports = await freePorts(2 * this.size);
    this.clientPorts = ports.slice(0, this.size);
    this.peerPorts = ports.slice(this.size);
    for (let i = 0; i < this.size; i++) this.spawn(i, "new");
    this.probes = Array.from({ length: this.size }, (_, i) => this.single(i, 1000));
    this.memberIds = await Promise.all(
      this.probes.map((p, i) =>
        waitFor(`etcd member e${i + 1} answering`, 30_000, async () => {
          const s = await p.maintenance.status();
          return s.header.member_id;
        }),
      ),
    );
    await waitFor("an etcd leader", 30_000, () => this.leader());
  }

  client(): Driver {
    return driver(
      new Etcd3({
        hosts: this.clientPorts.map((_, i) => this.url(i)),
        defaultCallOptions: () => ({ deadline: new Date(Date.now() + 10_000) }),
      }),
    );
  }

  memberClient(i: number, deadlineMs: number): Driver {
    return driver(this.single(i, deadlineMs));
  }

  async leader(): Promise<number | undefined> {
    const views = await Promise.all(
      this.probes.map((p, i) =>
        this.procs[i]
          ? p.maintenance.status().then(
              (s) => s.leader,
              () => undefined,
            )
          : undefined,
      ),
    );
    const live = views.filter((_, i) => this.procs[i] !== undefined);
    const first = live[0];
    if (!first || first === "0" || live.some((v) => v !== first)) return undefined;
    const idx = this.memberIds.indexOf(first);
    return idx >= 0 ? idx : undefined;
  }

  async kill(i: number): Promise<void> {
    const p = this.procs[i];
    this.procs[i] = undefined;
    if (p) await killHard(p);
  }

  async restart(i: number): Promise<void> {
    this.spawn(i, "existing");
    await waitFor(`etcd member e${i + 1} back and following`, 30_000, async () => {
      const s = await this.probes[i]!.maintenance.status();
      return s.leader !== "0" && (await this.leader()) !== undefined ? true : undefined;
    });
  }

  async routing(): Promise<string> {
    return "etcd3 picks a random endpoint per call (2 in 3 calls land on a follower, which forwards writes and runs ReadIndex)";
  }

  async stop(): Promise<void> {
    for (const p of this.probes) p.close();
    this.probes = [];
    await Promise.all(this.procs.map((p) => (p ? killHard(p) : undefined)));
    this.procs = [];
  }
}
