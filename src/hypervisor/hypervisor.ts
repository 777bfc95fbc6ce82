/**
 * The `Hypervisor` interface: the only way the HA controller touches the machine's VMs.
 *
 * Two drivers implement it: the libvirt driver (`libvirt.ts`, on our own N-API binding) and the simulated
 * driver (`sim.ts`, for the demo and the deterministic simulator). The controller therefore never imports
 * libvirt and runs unchanged in simulation.
 *
 * Contract, shared by every driver:
 * - Domains are addressed by name. Every call is async and rejects only with a `HypervisorError`.
 * - Every call honours `CallOptions.timeoutMs` (a driver default applies otherwise): a hung hypervisor
 *   daemon yields a `timeout` error, never a promise that stays pending. After a timeout the outcome of the
 *   call is unknown (it may still happen); callers re-read `state()` before concluding anything.
 * - `shutdown` only *asks* the guest (ACPI) and resolves when the request was delivered; the domain stops
 *   later, reported by a `stopped` event and by `state()`.
 * - Events are best effort and may be lost with the connection: a `connection-closed` event says so, and
 *   the controller re-reads state instead of trusting the event stream alone.
 * - After a `connection-closed` event not caused by `close()` (libvirtd restarted), the driver reconnects
 *   by itself on the next call and keeps delivering events to the same listeners; calls made while it
 *   cannot reconnect reject with `unreachable` or `timeout`.
 */

/** libvirt's domain states (virDomainState), spelled as words. */
export type DomainRunState =
  | "nostate"
  | "running"
  | "blocked"
  | "paused"
  | "shutdown" // being shut down (ACPI request in progress)
  | "shutoff"
  | "crashed"
  | "pmsuspended";

/** A domain's state plus libvirt's reason for it, e.g. `{ state: "shutoff", reason: "destroyed" }`. */
export interface DomainStatus {
  readonly state: DomainRunState;
  /** The reason as libvirt names it (virDomain*Reason), lower-case with dashes: "booted", "migrated",
   *  "shutdown", "destroyed", "crashed", "failed", "user", "unknown", … */
  readonly reason: string;
}

/** Identity of a defined domain. */
export interface DomainRef {
  readonly name: string;
  readonly uuid: string;
}

export interface CallOptions {
  /** Give up after this long (the call's outcome is then unknown). Drivers have a default. */
  readonly timeoutMs?: number;
}

export interface MigrateOptions extends CallOptions {
  /** Live migration (guest keeps running). Default true. */
  readonly live?: boolean;
  /** Source libvirtd talks to the destination libvirtd itself (VIR_MIGRATE_PEER2PEER). Default true. */
  readonly peerToPeer?: boolean;
  /** Define the domain persistently on the destination. Default true. */
  readonly persistentOnDest?: boolean;
  /** Undefine the domain on the source when done. Default true. */
  readonly undefineSource?: boolean;
  /** Bandwidth cap in MiB/s (0 or absent: unlimited). */
  readonly bandwidthMiBps?: number;
  /** Where qemu sends the memory stream, e.g. `tcp://10.0.0.2` (VIR_MIGRATE_PARAM_URI). */
  readonly migrateUri?: string;
  /** Address the destination qemu listens on (VIR_MIGRATE_PARAM_LISTEN_ADDRESS). */
  readonly listenAddress?: string;
  /** Throttle the guest's vCPUs when it dirties memory faster than we copy. */
  readonly autoConverge?: boolean;
  /** Domain XML to use on the destination (VIR_MIGRATE_PARAM_DEST_XML), e.g. with that node's seed. */
  readonly destXml?: string;
  /** How often `onProgress` is fed while the job runs. Driver default (about 500 ms) otherwise. */
  readonly progressIntervalMs?: number;
}

/** A snapshot of a running migration job (from libvirt's job stats). Bytes are of guest memory + disk. */
export interface MigrationProgress {
  readonly elapsedMs: number;
  readonly dataTotal: number;
  readonly dataProcessed: number;
  readonly dataRemaining: number;
  /** Memory copy pass (1 = first full pass); grows while the guest dirties memory faster than we copy. */
  readonly memIteration: number;
  /** 0..100, rounded down; 100 only once the job has completed. */
  readonly percent: number;
}

export interface MigrateResult {
  readonly durationMs: number;
  /** Guest pause at the switch-over, when the driver knows it. */
  readonly downtimeMs?: number;
  readonly dataTransferred?: number;
}

/** Why a domain stopped. `shutdown-from-guest` is the guest powering itself off (`halt -p` inside). */
export type StoppedReason =
  | "shutdown-from-guest"
  | "shutdown-from-host"
  | "shutdown" // finished shutting down; initiator unknown
  | "destroyed"
  | "crashed"
  | "migrated"
  | "saved"
  | "failed"
  | "from-snapshot";

export type StartedReason = "booted" | "migrated" | "restored" | "from-snapshot" | "wakeup";

export type DomainEvent =
  | { readonly kind: "defined"; readonly domain: DomainRef }
  | { readonly kind: "undefined"; readonly domain: DomainRef }
  | { readonly kind: "started"; readonly domain: DomainRef; readonly reason: StartedReason }
  | { readonly kind: "stopped"; readonly domain: DomainRef; readonly reason: StoppedReason }
  | { readonly kind: "suspended"; readonly domain: DomainRef; readonly reason: string }
  | { readonly kind: "resumed"; readonly domain: DomainRef; readonly reason: string }
  /** The guest panicked (libvirt CRASHED event); it may still be "running" per its on_crash action. */
  | { readonly kind: "crashed"; readonly domain: DomainRef }
  /** A migration job finished on this side (libvirt JOB_COMPLETED). */
  | { readonly kind: "job-completed"; readonly domain: DomainRef }
  /** The driver lost its connection to the hypervisor; events may have been missed. */
  | { readonly kind: "connection-closed"; readonly reason: "error" | "eof" | "keepalive" | "client" };

