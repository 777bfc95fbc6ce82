/**
 * A libvirt connection with a promise API.
 *
 * Threads (see src/native/core.h): each connection owns one worker thread that runs its libvirt calls
 * one at a time. Side calls get a one-shot thread of their own: the migration, and job stats and abort,
 * which qemu's driver may hold back during a migration; so none of them can hold up the others.
 * libvirt's event loop runs on a process-wide thread. Nothing here blocks the JS thread.
 *
 * Timeouts: every call takes `timeoutMs` (else the connection's default). When it passes the promise
 * rejects with kind `timeout` and the call's outcome is unknown. If libvirt is truly hung, the worker
 * stays stuck in that call: later calls then reject at once with kind `wedged` rather than queue behind
 * it, and the caller should `close()` the connection (which gives up on the stuck thread after its own
 * timeout) and open a new one, which gets a fresh thread.
 *
 * Lifetime: an open connection keeps the process alive (like a socket); `close()` lets it exit.
 */
import { CLOSE_REASONS, type CloseReason, LIST_DOMAINS_ALL, versionString } from "./constants.js";
import { Domain, type DomainEventListeners, toLifecycleEvent } from "./domain.js";
import { fromNative, LibvirtError } from "./errors.js";
import { parseJobStats } from "./job-stats.js";
import { loadNative, type NativeConnection, type NativeEvent } from "./native.js";
import type { LibvirtEvent } from "./types.js";

export interface CallOptions {
  /** Reject after this many ms (the outcome is then unknown). Default: the connection's `timeoutMs`. */
  readonly timeoutMs?: number;
}

export interface OpenOptions {
  readonly readOnly?: boolean;
  /** Default timeout of every call on this connection, ms. Default 30 s. */
  readonly timeoutMs?: number;
  /** Timeout of the open itself, ms. Default: `timeoutMs`. */
  readonly openTimeoutMs?: number;
  /**
   * libvirt keepalive (virConnectSetKeepAlive) for remote connections: the connection is declared dead,
   * and a `close` event with reason `keepalive` emitted, after `count` unanswered probes sent every
   * `intervalSec`. `false` turns it off. Default { intervalSec: 5, count: 3 }. Local drivers ignore it.
   */
  readonly keepAlive?: { readonly intervalSec: number; readonly count: number } | false;
}

export interface Versions {
  /** libvirt library in this process, e.g. "9.0.0". */
  readonly library: string;
  /** libvirt library of the daemon (same as `library` for in-process drivers). */
  readonly daemon: string;
  /** Hypervisor version as the driver reports it (qemu's for QEMU). */
  readonly hypervisor: string;
  /** Driver name, e.g. "QEMU" or "TEST". */
  readonly type: string;
}

export type LibvirtEventListener = (event: LibvirtEvent) => void;

const DEFAULT_TIMEOUT_MS = 30_000;

interface Pending {
  readonly reject: (err: LibvirtError) => void;
}

