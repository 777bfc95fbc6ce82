// zsha under test: three `cmd/agent.ts` processes on loopback, driven through the zsha KvClient.

import { join } from "node:path";
import { KvClient } from "../../src/client/kv-client.js";
import { freePorts, killHard, type Proc, startProcess, stopGently, waitFor } from "./procs.js";
import type { Cluster, Driver } from "./system.js";

function driver(client: KvClient): Driver {
  return {
    async put(key, value) {
      await client.put(key, value);
    },
    async get(key) {
      await client.get(key);
    },
    close: () => client.close(),
  };
}

export class ZshaCluster implements Cluster {
  readonly name = "zsha";
  readonly size = 3;
  private procs: (Proc | undefined)[] = [];
  private clientPorts: number[] = [];
  private peerPorts: number[] = [];
  private probes: KvClient[] = [];

  constructor(
    private readonly root: string,
    private readonly dir: string,
    private readonly timing: { tickMs: number },
    private readonly nodeArgs: readonly string[] = [],
  ) {}

  private endpoint(i: number): string {
    return `127.0.0.1:${this.clientPorts[i]}`;
  }

  private spawn(i: number): void {
    const name = `n${i + 1}`;
    const cluster = this.peerPorts.map((p, j) => `n${j + 1}=127.0.0.1:${p}`).join(",");
    // Plain `node --import tsx` (not `npx tsx`, which runs the agent in a child process) so that kill -9
    // of the pid is kill -9 of the member.
    this.procs[i] = startProcess(
      process.execPath,
      [
        ...this.nodeArgs,
        "--import",
        "tsx",
        join(this.root, "cmd/agent.ts"),
        "--name",
        name,
        "--peer-listen",
        `127.0.0.1:${this.peerPorts[i]}`,
        "--client-listen",
        this.endpoint(i),
        "--data-dir",
        join(this.dir, name),
        "--initial-cluster",
        cluster,
        "--tick-ms",
        String(this.timing.tickMs),
      ],
      join(this.dir, `${name}.log`),
      this.root,
    );
  }

  async start(): Promise<void> {
    const ports = await freePorts(2 * this.size);
    this.clientPorts = ports.slice(0, this.size);
    this.peerPorts = ports.slice(this.size);
    for (let i = 0; i < this.size; i++) this.spawn(i);
    this.probes = Array.from(
      { length: this.size },
      (_, i) => new KvClient({ endpoints: [this.endpoint(i)], deadlineMs: 1000 }),
    );
    await waitFor("a zsha leader", 60_000, () => this.leader());
  }

  client(): Driver {
    return driver(
      new KvClient({ endpoints: this.clientPorts.map((_, i) => this.endpoint(i)), deadlineMs: 10_000 }),
    );
  }

  memberClient(i: number, deadlineMs: number): Driver {
    return driver(new KvClient({ endpoints: [this.endpoint(i)], deadlineMs }));
  }

  async leader(): Promise<number | undefined> {
    const views = await Promise.all(
      this.probes.map((p, i) =>
        this.procs[i]
          ? p.status().then(
              (s) => s.leader,
              () => undefined,
            )
          : undefined,
      ),
    );
    const live = views.filter((_, i) => this.procs[i] !== undefined);
    const first = live[0];
    if (!first || live.some((v) => v !== first)) return undefined;
    const idx = Number(first.slice(1)) - 1;
    return idx >= 0 && idx < this.size ? idx : undefined;
  }

  async kill(i: number): Promise<void> {
    const p = this.procs[i];
    this.procs[i] = undefined;
    if (p) await killHard(p);
  }

  async restart(i: number): Promise<void> {
    this.spawn(i);
    await waitFor(`zsha member n${i + 1} back and following`, 60_000, async () => {
      const s = await this.probes[i]!.status();
      return s.leader !== "" && (await this.leader()) !== undefined ? true : undefined;
    });
  }

  async routing(): Promise<string> {
    const lead = await this.leader();
    return `KvClient stays on its first answering endpoint (n1), which is ${lead === 0 ? "the leader" : "a follower (writes forwarded by Raft, reads by ReadIndex)"}`;
  }

  async stop(): Promise<void> {
    for (const p of this.probes) p.close();
    this.probes = [];
    // SIGTERM first: a member stopped in order writes its CPU profile when one was asked for.
    await Promise.all(this.procs.map((p) => (p ? stopGently(p, 10_000) : undefined)));
    this.procs = [];
  }
}
