/**
 * The libvirt `Hypervisor` driver, on our own binding `@zsha/libvirt` (packages/libvirt).
 *
 * The binding is an optional dependency: where libvirt's headers are missing its build fails, npm skips
 * it, and `loadLibvirt()` says why, so the agent can fall back to the simulated driver and say which
 * driver it uses. Nothing here imports the binding statically.
 *
 * Behaviour the contract in hypervisor.ts asks for, and how it is met here:
 * - Every call has a timeout (the binding's); a call that names a domain looks it up and acts within one
 *   shared deadline. A binding `wedged` error (an earlier call stuck in libvirt) is a `timeout` here, and
 *   the stuck connection is dropped (listeners get `connection-closed`, reason `error`) so the next call
 *   opens a fresh one, with a fresh worker thread.
 * - When libvirtd drops the connection (close event: eof, keepalive, error) listeners get
 *   `connection-closed`, and the next call reconnects; listeners stay subscribed.
 * - `migrate` polls job stats for progress while the migration runs on the binding's own thread; on a
 *   timeout it aborts the job, so the domain stays on the source.
 */
import type * as Libvirt from "../../packages/libvirt/src/index.js";
import {
  type CallOptions,
  type CephSecret,
  type DomainEvent,
  type DomainEventListener,
  type DomainRef,
  type DomainRunState,
  type DomainStatus,
  type Hypervisor,
  HypervisorError,
  type HypervisorErrorCode,
  type MigrateOptions,
  type MigrateResult,
  type MigrationProgress,
  type StartedReason,
  type StoppedReason,
  type Unsubscribe,
} from "./hypervisor.js";

export type LibvirtModule = typeof Libvirt;

export type LibvirtLoadResult =
  | { readonly ok: true; readonly lib: LibvirtModule; readonly version: string }
  | { readonly ok: false; readonly reason: string };

/**
 * Loads the binding, or says in one sentence why it cannot be used (package not installed because its
 * native build was skipped, or the addon failing to load). `specifier` exists for tests.
 */
export async function loadLibvirt(specifier = "@zsha/libvirt"): Promise<LibvirtLoadResult> {
  let lib: LibvirtModule;
  try {
    lib = (await import(specifier)) as LibvirtModule;
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === "ERR_MODULE_NOT_FOUND" && String((err as Error).message).includes(specifier)) {
      return {
        ok: false,
        reason: `${specifier} is not installed (npm skips it when libvirt-dev, pkg-config or a C++ compiler is missing at npm ci)`,
      };
    }
    return { ok: false, reason: `${specifier} failed to load: ${(err as Error).message}` };
  }
  try {
    return { ok: true, lib, version: lib.libvirtLibraryVersion() };
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
}

/**
 * The line the agent logs at start to say which hypervisor driver it runs, e.g.
 * `hypervisor driver: libvirt (libvirt 9.0.0, qemu:///system)` or
 * `hypervisor driver: simulated (libvirt unavailable: @zsha/libvirt is not installed …)`.
 */
export function hypervisorDriverLine(load: LibvirtLoadResult, uri: string): string {
  return load.ok
    ? `hypervisor driver: libvirt (libvirt ${load.version}, ${uri})`
    : `hypervisor driver: simulated (libvirt unavailable: ${load.reason})`;
}

export interface LibvirtHypervisorOptions {
  /** e.g. `qemu:///system`. */
  readonly uri: string;
  /** Timeout of calls that give none. Default 30 s. */
  readonly defaultTimeoutMs?: number;
  /** Timeout of (re)connecting. Default 60 s: the first connection to a fresh libvirtd probes qemu. */
  readonly connectTimeoutMs?: number;
  /** Timeout of a migration that gives none. Default 10 min. */
  readonly migrateTimeoutMs?: number;
  /** How `shutdown` asks the guest: `acpi` (default), or `default` for drivers without ACPI (test:///). */
  readonly shutdownMode?: "acpi" | "default";
  /** Migration progress interval when the call gives none. Default 500 ms. */
  readonly progressIntervalMs?: number;
  /** libvirt keepalive: dead connection declared after `count` probes every `intervalSec`. */
  readonly keepAlive?: { readonly intervalSec: number; readonly count: number };
}

