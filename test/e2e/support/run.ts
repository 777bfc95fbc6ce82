/**
 * Small process helpers shared by the end-to-end harness: run a command in the root namespaces (rejecting
 * with the command and its stderr), and locate the cgroup v2 hierarchy the harness parks its processes in.
 */
import { existsSync } from "node:fs";
import { execa } from "execa";

/** The cgroup v2 hierarchy: `/sys/fs/cgroup/unified` on hybrid (v1+v2) machines, else `/sys/fs/cgroup`. */
export const CGROUP2 = existsSync("/sys/fs/cgroup/unified/cgroup.procs")
  ? "/sys/fs/cgroup/unified"
  : "/sys/fs/cgroup";

export interface RunResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number;
}

export interface RunOptions {
  readonly input?: string;
  readonly timeoutMs?: number;
  /** Reject on a non-zero exit or timeout (default true). */
  readonly reject?: boolean;
}

/** Runs `argv` and returns its output; by default rejects with one sentence naming the command on failure. */
export async function run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const [cmd, ...args] = argv;
  if (cmd === undefined) throw new Error("run: empty argv");
  const r = await execa(cmd, args, {
    reject: false,
    timeout: opts.timeoutMs ?? 60_000,
    forceKillAfterDelay: 1_000,
    stdin: opts.input === undefined ? "ignore" : "pipe",
    ...(opts.input === undefined ? {} : { input: opts.input }),
  });
  const out: RunResult = { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode ?? -1 };
  if ((opts.reject ?? true) && (r.timedOut || out.exitCode !== 0)) {
    const why = r.timedOut ? `timed out after ${opts.timeoutMs ?? 60_000} ms` : `exited ${out.exitCode}`;
    throw new Error(`${argv.join(" ")} ${why}: ${out.stderr.trim().slice(-800)}`);
  }
  return out;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `probe` until it returns true; throws naming `what` after `timeoutMs`. */
export async function waitFor(
  what: string,
  probe: () => boolean | Promise<boolean>,
  timeoutMs = 30_000,
  stepMs = 50,
) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(stepMs);
  }
}
