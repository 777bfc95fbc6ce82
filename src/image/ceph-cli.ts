/**
 * Runs the Ceph command-line tools (`rbd`, `ceph`, `rados`) as zsha's cephx user, each call bounded in time,
 * and turns their failures into `ImageError`s with one clear sentence.
 *
 * Why the CLIs and not librados bindings: they ship with every Ceph client install in the version that
 * matches the cluster, a hung call can be killed without taking the agent down, and `--format json` is
 * stable across releases. Why two timeouts: librados' own (mount / mon op / osd op) lets the tool fail
 * with a clean errno we can classify (110 while hunting for a monitor = monitors unreachable); our hard
 * deadline (SIGTERM, then SIGKILL) covers a tool that hangs anyway.
 */
import { execa } from "execa";
import { ImageError } from "./image-store.js";

export interface CephClientOptions {
  /** Monitors as in the config's `MonAddrs`: `ip:port`, or with an explicit `v1:`/`v2:` prefix. */
  readonly monAddrs: readonly string[];
  /** cephx user without `client.`, e.g. `zsha`. */
  readonly user: string;
  /** Path of the keyring holding the user's key. */
  readonly keyring: string;
  /** Optional ceph.conf; without one only `monAddrs`, `user` and `keyring` are used. */
  readonly confPath?: string;
  /** Hard deadline per call (default 10 s). */
  readonly timeoutMs?: number;
  /** Told about every finished call (for the agent's structured log); never sees keys. */
  readonly onCommand?: (e: { command: string; durationMs: number; exitCode: number | undefined }) => void;
}

export type CephTool = "rbd" | "ceph" | "rados";

/**
 * Ceph reads a bare `ip:port` whose port is neither 6789 nor 3300 as msgr2 and then falls back noisily
 * (seen with 16.2: "peer is using msgr V1 protocol", and auth stalls until the mount timeout). So say the
 * protocol: 3300 is msgr2 by convention, anything else the legacy v1 port.
 */
export function monArg(monAddrs: readonly string[]): string {
  return monAddrs
    .map((a) => a.trim())
    .map((a) => (/^v[12]:/.test(a) ? a : a.endsWith(":3300") ? `v2:${a}` : `v1:${a}`))
    .join(",");
}

/** Words that changed with Ceph 16 (Pacific): "blacklist" became "blocklist", in commands and options. */
export interface CephTerms {
  readonly release: number;
  readonly blocklist: "blocklist" | "blacklist";
  readonly breakLockOption: "rbd_blocklist_on_break_lock" | "rbd_blacklist_on_break_lock";
}

/** From `rbd --version`, e.g. `ceph version 16.2.15 (618f4401…) pacific (stable)`. */
export function cephTerms(versionText: string): CephTerms {
  const m = /ceph version (\d+)\./.exec(versionText);
  if (!m) throw new ImageError("bad-output", `cannot read the Ceph release from "${versionText.trim()}"`);
  const release = Number(m[1]);
  return release >= 16
    ? { release, blocklist: "blocklist", breakLockOption: "rbd_blocklist_on_break_lock" }
    : { release, blocklist: "blacklist", breakLockOption: "rbd_blacklist_on_break_lock" };
}

export class CephCli {
  private readonly timeoutMs: number;
  private terms: Promise<CephTerms> | undefined;

  constructor(private readonly opts: CephClientOptions) {
    this.timeoutMs = opts.timeoutMs ?? 10_000;
  }

  get user(): string {
    return this.opts.user;
  }

  /** The local client tools' release decides the words; asked once (no cluster call). */
  cephTerms(): Promise<CephTerms> {
    this.terms ??= execa("rbd", ["--version"], { timeout: this.timeoutMs, reject: true }).then(
      (r) => cephTerms(r.stdout),
      (err) => {
        this.terms = undefined;
        throw new ImageError("command-failed", "cannot run rbd --version (is ceph-common installed?)", {
          cause: err,
        });
      },
    );
    return this.terms;
  }

  /** Runs a tool and returns its stdout; rejects with an `ImageError`. */
  async run(tool: CephTool, args: readonly string[], timeoutMs = this.timeoutMs): Promise<string> {
    return (await this.exec(tool, args, timeoutMs, "utf8")) as string;
  }

  /** Like `run`, for binary output (e.g. `rados get OBJ -`). */
  async runBytes(tool: CephTool, args: readonly string[], timeoutMs = this.timeoutMs): Promise<Uint8Array> {
    return (await this.exec(tool, args, timeoutMs, "buffer")) as Uint8Array;
  }

  private async exec(
    tool: CephTool,
    args: readonly string[],
    timeoutMs: number,
    encoding: "utf8" | "buffer",
  ): Promise<string | Uint8Array> {
    const full = [...this.commonArgs(tool, timeoutMs), ...args];
    const shown = `${tool} ${args.join(" ")}`;
    const r = await execa(tool, full, {
      timeout: timeoutMs,
      forceKillAfterDelay: 1_000,
      reject: false,
      stdin: "ignore",
      // Our arguments alone decide what the tool does: no CEPH_ARGS from the agent's environment.
      env: { CEPH_ARGS: "" },
      encoding,
      stripFinalNewline: encoding === "utf8",
    });
    this.opts.onCommand?.({ command: shown, durationMs: Math.round(r.durationMs), exitCode: r.exitCode });
    const stderr = typeof r.stderr === "string" ? r.stderr : Buffer.from(r.stderr ?? []).toString("utf8");
    if (r.timedOut) {
      throw new ImageError("timeout", `${shown} did not finish within ${timeoutMs / 1000} s`, {
        command: shown,
        detail: tail(stderr),
      });
    }
    if (r.exitCode !== 0 || r.failed) throw classify(tool, shown, r.exitCode, stderr, this.opts, timeoutMs);
    return r.stdout as string | Uint8Array;
  }