const STOPPED_REASONS: ReadonlySet<string> = new Set([
  "shutdown",
  "destroyed",
  "crashed",
  "migrated",
  "saved",
  "failed",
  "from-snapshot",
]);
const STARTED_REASONS: ReadonlySet<string> = new Set([
  "booted",
  "migrated",
  "restored",
  "from-snapshot",
  "wakeup",
]);

export class LibvirtHypervisor implements Hypervisor {
  readonly driver = "libvirt";
  readonly uri: string;
  private readonly lib: LibvirtModule;
  private readonly opts: Required<Omit<LibvirtHypervisorOptions, "keepAlive">> &
    Pick<LibvirtHypervisorOptions, "keepAlive">;
  private conn: Libvirt.Connection | undefined;
  private connecting: Promise<Libvirt.Connection> | undefined;
  private readonly listeners = new Set<DomainEventListener>();
  /** Last SHUTDOWN event detail per domain UUID, to tell who shut a domain down when it stops. */
  private readonly shutdownBy = new Map<string, string>();
  /** Job-completed stats per domain UUID, consumed by `migrate`. */
  private readonly completedJobs = new Map<string, Libvirt.JobStats>();
  private closed = false;

  private constructor(lib: LibvirtModule, opts: LibvirtHypervisorOptions) {
    this.lib = lib;
    this.uri = opts.uri;
    this.opts = {
      uri: opts.uri,
      defaultTimeoutMs: opts.defaultTimeoutMs ?? 30_000,
      connectTimeoutMs: opts.connectTimeoutMs ?? 60_000,
      migrateTimeoutMs: opts.migrateTimeoutMs ?? 600_000,
      shutdownMode: opts.shutdownMode ?? "acpi",
      progressIntervalMs: opts.progressIntervalMs ?? 500,
      keepAlive: opts.keepAlive,
    };
  }

  /** Connects now, so that a wrong URI or an absent libvirtd shows at agent start. */
  static async connect(lib: LibvirtModule, opts: LibvirtHypervisorOptions): Promise<LibvirtHypervisor> {
    const hv = new LibvirtHypervisor(lib, opts);
    try {
      await hv.connection();
    } catch (err) {
      throw hv.toError(err, undefined, "unreachable");
    }
    return hv;
  }

  hostname(opts?: CallOptions): Promise<string> {
    return this.run(undefined, opts, (c, t) => c.hostname(t));
  }

  define(domainXml: string, opts?: CallOptions): Promise<DomainRef> {
    return this.run(undefined, opts, async (c, t) => {
      const d = await c.defineDomain(domainXml, t);
      return { name: d.name, uuid: d.uuid };
    });
  }

  start(name: string, opts?: CallOptions): Promise<void> {
    return this.onDomain(name, opts, (d, t) => d.start(t));
  }

  shutdown(name: string, opts?: CallOptions): Promise<void> {
    return this.onDomain(name, opts, (d, t) => d.shutdown({ ...t, mode: this.opts.shutdownMode }));
  }

  destroy(name: string, opts?: CallOptions): Promise<void> {
    return this.onDomain(name, opts, (d, t) => d.destroy(t));
  }

  undefine(name: string, opts?: CallOptions): Promise<void> {
    return this.onDomain(name, opts, (d, t) => d.undefine(t));
  }

  state(name: string, opts?: CallOptions): Promise<DomainStatus> {
    return this.onDomain(name, opts, async (d, t) => {
      const s = await d.state(t);
      return { state: s.state as DomainRunState, reason: s.reason };
    });
  }

  getXml(name: string, opts?: CallOptions): Promise<string> {
    return this.onDomain(name, opts, (d, t) => d.xml(t));
  }

