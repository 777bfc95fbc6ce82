// A cluster of real zsha agent processes on loopback for integration tests: free ports, a temp folder per
// cluster (data folders, node files, one log file per agent), leader discovery by polling the Cluster
// service, and the faults the tests inject (kill -9, SIGSTOP/SIGCONT, restart with the same data, wipe).
//
// Each agent's stdout and stderr (pino's JSON lines and the agent's own messages) go to `<dir>/<name>.log`,
// written by the kernel, so the log survives the agent being killed and is there to read when a test fails.

import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { KvClient } from "../../src/client/kv-client.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const AGENT = join(ROOT, "cmd/agent.ts");

/** Every agent any cluster started in this process, so that a crashing test run leaves none behind. */
const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const p of live) p.kill("SIGKILL");
});

/** A TCP port nobody listens on right now (the kernel's choice). */
export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => (typeof a === "object" && a ? res(a.port) : rej(new Error("no port"))));
    });
  });
}

/** Polls `f` until it returns a value other than undefined/false; throws `what` with the last error. */
export async function until<T>(
  what: string,
  f: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 15_000,
  everyMs = 50,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await f();
      if (v !== undefined && v !== false) return v as T;
    } catch (e) {
      last = e;
    }
    if (performance.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ""}`,
      );
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export interface ClusterOptions {
  readonly size: number;
  readonly tickMs?: number;
  readonly snapshotEntries?: number;
  readonly catchUpEntries?: number;
  /** Mutual TLS between members: PEM file paths per member name (written by the test). */
  readonly tls?: (name: string) => { ca: string; cert: string; key: string };
  /** Name prefix of the temp folder. */
  readonly label?: string;
}

export type AgentState = "running" | "paused" | "stopped";

export class Agent {
  proc: ChildProcess | undefined;
  state: AgentState = "stopped";
  private exited: Promise<void> = Promise.resolve();

  constructor(
    readonly name: string,
    readonly peerAddress: string,
    readonly clientAddress: string,
    readonly dataDir: string,
    readonly logFile: string,
    private readonly args: string[],
  ) {}

  start(): void {
    if (this.proc) throw new Error(`agent ${this.name} is already running`);
    const fd = openSync(this.logFile, "a");
    writeFileSync(fd, `--- start ${new Date().toISOString()}\n`);
    const p = spawn(process.execPath, ["--import", "tsx", AGENT, ...this.args], {
      cwd: ROOT,
      stdio: ["ignore", fd, fd],
    });
    closeSync(fd);
    this.proc = p;
    this.state = "running";
    live.add(p);
    this.exited = new Promise((r) =>
      p.once("exit", () => {
        live.delete(p);
        if (this.proc === p) {
          this.proc = undefined;
          this.state = "stopped";
        }
        r();
      }),
    );
  }

  /** kill -9, and waits until the process is gone. */
  async kill(): Promise<void> {
    if (!this.proc) return;
    this.proc.kill("SIGKILL");
    await this.exited;
  }

  /** SIGTERM (a clean stop), kill -9 if it is still there after `graceMs`. */
  async stop(graceMs = 3000): Promise<void> {
    const p = this.proc;
    if (!p) return;
    if (this.state === "paused") p.kill("SIGCONT");
    p.kill("SIGTERM");
    const t = setTimeout(() => p.kill("SIGKILL"), graceMs);
    await this.exited;
    clearTimeout(t);
  }

  pause(): void {
    if (!this.proc || this.state !== "running") throw new Error(`agent ${this.name} is not running`);
    this.proc.kill("SIGSTOP");
    this.state = "paused";
  }

  resume(): void {
    if (!this.proc || this.state !== "paused") throw new Error(`agent ${this.name} is not paused`);
    this.proc.kill("SIGCONT");
    this.state = "running";
  }

  /** Deletes the member's data folder (the agent must be stopped). */
  wipe(): void {
    if (this.proc) throw new Error(`agent ${this.name} must be stopped before its data is wiped`);
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  log(): string {
    try {
      return readFileSync(this.logFile, "utf8");
    } catch {
      return "";
    }
  }

  /** The agent's log lines (pino JSON) whose msg is `msg`, parsed. */
  events(msg: string): Array<Record<string, unknown>> {
    const out: Array<Record<string, unknown>> = [];
    for (const line of this.log().split("\n")) {
      if (!line.includes(`"msg":"${msg}"`)) continue;
      try {
        out.push(JSON.parse(line));
      } catch {
        // A line cut by kill -9 mid-write.
      }
    }
    return out;
  }
}

export class TestCluster {
  readonly agents = new Map<string, Agent>();
  private readonly clients: KvClient[] = [];

  private constructor(
    readonly dir: string,
    private readonly opts: ClusterOptions,
  ) {}

  /**
   * Starts `size` founding members and waits for a leader they all agree on. A port freePort() handed out
   * can be taken by another process before the agent binds it (seen in CI: one member exited with
   * EADDRINUSE and the other two elected a leader without it): then the cluster starts again on new ports.
   */
  static async start(opts: ClusterOptions): Promise<TestCluster> {
    for (let attempt = 1; ; attempt++) {
      const dir = mkdtempSync(join(tmpdir(), `zsha-${opts.label ?? "it"}-`));
      const c = new TestCluster(dir, opts);
      try {
        const names = Array.from({ length: opts.size }, (_, i) => `n${i + 1}`);
        const ports = await Promise.all(names.map(async () => [await freePort(), await freePort()] as const));
        const initial = names.map((n, i) => `${n}=127.0.0.1:${ports[i]![0]}`).join(",");
        names.forEach((n, i) => {
          c.define(n, ports[i]![0], ports[i]![1], ["--initial-cluster", initial]);
        });
        for (const a of c.agents.values()) a.start();
        await c.waitLeader();
      } catch (e) {
        await c.destroy(true);
        throw e;
      }
      const gone = [...c.agents.values()].filter((a) => a.state !== "running");
      if (gone.length === 0) return c;
      const portTaken = gone.some((a) => readFileSync(a.logFile, "utf8").includes("EADDRINUSE"));
      await c.destroy(!portTaken);
      if (!portTaken || attempt >= 3) {
        throw new Error(
          `test cluster: ${gone.map((a) => a.name).join(", ")} exited at start (logs in ${dir})`,
        );
      }
    }
  }

  private define(name: string, peerPort: number, clientPort: number, extra: string[]): Agent {
    const o = this.opts;
    const peer = `127.0.0.1:${peerPort}`;
    const client = `127.0.0.1:${clientPort}`;
    const dataDir = join(this.dir, name);
    const fields: Record<string, unknown> = {
      name,
      peerListen: peer,
      clientListen: client,
      dataDir,
      tickMs: o.tickMs ?? 50,
      ...(o.snapshotEntries ? { snapshotEntries: o.snapshotEntries } : {}),
      ...(o.catchUpEntries !== undefined ? { catchUpEntries: o.catchUpEntries } : {}),
    };
    let args: string[];
    if (o.tls) {
      // Node file form (the only way to pass TLS files): the same fields the flags would carry.
      const initial: Record<string, string> = {};
      const i = extra.indexOf("--initial-cluster");
      if (i >= 0) {
        for (const part of extra[i + 1]!.split(",")) {
          const [n, a] = part.split("=");
          initial[n!] = a!;
        }
      }
      const file = join(this.dir, `${name}.node.json`);
      writeFileSync(
        file,
        JSON.stringify({
          ...fields,
          clusterId: "zsha",
          // The harness reads each agent's log from its stderr (not /var/log/z).
          logDir: "-",
          tls: o.tls(name),
          initialCluster: initial,
          ...(extra.includes("--join") ? { join: true } : {}),
        }),
      );
      args = ["--node-file", file];
    } else {
      args = [
        "--name",
        name,
        "--peer-listen",
        peer,
        "--client-listen",
        client,
        "--data-dir",
        dataDir,
        "--tick-ms",
        String(fields.tickMs),
        ...(o.snapshotEntries ? ["--snapshot-entries", String(o.snapshotEntries)] : []),
        ...(o.catchUpEntries !== undefined ? ["--catch-up-entries", String(o.catchUpEntries)] : []),
        ...extra,
      ];
    }
    mkdirSync(this.dir, { recursive: true });
    const a = new Agent(name, peer, client, dataDir, join(this.dir, `${name}.log`), args);
    this.agents.set(name, a);
    return a;
  }

  /**
   * Defines (does not start) a new member that will join the running cluster as a learner; it is told the
   * peer addresses of the current members (`members`, default every other defined agent).
   */
  async defineJoiner(name: string, members: string[] = this.names()): Promise<Agent> {
    const initial = members
      .filter((n) => n !== name)
      .map((n) => `${n}=${this.agent(n).peerAddress}`)
      .join(",");
    return this.define(name, await freePort(), await freePort(), ["--join", "--initial-cluster", initial]);
  }

  agent(name: string): Agent {
    const a = this.agents.get(name);
    if (!a) throw new Error(`no agent ${name} in this cluster`);
    return a;
  }

  names(): string[] {
    return [...this.agents.keys()];
  }

  running(): Agent[] {
    return [...this.agents.values()].filter((a) => a.state === "running");
  }

  /** A client of the given members (default: all, in order); closed with the cluster. */
  client(names: string[] = this.names(), deadlineMs = 5000): KvClient {
    const c = new KvClient({
      endpoints: names.map((n) => this.agent(n).clientAddress),
      deadlineMs,
    });
    this.clients.push(c);
    return c;
  }

  /**
   * Waits until every running member (other than `exclude`) reports the same leader in the same term, that
   * leader among them; returns its name.
   */
  async waitLeader(timeoutMs = 20_000, exclude: string[] = []): Promise<string> {
    const probe = new Map<string, KvClient>();
    try {
      return await until(
        "a leader that every running member agrees on",
        async () => {
          const up = this.running().filter((a) => !exclude.includes(a.name));
          if (up.length === 0) return undefined;
          const seen = await Promise.all(
            up.map(async (a) => {
              let c = probe.get(a.name);
              if (!c) {
                c = new KvClient({ endpoints: [a.clientAddress], deadlineMs: 1000 });
                probe.set(a.name, c);
              }
              const s = await c.status();
              return `${s.leader}@${s.term}`;
            }),
          );
          const [first] = seen;
          if (!first || first.startsWith("@") || !seen.every((s) => s === first)) return undefined;
          const lead = first.split("@")[0]!;
          return up.some((a) => a.name === lead) ? lead : undefined;
        },
        timeoutMs,
      );
    } finally {
      for (const c of probe.values()) c.close();
    }
  }

  /** Status of one member through its own client endpoint. */
  async status(name: string): Promise<Awaited<ReturnType<KvClient["status"]>>> {
    const c = new KvClient({ endpoints: [this.agent(name).clientAddress], deadlineMs: 2000 });
    try {
      return await c.status();
    } finally {
      c.close();
    }
  }

  /** The last `lines` lines of every agent's log, for a failure message. */
  logTails(lines = 40): string {
    return [...this.agents.values()]
      .map((a) => `==== ${a.name} (${a.state}) ${a.logFile}\n${a.log().split("\n").slice(-lines).join("\n")}`)
      .join("\n");
  }

  /**
   * Stops every agent (SIGCONT first for paused ones) and removes the temp folder, unless `keep` (a failed
   * test: the logs and data stay for a post-mortem and their path is printed).
   */
  async destroy(keep = false): Promise<void> {
    for (const c of this.clients.splice(0)) c.close();
    await Promise.all([...this.agents.values()].map((a) => a.stop()));
    if (keep) {
      console.error(`zsha test cluster kept for inspection: ${this.dir}\n${this.logTails(15)}`);
    } else {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}

/** Whether the test whose hook context this is has failed (for `destroy(keep)` in afterEach). */
export function testFailed(ctx: { task: { result?: { state?: string } } }): boolean {
  return ctx.task.result?.state === "fail";
}