  /** Runs a tool with `--format json` and hands the parsed value to `parse` (which validates it). */
  async json<T>(tool: CephTool, args: readonly string[], parse: (v: unknown, cmd: string) => T): Promise<T> {
    const out = await this.run(tool, [...args, "--format", "json"]);
    const shown = `${tool} ${args.join(" ")}`;
    let value: unknown;
    try {
      value = firstJsonValue(out);
    } catch (err) {
      throw new ImageError("bad-output", `${shown} printed something that is not JSON`, {
        command: shown,
        detail: out.slice(0, 200),
        cause: err,
      });
    }
    return parse(value, shown);
  }

  private commonArgs(tool: CephTool, timeoutMs: number): string[] {
    const o = this.opts;
    const base = ["--conf", o.confPath ?? "/dev/null", "--id", o.user, "--keyring", o.keyring];
    if (o.monAddrs.length > 0) base.push("-m", monArg(o.monAddrs));
    // librados gives up a little before our hard deadline, so the tool reports why (errno) itself.
    const secs = String(Math.max(1, Math.floor((timeoutMs * 0.7) / 1000)));
    if (tool === "ceph") return [...base, "--connect-timeout", secs];
    return [
      ...base,
      `--client_mount_timeout=${secs}`,
      `--rados_mon_op_timeout=${secs}`,
      `--rados_osd_op_timeout=${secs}`,
    ];
  }
}

/**
 * Parses the first JSON value of `text`. Some commands print more than one: on Ceph 16.2.x
 * `osd blocklist ls` prints the address list and then the range-blocklist list (`[…][]`). Whatever
 * follows must be JSON too, so garbage is still refused.
 */
export function firstJsonValue(text: string): unknown {
  const s = text.trim();
  let depth = 0;
  let inString = false;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    if (inString) {
      if (ch === "\\") i++;
      else if (ch === '"') inString = false;
    } else if (ch === '"') inString = true;
    else if (ch === "[" || ch === "{") depth++;
    else if (ch === "]" || ch === "}") {
      depth--;
      if (depth === 0) {
        const rest = s.slice(i + 1).trim();
        if (rest !== "") firstJsonValue(rest);
        return JSON.parse(s.slice(0, i + 1));
      }
    }
  }
  return JSON.parse(s);
}

function tail(stderr: string): string {
  return stderr.trim().split("\n").slice(-4).join("\n");
}

/** Maps a failed tool run to the error an operator can act on. Patterns are the texts Ceph 16 prints. */
function classify(
  tool: CephTool,
  shown: string,
  exitCode: number | undefined,
  stderr: string,
  o: CephClientOptions,
  timeoutMs: number,
): ImageError {
  const detail = tail(stderr);
  const extra = { command: shown, detail };
  const pool = /error opening pool '([^']*)': \(2\)/.exec(stderr);
  if (pool)
    return new ImageError("pool-missing", `RBD pool "${pool[1]}" does not exist (check PoolName)`, extra);
  const image = /error opening image ([^:]+): \(2\)/.exec(stderr);
  if (image) {
    return new ImageError(
      "image-missing",
      `RBD image "${image[1]}" does not exist (import the MN-VM image first)`,
      extra,
    );
  }
  // rbd and rados exit with the errno (13 EACCES: bad key; 1 EPERM: caps), the ceph tool with 1.
  const errno = tool === "ceph" ? undefined : exitCode;
  if (
    errno === 13 ||
    /handle_auth_bad_method|no keyring found|\(13\) Permission denied|\(1\) Operation not permitted|errno 13|errno 1\]|access denied/i.test(
      stderr,
    )
  ) {
    return new ImageError(
      "permission-denied",
      `Ceph refused client.${o.user} (wrong key in ${o.keyring} or missing caps) running ${shown}`,
      extra,
    );
  }
  // rbd/rados exit with the errno: 110 while hunting for a monitor; the ceph tool prints "timed out".
  if (
    /authenticate timed out|couldn't connect to the cluster|^timed out$|error connecting to the cluster/m.test(
      stderr,
    )
  ) {
    const secs = Math.max(1, Math.floor((timeoutMs * 0.7) / 1000));
    return new ImageError(
      "monitors-unreachable",
      `no Ceph monitor answered within ${secs} s at ${o.monAddrs.join(", ") || "the monitors in the ceph.conf"} (check MonAddrs and the storage network)`,
      extra,
    );
  }
  if (exitCode === 110 || /\(110\) Connection timed out/.test(stderr)) {
    return new ImageError("timeout", `${shown} timed out inside Ceph (OSDs slow or down?)`, extra);
  }
  const last = detail.split("\n").at(-1) ?? "";
  return new ImageError("command-failed", `${shown} failed (exit ${exitCode ?? "?"}): ${last}`, extra);
}