  async migrate(
    name: string,
    targetUri: string,
    opts: MigrateOptions = {},
    onProgress?: (progress: MigrationProgress) => void,
  ): Promise<MigrateResult> {
    const timeoutMs = opts.timeoutMs ?? this.opts.migrateTimeoutMs;
    const started = Date.now();
    let dom: Libvirt.Domain;
    try {
      const conn = await this.connectionWithin(timeoutMs);
      dom = await conn.lookupDomainByName(name, {
        timeoutMs: Math.max(1, timeoutMs - (Date.now() - started)),
      });
    } catch (err) {
      throw this.toError(err, name, "migration-failed");
    }
    this.completedJobs.delete(dom.uuid);
    const interval = opts.progressIntervalMs ?? this.opts.progressIntervalMs;
    let running = true;
    let stopPolling = () => {};
    const stopped = new Promise<void>((r) => {
      stopPolling = r;
    });
    // Progress: job stats from the worker thread while the migration itself runs on a thread of its own.
    const poller = (async () => {
      while (running) {
        await Promise.race([sleep(interval), stopped]);
        if (!running) break;
        // Job stats may wait while qemu's driver holds the domain's job lock (migration phases): a long
        // timeout, one call at a time, and not waited for once the migration is over.
        const s = await Promise.race([dom.jobStats({ timeoutMs: 30_000 }).catch(() => undefined), stopped]);
        if (running && s !== undefined && s.type !== "none" && s.type !== "completed")
          onProgress?.(toProgress(s));
      }
    })();
    const remaining = Math.max(1, timeoutMs - (Date.now() - started));
    try {
      await dom.migrateToURI3(
        targetUri,
        {
          live: opts.live ?? true,
          peerToPeer: opts.peerToPeer ?? true,
          persistentOnDest: opts.persistentOnDest ?? true,
          undefineSource: opts.undefineSource ?? true,
          autoConverge: opts.autoConverge ?? false,
          ...(opts.bandwidthMiBps ? { bandwidthMiBps: opts.bandwidthMiBps } : {}),
          ...(opts.migrateUri !== undefined ? { migrateUri: opts.migrateUri } : {}),
          ...(opts.listenAddress !== undefined ? { listenAddress: opts.listenAddress } : {}),
          ...(opts.destXml !== undefined ? { destXml: opts.destXml } : {}),
        },
        { timeoutMs: remaining },
      );
    } catch (err) {
      running = false;
      stopPolling();
      await poller;
      const mapped = this.toError(err, name, "migration-failed");
      // The contract: a timeout aborts the job, so the domain stays where it was.
      if (mapped.code === "timeout") await dom.abortJob({ timeoutMs: 10_000 }).catch(() => undefined);
      throw mapped;
    }
    running = false;
    stopPolling();
    await poller;
    // The job-completed event carries the final stats (the source domain may be gone already).
    const deadline = Date.now() + 1000;
    while (!this.completedJobs.has(dom.uuid) && Date.now() < deadline) await sleep(20);
    const final = this.completedJobs.get(dom.uuid);
    this.completedJobs.delete(dom.uuid);
    const durationMs = Date.now() - started;
    onProgress?.({ ...(final ? toProgress(final) : emptyProgress(durationMs)), percent: 100 });
    return {
      durationMs,
      ...(final?.downtimeMs !== undefined ? { downtimeMs: final.downtimeMs } : {}),
      ...(final?.dataProcessed !== undefined ? { dataTransferred: final.dataProcessed } : {}),
    };
  }

  async abortJob(name: string, opts?: CallOptions): Promise<void> {
    try {
      await this.onDomain(name, opts, (d, t) => d.abortJob(t));
    } catch (err) {
      // "no job is active on the domain": nothing to abort is fine.
      if (err instanceof HypervisorError && err.code === "not-running" && /no job/i.test(err.message)) return;
      throw err;
    }
  }

