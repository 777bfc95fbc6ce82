/**
 * A real long-lived RBD writer for fencing tests: one `qemu-io` process (qemu's own rbd block driver, the
 * one the MN-VM's qemu uses) with the image open, fed commands on stdin. `cache=none` so every write goes
 * to the OSDs before it is acknowledged (a writeback cache could ack a write it later fails to persist).
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { once } from "node:events";

export interface RbdTarget {
  readonly pool: string;
  readonly image: string;
  readonly conf: string;
  readonly user: string;
  readonly keyring: string;
}

export type WriteOutcome = { ok: true } | { ok: false; error: string };

export class QemuIoWriter {
  private readonly proc: ChildProcessWithoutNullStreams;
  private buffer = "";
  private waiter: (() => void) | undefined;

  constructor(t: RbdTarget) {
    const file = `rbd:${t.pool}/${t.image}:conf=${t.conf}:id=${t.user}:keyring=${t.keyring}`;
    this.proc = spawn("qemu-io", ["-t", "none", "-f", "raw", file], { stdio: "pipe" });
    const onData = (chunk: Buffer) => {
      this.buffer += chunk.toString("utf8");
      this.waiter?.();
    };
    this.proc.stdout.on("data", onData);
    this.proc.stderr.on("data", onData);
    this.proc.once("exit", () => this.waiter?.());
  }

  /** Writes `len` bytes of `pattern` at `offset`; resolves with qemu-io's verdict. */
  write(offset: number, len: number, pattern: number, timeoutMs = 20_000): Promise<WriteOutcome> {
    return this.command(
      `write -P ${pattern} ${offset} ${len}`,
      /wrote \d+\/\d+ bytes|write failed: (.*)/,
      timeoutMs,
    );
  }

  /** Reads back and checks that every byte is `pattern`. */
  verify(offset: number, len: number, pattern: number, timeoutMs = 20_000): Promise<WriteOutcome> {
    return this.command(
      `read -P ${pattern} ${offset} ${len}`,
      /read \d+\/\d+ bytes|read failed: (.*)|Pattern verification failed.*/,
      timeoutMs,
    );
  }

  async close(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const exited = once(this.proc, "exit");
    this.proc.stdin.end("quit\n");
    const timer = setTimeout(() => this.proc.kill("SIGKILL"), 5_000);
    await exited;
    clearTimeout(timer);
  }

  private async command(cmd: string, verdict: RegExp, timeoutMs: number): Promise<WriteOutcome> {
    this.buffer = "";
    this.proc.stdin.write(`${cmd}\n`);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = verdict.exec(this.buffer);
      // qemu-io prints the failure reason after a task error; wait for the whole line.
      if (m && this.buffer.slice(m.index).includes("\n")) {
        return m[0].startsWith("wrote") || m[0].startsWith("read ")
          ? { ok: true }
          : { ok: false, error: m[0] };
      }
      if (this.proc.exitCode !== null) return { ok: false, error: `qemu-io exited: ${this.buffer.trim()}` };
      const left = deadline - Date.now();
      if (left <= 0) return { ok: false, error: `no answer to "${cmd}" within ${timeoutMs} ms` };
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 500));
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }
}
