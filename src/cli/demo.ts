// `zsha demo`: a three-node cluster on this machine — three agents on loopback ports, data in a temp folder,
// FileConf with an image in that folder, libvirt's test driver when our binding is built (else the simulated
// driver, said plainly). The first agent serves the default unix socket, so a plain `zsha status` in another
// terminal talks to it. Ctrl-C stops everything and removes the folder.

import { type ChildProcess, spawn } from "node:child_process";
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KvClient, text } from "../client/kv-client.js";
import { sampleConfig } from "../config/index.js";
import { KEYS } from "../ha/records.js";
import { loadLibvirt } from "../hypervisor/libvirt.js";
import type { Io } from "./main.js";

const ROOT = join(import.meta.dirname, "..", "..");

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => (typeof a === "object" && a ? resolve(a.port) : reject(new Error("no free port"))));
    });
  });
}

async function waitFor<T>(what: string, f: () => Promise<T | undefined>, ms: number): Promise<T> {
  const deadline = performance.now() + ms;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v !== undefined) return v;
    if (performance.now() > deadline)
      throw new Error(`the demo cluster did not come up: ${what} within ${ms / 1000} s`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

export interface DemoOptions {
  /** The first agent's client socket (default: the path plain `zsha` uses). */
  readonly socket: string;
  /** Resolves to stop the demo (default: Ctrl-C / SIGTERM). */
  readonly until?: Promise<void>;
}

export async function runDemo(io: Io, o: DemoOptions): Promise<number> {
  if (existsSync(o.socket)) {
    const probe = new KvClient({ endpoints: [`unix:${o.socket}`], deadlineMs: 1000 });
    const alive = await probe.status().then(
      () => true,
      () => false,
    );
    probe.close();
    if (alive) {
      io.err(`zsha: an agent already answers at ${o.socket}; stop it (or the other demo) first`);
      return 1;
    }
    rmSync(o.socket, { force: true });
  }
  const hypervisor = (await loadLibvirt()).ok ? "test:///default" : "sim";
  io.out(
    hypervisor === "sim"
      ? "demo: hypervisor driver: simulated (our libvirt binding is not built here: apt-get install libvirt-dev, then npm install)"
      : "demo: hypervisor driver: libvirt's test driver (test:///default), one in-process host per agent",
  );
  const dir = mkdtempSync(join(tmpdir(), "zsha-demo-"));
  const shared = join(dir, "shared");
  mkdirSync(shared);
  writeFileSync(join(shared, "mnvm.img"), Buffer.alloc(1 << 20));
  const names = ["n1", "n2", "n3"];
  const ports = await Promise.all(names.flatMap(() => [freePort(), freePort()]));
  const peers = names.map((n, i) => `${n}=127.0.0.1:${ports[2 * i]}`).join(",");
  const procs: ChildProcess[] = [];
  const clients = names.map((_, i) => `127.0.0.1:${ports[2 * i + 1]}`);
  names.forEach((name, i) => {
    const log = openSync(join(dir, `${name}.log`), "a");
    const args = [
      ...["--name", name, "--peer-listen", `127.0.0.1:${ports[2 * i]}`, "--client-listen", clients[i]!],
      ...["--data-dir", join(dir, name), "--initial-cluster", peers, "--hypervisor-uri", hypervisor],
      ...["--seed-dir", join(dir, name, "seed"), "--tick-ms", "100"],
      ...(i === 0 ? ["--socket", o.socket] : []),
    ];
    procs.push(
      spawn(process.execPath, ["--import", "tsx", join(ROOT, "cmd/agent.ts"), ...args], {
        cwd: ROOT,
        stdio: ["ignore", log, log],
      }),
    );
    closeSync(log);
  });
  const kv = new KvClient({ endpoints: clients, deadlineMs: 3000 });
  let code = 0;
  try {
    const config = {
      ...sampleConfig("FileConf"),
      Node: names.map((n, i) => `127.0.0.${11 + i} ${n}`),
      ChronyServers: ["127.0.0.11"],
      ImageFolder: shared,
      DomainType: "qemu",
    };
    await waitFor("a leader", async () => ((await kv.status()).leader ? true : undefined), 30_000);
    await kv.put(KEYS.config, JSON.stringify(config));
    const owner = await waitFor(
      "the MN-VM running",
      async () => {
        const e = await kv.getValue(KEYS.owner);
        if (!e) return undefined;
        const node = (JSON.parse(text(e.value)) as { node: string }).node;
        const r = await kv.getValue(KEYS.node(node));
        const running =
          r && (JSON.parse(text(r.value)) as { mnvm?: { value: string } }).mnvm?.value === "running";
        return running ? node : undefined;
      },
      60_000,
    );
    io.out(`demo: three agents up (data in ${dir}); the MN-VM runs on ${owner}`);
    io.out("");
    const { runCli } = await import("./main.js");
    await runCli(["--endpoint", `unix:${o.socket}`, "status"], io);
    io.out("");
    io.out("Try, in another terminal (plain zsha talks to this demo):");
    io.out("  zsha status                 where the MN-VM runs, members, storage");
    io.out(`  zsha migrate n2             (libvirt's test driver cannot migrate: watch the clean failure)`);
    io.out("  zsha stop / zsha start      stop the MN-VM and bring it back");
    io.out(`  pkill -9 -f 'name ${owner} '   kill the owner's agent and watch the failover in zsha status`);
    io.out("Ctrl-C here stops the demo and removes its data.");
    // Signals stay handled until cleanup is over: a second Ctrl-C (or npm forwarding the first) must not
    // kill the demo half-way through stopping its agents.
    await (o.until ??
      new Promise<void>((resolve) => {
        process.on("SIGINT", () => resolve());
        process.on("SIGTERM", () => resolve());
      }));
    io.out("demo: stopping");
  } catch (e) {
    io.err(`zsha: ${(e as Error).message}; agent logs were in ${dir}`);
    for (const n of names) {
      const tail = readFileSync(join(dir, `${n}.log`), "utf8")
        .split("\n")
        .slice(-5)
        .join("\n");
      io.err(`--- ${n}:\n${tail}`);
    }
    code = 1;
  } finally {
    kv.close();
    await Promise.all(
      procs.map(
        (p) =>
          new Promise<void>((resolve) => {
            if (p.exitCode !== null) return resolve();
            p.once("exit", () => resolve());
            p.kill("SIGTERM");
            setTimeout(() => p.kill("SIGKILL"), 5000).unref();
          }),
      ),
    );
    rmSync(dir, { recursive: true, force: true });
    rmSync(o.socket, { force: true });
  }
  return code;
}