  setCephSecret(secret: CephSecret, opts?: CallOptions): Promise<void> {
    const key = Buffer.from(secret.keyBase64, "base64");
    if (key.length === 0) {
      return Promise.reject(
        new HypervisorError("operation-failed", "keyBase64 must be a non-empty base64 key"),
      );
    }
    const xml = `<secret ephemeral='no' private='yes'><uuid>${escapeXml(secret.uuid)}</uuid><usage type='ceph'><name>${escapeXml(secret.usageName)}</name></usage></secret>`;
    return this.run(undefined, opts, async (c, t) => {
      try {
        await c.defineSecret(xml, t);
        await c.setSecretValue(secret.uuid, key, t);
      } finally {
        key.fill(0);
      }
    });
  }

  setUserPassword(name: string, user: string, password: string, opts?: CallOptions): Promise<void> {
    return this.onDomain(name, opts, (d, t) => d.setUserPassword(user, password, t));
  }

  agentCommand(name: string, commandJson: string, opts?: CallOptions): Promise<string> {
    return this.onDomain(name, opts, (d, t) =>
      // The agent's own timeout a little inside ours, so libvirt answers before we give up.
      d.agentCommand(commandJson, {
        ...t,
        agentTimeoutSec: Math.max(1, Math.floor((t.timeoutMs - 500) / 1000)),
      }),
    );
  }

  onEvent(listener: DomainEventListener): Unsubscribe {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const conn = this.conn ?? (await this.connecting?.catch(() => undefined));
    this.conn = undefined;
    await conn?.close({ timeoutMs: 10_000 }).catch(() => undefined);
    this.emit({ kind: "connection-closed", reason: "client" });
  }

