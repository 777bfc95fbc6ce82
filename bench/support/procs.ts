// The processes and temp folders one benchmark run owns, and the guarantee that they are gone when it ends:
// normal end, a thrown error, Ctrl-C or SIGTERM. Cleanup is synchronous so it also runs from 'exit'.

import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

const children = new Set<ChildProcess>();
const dirs = new Set<string>();
let hooked = false;

function cleanupNow(): void {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null && c.pid !== undefined) {
      try {
        process.kill(c.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }
  children.clear();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs.clear();
}

/** Installs the exit and signal hooks once; `cleanup()` may also be called directly. */
function hook(): void {
  if (hooked) return;
  hooked = true;
  process.on("exit", cleanupNow);
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(sig, () => {
      console.error(`\nbench: ${sig}, stopping both clusters and removing temp folders`);
      cleanupNow();
      process.exit(130);
    });
  }
}

export function cleanup(): void {
  cleanupNow();
}

/** A fresh temp folder removed at the end of the run. */
export function tempDir(prefix: string): string {
  hook();
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.add(d);
  return d;
}

export interface Proc {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
}

/** Starts a daemon with stdout and stderr appended to `logFile`. */
export function startProcess(cmd: string, args: readonly string[], logFile: string, cwd?: string): Proc {
  hook();
  const fd = openSync(logFile, "a");
  const child = spawn(cmd, args, { stdio: ["ignore", fd, fd], ...(cwd ? { cwd } : {}) });
  closeSync(fd);
  children.add(child);
  const exited = new Promise<void>((resolve) => {
    child.once("exit", () => {
      children.delete(child);
      resolve();
    });
    child.once("error", (e) => {
      console.error(`bench: cannot start ${cmd}: ${e.message}`);
      children.delete(child);
      resolve();
    });
  });
  return { child, exited };
}

/** kill -9, resolved once the process is gone. */
export async function killHard(p: Proc): Promise<void> {
  if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGKILL");
  await p.exited;
}

/** SIGTERM, then kill -9 if the process is still there after `graceMs`. */
export async function stopGently(p: Proc, graceMs: number): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill("SIGTERM");
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p.exited, new Promise((r) => (timer = setTimeout(r, graceMs)))]);
  clearTimeout(timer);
  await killHard(p);
}

/** Ports that were free a moment ago (bound to port 0 and released). */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<import("node:net").Server>((resolve, reject) => {
          const s = createServer();
          s.once("error", reject);
          s.listen(0, "127.0.0.1", () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => {
    const a = s.address();
    if (a === null || typeof a === "string") throw new Error("no TCP address for a probe socket");
    return a.port;
  });
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Retries `f` until it returns a value other than undefined or `timeoutMs` passes. */
export async function waitFor<T>(
  what: string,
  timeoutMs: number,
  f: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let last: unknown;
  while (performance.now() < deadline) {
    try {
      const v = await f();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    await sleep(100);
  }
  throw new Error(
    `${what} did not happen within ${timeoutMs} ms${last ? ` (last error: ${(last as Error).message})` : ""}`,
  );
}