/** Opens a connection (virConnectOpenAuth without credentials) and subscribes to its events. */
export async function open(uri: string, opts: OpenOptions = {}): Promise<Connection> {
  if (typeof uri !== "string" || uri === "") throw new TypeError("uri must be a non-empty string");
  const conn = new Connection(uri, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  const ka = opts.keepAlive === undefined ? { intervalSec: 5, count: 3 } : opts.keepAlive;
  try {
    await conn.call("virConnectOpen", { timeoutMs: opts.openTimeoutMs }, (n, t) =>
      n.open(uri, opts.readOnly === true, ka === false ? 0 : ka.intervalSec, ka === false ? 0 : ka.count, t),
    );
  } catch (err) {
    conn.abandon();
    throw err;
  }
  return conn;
}

export class Connection {
  readonly uri: string;
  readonly defaultTimeoutMs: number;
  private readonly native: NativeConnection;
  private readonly pending = new Set<Pending>();
  private readonly listeners = new Set<LibvirtEventListener>();
  /** Per-domain subscriptions by UUID, fed from the same stream. */
  readonly domainListeners: DomainEventListeners = new Map();
  private closing: Promise<void> | undefined;
  private isClosed = false;

  /** Use `open()`. */
  constructor(uri: string, defaultTimeoutMs: number) {
    if (!(defaultTimeoutMs > 0)) throw new TypeError("timeoutMs must be a positive number");
    this.uri = uri;
    this.defaultTimeoutMs = defaultTimeoutMs;
    const { NativeConnection } = loadNative();
    this.native = new NativeConnection((ev) => this.dispatch(ev));
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /**
   * Runs one native call with a timeout. The JS timer, not the worker, decides the timeout, so a call
   * stuck inside libvirt still rejects on time.
   */
  call<T>(
    name: string,
    opts: CallOptions | undefined,
    fn: (n: NativeConnection, timeoutMs: number) => Promise<T>,
  ) {
    const timeoutMs = opts?.timeoutMs ?? this.defaultTimeoutMs;
    if (!(timeoutMs > 0)) {
      return Promise.reject(
        new LibvirtError("invalid-argument", name, "timeoutMs must be a positive number"),
      );
    }
    if (this.isClosed) return Promise.reject(new LibvirtError("closed", name, "the connection is closed"));
    return new Promise<T>((resolve, reject) => {
      const entry: Pending = {
        reject: (err) => {
          clearTimeout(timer);
          this.pending.delete(entry);
          reject(err);
        },
      };
      const timer = setTimeout(
        () => entry.reject(new LibvirtError("timeout", name, `no answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.pending.add(entry);
      let promise: Promise<T>;
      try {
        promise = fn(this.native, timeoutMs);
      } catch (err) {
        entry.reject(fromNative(name, err));
        return;
      }
      promise.then(
        (value) => {
          if (!this.pending.has(entry)) return;
          clearTimeout(timer);
          this.pending.delete(entry);
          resolve(value);
        },
        (err: unknown) => {
          if (this.pending.has(entry)) entry.reject(fromNative(name, err));
        },
      );
    });
  }

  /** virConnectGetHostname. */
  hostname(opts?: CallOptions): Promise<string> {
    return this.call("virConnectGetHostname", opts, (n, t) => n.hostname(t));
  }

  /** virGetVersion, virConnectGetLibVersion, virConnectGetVersion, virConnectGetType. */
  async versions(opts?: CallOptions): Promise<Versions> {
    const v = await this.call("virConnectGetVersion", opts, (n, t) => n.versions(t));
    return {
      library: versionString(v.library),
      daemon: versionString(v.daemon),
      hypervisor: versionString(v.hypervisor),
      type: v.type,
    };
  }

  /** virDomainDefineXML: defines (or redefines) a persistent domain. */
  async defineDomain(xml: string, opts?: CallOptions): Promise<Domain> {
    const id = await this.call("virDomainDefineXML", opts, (n, t) => n.defineXML(xml, t));
    return new Domain(this, id.name, id.uuid);
  }

  /** virDomainLookupByName; rejects with VIR_ERR_NO_DOMAIN when there is none. */
  async lookupDomainByName(name: string, opts?: CallOptions): Promise<Domain> {
    const id = await this.call("virDomainLookupByName", opts, (n, t) => n.lookupByName(name, t));
    return new Domain(this, id.name, id.uuid);
  }

  /** virDomainLookupByUUIDString. */
  async lookupDomainByUUID(uuid: string, opts?: CallOptions): Promise<Domain> {
    const id = await this.call("virDomainLookupByUUIDString", opts, (n, t) => n.lookupByUUID(uuid, t));
    return new Domain(this, id.name, id.uuid);
  }

  /** virConnectListAllDomains: every domain, running or defined. */
  async listDomains(opts?: CallOptions): Promise<Domain[]> {
    const ids = await this.call("virConnectListAllDomains", opts, (n, t) =>
      n.listDomains(LIST_DOMAINS_ALL, t),
    );
    return ids.map((id) => new Domain(this, id.name, id.uuid));
  }

  /** virSecretDefineXML: defines (or updates) a secret; returns its UUID. */
  defineSecret(xml: string, opts?: CallOptions): Promise<string> {
    return this.call("virSecretDefineXML", opts, (n, t) => n.secretDefineXML(xml, t));
  }

  /** virSecretSetValue: the raw secret bytes (for cephx: the decoded key). */
  setSecretValue(uuid: string, value: Uint8Array, opts?: CallOptions): Promise<void> {
    const buf = Buffer.from(value);
    return this.call("virSecretSetValue", opts, (n, t) => n.secretSetValue(uuid, buf, t)).finally(() =>
      buf.fill(0),
    );
  }

  /** virSecretUndefine. */
  undefineSecret(uuid: string, opts?: CallOptions): Promise<void> {
    return this.call("virSecretUndefine", opts, (n, t) => n.secretUndefine(uuid, t));
  }

  /** Test hook: keeps the worker thread busy for `ms`, as a hung libvirt call would. */
  occupyWorkerForTest(ms: number, opts?: CallOptions): Promise<void> {
    return this.call("occupyWorker", opts, (n, t) => n.sleep(ms, t));
  }

  /** Subscribes to every event of this connection; returns the unsubscribe function. */
  on(listener: LibvirtEventListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /**
   * Closes the connection (deregisters events, virConnectClose) and lets the process exit. Pending calls
   * reject with kind `closed`. If the worker is stuck, gives up on it after the timeout. Idempotent.
   */
  close(opts?: CallOptions): Promise<void> {
    if (this.closing !== undefined) return this.closing;
    const timeoutMs = opts?.timeoutMs ?? this.defaultTimeoutMs;
    const closing = this.call("virConnectClose", { timeoutMs }, (n, t) => n.close(t)).then(
      () => this.finishClose(),
      (err: unknown) => {
        this.finishClose();
        // A stuck worker or a close that failed: the connection is unusable either way.
        if (!(err instanceof LibvirtError && (err.kind === "timeout" || err.kind === "wedged"))) throw err;
      },
    );
    this.closing = closing;
    return closing;
  }

  /** Drops the connection without waiting for the worker (after a failed open, or a stuck close). */
  abandon(): void {
    this.finishClose();
  }

  private finishClose(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.native.abandon();
    for (const p of [...this.pending])
      p.reject(new LibvirtError("closed", "call", "the connection was closed"));
  }

  private dispatch(ev: NativeEvent): void {
    const event = toEvent(ev);
    const perDomain = event.type === "close" ? undefined : this.domainListeners.get(event.domain.uuid);
    const listeners: LibvirtEventListener[] = [
      ...this.listeners,
      ...((perDomain ?? []) as LibvirtEventListener[]),
    ];
    for (const l of listeners) {
      try {
        l(event);
      } catch (err) {
        // A listener's error is the program's, not ours: surface it as an uncaught exception, after the
        // other listeners had the event (as a thrown error would in any other callback).
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }
}

function toEvent(ev: NativeEvent): LibvirtEvent {
  switch (ev.type) {
    case "lifecycle":
      return toLifecycleEvent(ev.domain, ev.event, ev.detail);
    case "jobCompleted":
      return { type: "jobCompleted", domain: ev.domain, stats: parseJobStats("completed", ev.stats) };
    case "migrationIteration":
      return { type: "migrationIteration", domain: ev.domain, iteration: ev.iteration };
    case "close":
      return { type: "close", reason: (CLOSE_REASONS[ev.reason] ?? "error") as CloseReason };
  }
}
