// One SSH session to one node (root), with ssh2: run commands, send and fetch files. Host keys are checked
// against the installer's record (host-keys.ts), never blindly accepted on a re-run: a changed key is how a
// man in the middle looks, and also how a replaced machine looks, so only the operator can tell them apart.
import { createHash } from "node:crypto";
import { Client, type ClientChannel } from "ssh2";

export interface SshTarget {
  readonly host: string;
  readonly port?: number;
  /** Root's password (install) or, once installed, the cluster's own key (uninstall, re-install). */
  readonly password?: string;
  readonly privateKey?: Buffer;
  readonly timeoutMs?: number;
}

export interface ExecResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** A failure worded for the operator; `step` says which part of reaching the node failed. */
export class SshError extends Error {
  constructor(
    readonly kind: "unreachable" | "auth" | "host-key" | "exec" | "timeout",
    message: string,
  ) {
    super(message);
  }
}

/** OpenSSH's way of showing a host key: `SHA256:` and the unpadded base64 of its hash. */
export function fingerprint(key: Buffer): string {
  return `SHA256:${createHash("sha256").update(key).digest("base64").replace(/=+$/, "")}`;
}

/** Shell-quotes one word for a remote `sh -c`. */
export function sq(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

export class SshSession {
  private constructor(
    private readonly client: Client,
    readonly host: string,
    /** The fingerprint the node presented. */
    readonly hostKey: string,
  ) {}

  /**
   * Connects as root. `verify` gets the node's host key fingerprint and returns undefined to accept it or
   * the reason to refuse (the connection is then dropped before any password is sent).
   */
  static connect(target: SshTarget, verify: (fp: string) => string | undefined): Promise<SshSession> {
    return new Promise((resolve, reject) => {
      const client = new Client();
      let presented = "";
      let refused: string | undefined;
      let settled = false;
      const done = (err: SshError | undefined) => {
        if (settled) return;
        settled = true;
        if (err) {
          client.end();
          reject(err);
        } else resolve(new SshSession(client, target.host, presented));
      };
      client.on("ready", () => done(undefined));
      client.on("error", (e: Error & { level?: string }) => {
        if (refused) return done(new SshError("host-key", refused));
        if (e.level === "client-authentication") {
          return done(
            new SshError(
              "auth",
              target.privateKey
                ? "the cluster's SSH key was refused (was the node reinstalled? run zsha install again)"
                : "root login with this password was refused (wrong password, or PermitRootLogin off)",
            ),
          );
        }
        if (/timed out/i.test(e.message)) return done(new SshError("timeout", `no SSH answer: ${e.message}`));
        done(new SshError("unreachable", `cannot reach sshd: ${e.message}`));
      });
      client.on("close", () => done(new SshError("unreachable", "the SSH connection closed during login")));
      client.connect({
        host: target.host,
        port: target.port ?? 22,
        username: "root",
        ...(target.privateKey ? { privateKey: target.privateKey } : { password: target.password ?? "" }),
        readyTimeout: target.timeoutMs ?? 15_000,
        // Keyboard-interactive would prompt on a terminal we do not have; password or key only.
        tryKeyboard: false,
        hostVerifier: (key: Buffer) => {
          presented = fingerprint(key);
          refused = verify(presented);
          return refused === undefined;
        },
      });
    });
  }

  /** Runs `script` with `sh -c` (stdin from `input`); resolves with its exit code and output. */
  exec(script: string, opts: { input?: Buffer | string; timeoutMs?: number } = {}): Promise<ExecResult> {
    return new Promise((resolve, reject) => {
      this.client.exec(script, (err, stream: ClientChannel) => {
        if (err) return reject(new SshError("exec", `cannot run a command: ${err.message}`));
        const out: Buffer[] = [];
        const errOut: Buffer[] = [];
        const timer = setTimeout(() => {
          stream.close();
          reject(new SshError("timeout", `a command did not finish within ${opts.timeoutMs} ms`));
        }, opts.timeoutMs ?? 120_000);
        stream.on("data", (b: Buffer) => out.push(b));
        stream.stderr.on("data", (b: Buffer) => errOut.push(b));
        stream.on("close", (code: number | null, signal?: string) => {
          clearTimeout(timer);
          resolve({
            code: code ?? (signal ? 128 : 255),
            stdout: Buffer.concat(out).toString("utf8"),
            stderr: Buffer.concat(errOut).toString("utf8"),
          });
        });
        if (opts.input !== undefined) stream.end(opts.input);
        else stream.end();
      });
    });
  }

  /** Like exec, but a non-zero exit is an error carrying the command's last stderr line. */
  async run(script: string, opts: { input?: Buffer | string; timeoutMs?: number } = {}): Promise<string> {
    const r = await this.exec(script, opts);
    if (r.code !== 0) {
      const why = (r.stderr.trim() || r.stdout.trim()).split("\n").pop() ?? "";
      throw new SshError("exec", `${why || "failed"} (exit ${r.code})`);
    }
    return r.stdout;
  }

  /** Writes `data` to `path` atomically (temp file + rename) with `mode`, creating its folder. */
  async writeFile(path: string, data: Buffer | string, mode = 0o600): Promise<void> {
    const dir = path.slice(0, path.lastIndexOf("/")) || "/";
    const tmp = `${path}.zsha-tmp`;
    await this.run(
      `umask 077; mkdir -p ${sq(dir)} && cat > ${sq(tmp)} && chmod ${mode.toString(8)} ${sq(tmp)} && mv -f ${sq(tmp)} ${sq(path)}`,
      { input: data, timeoutMs: 600_000 },
    );
  }

  /** A file's content, or undefined when it does not exist. */
  async readFile(path: string): Promise<Buffer | undefined> {
    const r = await this.exec(`test -f ${sq(path)} && base64 -w0 ${sq(path)}`);
    return r.code === 0 ? Buffer.from(r.stdout.trim(), "base64") : undefined;
  }

  close(): void {
    this.client.end();
  }
}