  /**
   * The connection, waiting at most `ms` for a (re)connect: the call's own timeout holds even when
   * connecting takes longer (the connect goes on, and later calls share it).
   */
  private connectionWithin(ms: number): Promise<Libvirt.Connection> {
    const pending = this.connection();
    if (this.conn !== undefined && !this.conn.closed) return pending;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new HypervisorError("timeout", `no connection to ${this.uri} within ${ms} ms`)),
        ms,
      );
      pending.then(
        (c) => {
          clearTimeout(timer);
          resolve(c);
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(err);
        },
      );
    });
  }

  /** The open connection, (re)connecting when there is none. One connect at a time. */
  private connection(): Promise<Libvirt.Connection> {
    if (this.closed) {
      return Promise.reject(
        new HypervisorError("connection-closed", `the connection to ${this.uri} is closed`),
      );
    }
    if (this.conn !== undefined && !this.conn.closed) return Promise.resolve(this.conn);
    if (this.connecting !== undefined) return this.connecting;
    const connecting = this.lib
      .open(this.uri, {
        timeoutMs: this.opts.defaultTimeoutMs,
        openTimeoutMs: this.opts.connectTimeoutMs,
        ...(this.opts.keepAlive ? { keepAlive: this.opts.keepAlive } : {}),
      })
      .then(
        (conn) => {
          this.connecting = undefined;
          if (this.closed) {
            void conn.close().catch(() => undefined);
            throw new HypervisorError("connection-closed", `the connection to ${this.uri} is closed`);
          }
          conn.on((e) => this.onLibvirtEvent(conn, e));
          this.conn = conn;
          return conn;
        },
        (err: unknown) => {
          this.connecting = undefined;
          throw err;
        },
      );
    this.connecting = connecting;
    return connecting;
  }

  /**
   * Drops the current connection when it cannot be used any more (libvirtd closed it, or a call is stuck
   * in it) and tells listeners that events may have been lost; the next call opens a new connection.
   */
  private lose(conn: Libvirt.Connection, reason: "error" | "eof" | "keepalive" | "client"): void {
    if (this.conn !== conn) return;
    this.conn = undefined;
    // close() gives up on a stuck worker after its timeout; the process is not held by it.
    void conn.close({ timeoutMs: 5000 }).catch(() => undefined);
    this.emit({ kind: "connection-closed", reason });
  }

  private async run<T>(
    domain: string | undefined,
    opts: CallOptions | undefined,
    fn: (conn: Libvirt.Connection, t: { timeoutMs: number }) => Promise<T>,
  ): Promise<T> {
    const timeoutMs = opts?.timeoutMs ?? this.opts.defaultTimeoutMs;
    const started = Date.now();
    let conn: Libvirt.Connection | undefined;
    try {
      conn = await this.connectionWithin(timeoutMs);
      return await fn(conn, { timeoutMs: Math.max(1, timeoutMs - (Date.now() - started)) });
    } catch (err) {
      // A call stuck in libvirt holds the connection's worker: start over on a fresh connection.
      if (conn !== undefined && err instanceof this.lib.LibvirtError && err.kind === "wedged") {
        this.lose(conn, "error");
      }
      throw this.toError(err, domain, undefined);
    }
  }

  /** Looks the domain up by name and acts on it, both within the call's one deadline. */
  private onDomain<T>(
    name: string,
    opts: CallOptions | undefined,
    fn: (dom: Libvirt.Domain, t: { timeoutMs: number }) => Promise<T>,
  ): Promise<T> {
    const deadline = Date.now() + (opts?.timeoutMs ?? this.opts.defaultTimeoutMs);
    const left = () => ({ timeoutMs: Math.max(1, deadline - Date.now()) });
    return this.run(name, opts, async (conn) => fn(await conn.lookupDomainByName(name, left()), left()));
  }

  /** Maps a binding error to the contract's codes (libvirt's virErrorNumber names, see virterror.h). */
  private toError(err: unknown, domain: string | undefined, fallback: HypervisorErrorCode | undefined) {
    if (err instanceof HypervisorError) return err;
    const details = { ...(domain !== undefined ? { domain } : {}), cause: err };
    if (!(err instanceof this.lib.LibvirtError)) {
      return new HypervisorError(
        "operation-failed",
        err instanceof Error ? err.message : String(err),
        details,
      );
    }
    const withCode = { ...details, ...(err.code !== 0 ? { nativeCode: err.code } : {}) };
    return new HypervisorError(errorCode(err, fallback), err.message, withCode);
  }

  private onLibvirtEvent(conn: Libvirt.Connection, e: Libvirt.LibvirtEvent): void {
    if (e.type === "close") {
      // libvirtd went away (eof/keepalive/error): reconnect on the next call.
      this.lose(conn, e.reason);
      return;
    }
    const domain: DomainRef = { name: e.domain.name, uuid: e.domain.uuid };
    if (e.type === "jobCompleted") {
      this.completedJobs.set(domain.uuid, e.stats);
      this.emit({ kind: "job-completed", domain });
      return;
    }
    if (e.type === "migrationIteration") return;
    switch (e.event) {
      case "defined":
        if (e.detail === "added") this.emit({ kind: "defined", domain });
        return;
      case "undefined":
        this.emit({ kind: "undefined", domain });
        return;
      case "started":
        this.shutdownBy.delete(domain.uuid);
        this.emit({
          kind: "started",
          domain,
          reason: (STARTED_REASONS.has(e.detail) ? e.detail : "booted") as StartedReason,
        });
        return;
      case "shutdown":
        // SHUTDOWN/guest or /host comes before STOPPED/shutdown and says who asked.
        this.shutdownBy.set(domain.uuid, e.detail);
        return;
      case "stopped": {
        const by = this.shutdownBy.get(domain.uuid);
        this.shutdownBy.delete(domain.uuid);
        let reason = (STOPPED_REASONS.has(e.detail) ? e.detail : "failed") as StoppedReason;
        if (reason === "shutdown" && by === "guest") reason = "shutdown-from-guest";
        if (reason === "shutdown" && by === "host") reason = "shutdown-from-host";
        this.emit({ kind: "stopped", domain, reason });
        return;
      }
      case "suspended":
      case "pmsuspended":
        this.emit({
          kind: "suspended",
          domain,
          reason: e.event === "pmsuspended" ? `pm-${e.detail}` : e.detail,
        });
        return;
      case "resumed":
        this.emit({ kind: "resumed", domain, reason: e.detail });
        return;
      case "crashed":
        this.emit({ kind: "crashed", domain });
        return;
    }
  }

  private emit(event: DomainEvent): void {
    for (const l of [...this.listeners]) {
      try {
        l(event);
      } catch {
        // A listener's failure is its own; the others still get the event.
      }
    }
  }
}