export type DomainEventListener = (event: DomainEvent) => void;

/** Removes the listener it was returned for. Idempotent. */
export type Unsubscribe = () => void;

export type HypervisorErrorCode =
  /** No domain of that name is defined here. */
  | "no-domain"
  /** The domain is already running (start, or migrate to a node that runs it). */
  | "already-active"
  /** The operation needs a running domain. */
  | "not-running"
  /** The call did not answer within its timeout; its outcome is unknown. */
  | "timeout"
  /** The hypervisor (or the migration target) cannot be reached. */
  | "unreachable"
  /** The connection was closed (by `close()` or by the daemon) while the call was pending. */
  | "connection-closed"
  /** The domain XML was refused. */
  | "invalid-xml"
  /** The qemu guest agent does not answer or is not configured. */
  | "agent-unavailable"
  /** The driver or hypervisor cannot do this (e.g. migration on libvirt's test driver). */
  | "unsupported"
  /** A migration failed; the domain keeps running on the source. */
  | "migration-failed"
  /** Anything else the hypervisor refused; `message` says what. */
  | "operation-failed";

export interface HypervisorErrorDetails {
  /** The domain the call was about, if any. */
  readonly domain?: string;
  /** The hypervisor's own error code (libvirt's virErrorNumber), when there is one. */
  readonly nativeCode?: number;
  readonly cause?: unknown;
}

export class HypervisorError extends Error {
  override readonly name = "HypervisorError";
  readonly code: HypervisorErrorCode;
  readonly domain: string | undefined;
  readonly nativeCode: number | undefined;

  constructor(code: HypervisorErrorCode, message: string, details: HypervisorErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.domain = details.domain;
    this.nativeCode = details.nativeCode;
  }
}

export function isHypervisorError(err: unknown, code?: HypervisorErrorCode): err is HypervisorError {
  return err instanceof HypervisorError && (code === undefined || err.code === code);
}

/** A cephx key for libvirt's secret store, referenced by the RBD disk's `<auth><secret uuid=…/>`. */
export interface CephSecret {
  readonly uuid: string;
  /** libvirt's usage name for the secret, e.g. `client.zsha secret`. */
  readonly usageName: string;
  /** The key as `ceph auth get-key` prints it (base64). Never logged. */
  readonly keyBase64: string;
}

export interface Hypervisor {
  /** Which driver this is ("libvirt", "sim"), said at agent start. */
  readonly driver: string;
  /** The connection URI, e.g. `qemu:///system` or `sim://ceph-1`. */
  readonly uri: string;

  /** The hypervisor host's name, as a migration target would address it. */
  hostname(opts?: CallOptions): Promise<string>;

  /** Defines (or redefines, same name and UUID) a persistent domain. Takes effect at the next start. */
  define(domainXml: string, opts?: CallOptions): Promise<DomainRef>;
  /** Starts a defined domain; `already-active` if it runs. */
  start(name: string, opts?: CallOptions): Promise<void>;
  /** Asks the guest to power off (ACPI); resolves once asked, not once off. */
  shutdown(name: string, opts?: CallOptions): Promise<void>;
  /** Stops the domain at once (kills qemu); `not-running` if it is not running. */
  destroy(name: string, opts?: CallOptions): Promise<void>;
  /** Removes the persistent definition (a running domain keeps running as transient). */
  undefine(name: string, opts?: CallOptions): Promise<void>;
  /** Current state with reason; `no-domain` if not defined here. */
  state(name: string, opts?: CallOptions): Promise<DomainStatus>;
  /** The domain's current XML description. */
  getXml(name: string, opts?: CallOptions): Promise<string>;

  /**
   * Live-migrates a running domain to `targetUri` (e.g. `qemu+tcp://10.0.0.2/system`), feeding
   * `onProgress` while the job runs. Resolves when the domain runs on the target; rejects with
   * `migration-failed`/`timeout`/`unreachable` otherwise, the domain then still running here.
   * A timeout aborts the job.
   */
  migrate(
    name: string,
    targetUri: string,
    opts?: MigrateOptions,
    onProgress?: (progress: MigrationProgress) => void,
  ): Promise<MigrateResult>;
  /** Aborts the domain's running job (a migration); resolves even if no job was running. */
  abortJob(name: string, opts?: CallOptions): Promise<void>;

  /** Stores the cephx key for RBD disks (defines or updates the libvirt secret). */
  setCephSecret(secret: CephSecret, opts?: CallOptions): Promise<void>;
  /** Sets a guest user's password through the qemu guest agent. */
  setUserPassword(name: string, user: string, password: string, opts?: CallOptions): Promise<void>;
  /** Sends a raw qemu-guest-agent JSON command and returns its JSON reply text. */
  agentCommand(name: string, commandJson: string, opts?: CallOptions): Promise<string>;

  /** Subscribes to domain and connection events. */
  onEvent(listener: DomainEventListener): Unsubscribe;

  /** Closes the connection; pending calls reject with `connection-closed`. Idempotent. */
  close(): Promise<void>;
}