function errorCode(
  err: Libvirt.LibvirtError,
  fallback: HypervisorErrorCode | undefined,
): HypervisorErrorCode {
  switch (err.kind) {
    case "timeout":
    case "wedged":
      return "timeout";
    case "closed":
      return "connection-closed";
    case "invalid-argument":
    case "internal":
      return fallback ?? "operation-failed";
    case "libvirt":
      break;
  }
  // libvirt reports "already running" under several codes (OPERATION_INVALID for qemu, INTERNAL_ERROR
  // for the test driver); the message is what they share.
  if (/is already (running|active)/i.test(err.message)) return "already-active";
  switch (err.codeName) {
    case "VIR_ERR_NO_DOMAIN":
      return "no-domain";
    case "VIR_ERR_OPERATION_INVALID":
      // libvirt uses one code for both: "domain is already running/active" and "domain is not running".
      if (/already (running|active)|already exists/i.test(err.message)) return "already-active";
      return fallback === "migration-failed" && !/not running/i.test(err.message) ? fallback : "not-running";
    case "VIR_ERR_DOM_EXIST":
      return "already-active";
    case "VIR_ERR_XML_ERROR":
    case "VIR_ERR_XML_DETAIL":
    case "VIR_ERR_CONFIG_UNSUPPORTED":
      return "invalid-xml";
    case "VIR_ERR_AGENT_UNRESPONSIVE":
    case "VIR_ERR_AGENT_UNSYNCED":
      return "agent-unavailable";
    case "VIR_ERR_NO_SUPPORT":
    case "VIR_ERR_ARGUMENT_UNSUPPORTED":
    case "VIR_ERR_OPERATION_UNSUPPORTED":
      // qemu says "QEMU guest agent is not configured" with ARGUMENT_UNSUPPORTED.
      return /guest agent/i.test(err.message) ? "agent-unavailable" : "unsupported";
    case "VIR_ERR_NO_CONNECT":
    case "VIR_ERR_RPC":
    case "VIR_ERR_SYSTEM_ERROR":
    case "VIR_ERR_AUTH_FAILED":
      return "unreachable";
    case "VIR_ERR_OPERATION_TIMEOUT":
      return "timeout";
    default:
      return fallback ?? "operation-failed";
  }
}

function toProgress(s: Libvirt.JobStats): MigrationProgress {
  const total = s.dataTotal ?? 0;
  const remaining = s.dataRemaining ?? total;
  return {
    elapsedMs: s.timeElapsedMs ?? 0,
    dataTotal: total,
    dataProcessed: s.dataProcessed ?? 0,
    dataRemaining: remaining,
    memIteration: s.memoryIteration ?? 0,
    // From what is left, not from what was sent: qemu sends zero pages as a flag, so "processed" bytes
    // stay far below the total (a 64 MiB guest: ~0.6 MB processed) while "remaining" reaches 0.
    percent: total > 0 ? Math.min(99, Math.floor((100 * (total - remaining)) / total)) : 0,
  };
}

function emptyProgress(elapsedMs: number): MigrationProgress {
  return { elapsedMs, dataTotal: 0, dataProcessed: 0, dataRemaining: 0, memIteration: 0, percent: 0 };
}

function escapeXml(s: string): string {
  return s.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
