/**
 * The simulated hypervisor: a `Hypervisor` with no libvirt behind it, for the demo and the deterministic
 * simulator. Deterministic: every effect happens in a callback of the injected `SimScheduler` (no timers
 * of its own), in the order the scheduler runs them, so a seed and a scheduler reproduce a run exactly.
 *
 * A `SimWorld` holds the hosts and the shared disk (`SimStorage`); each host has one `SimHypervisor`
 * (its "libvirtd"). Live migration moves a domain between hosts of the same world.
 *
 * What it models, because the HA controller must cope with it:
 * - calls take time (`SimTimings`) and honour their timeout; a timed-out call may still take effect;
 * - a hung daemon (`hang()`): calls never answer and time out, running guests keep running;
 * - host power loss (`powerOff()`): guests vanish without closing the disk (stale watchers), calls fail
 *   as unreachable, definitions survive for `powerOn()`;
 * - start failures, guest shutdown from inside, qemu crash, guests ignoring ACPI, migration failures,
 *   and a dropped connection (libvirtd restart) with its `connection-closed` event;
 * - write access: a running domain writes through its disk client unless that client was blocklisted.
 */

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
  type StoppedReason,
  type Unsubscribe,
} from "./hypervisor.js";
import type { CancelTimer, SimScheduler } from "./sim-scheduler.js";
import { SimStorage } from "./sim-storage.js";

/** How long things take in the simulation (milliseconds). */
export interface SimTimings {
  /** Any call's round trip to the daemon (state, getXml, define, …). */
  readonly callMs: number;
  readonly startMs: number;
  readonly destroyMs: number;
  /** From the ACPI request until the guest is off (if it honours ACPI). */
  readonly guestShutdownMs: number;
  /** From start until the qemu guest agent answers. */
  readonly agentReadyMs: number;
  readonly migrationMs: number;
  /** Guest pause at the switch-over of a live migration. */
  readonly migrationDowntimeMs: number;
  /** Default call timeout when a call gives none. */
  readonly defaultTimeoutMs: number;
  /** Progress feed interval of a migration when the call gives none. */
  readonly progressIntervalMs: number;
}

export const DEFAULT_SIM_TIMINGS: SimTimings = {
  callMs: 5,
  startMs: 800,
  destroyMs: 200,
  guestShutdownMs: 3000,
  agentReadyMs: 5000,
  migrationMs: 2000,
  migrationDowntimeMs: 50,
  defaultTimeoutMs: 30_000,
  progressIntervalMs: 500,
};

interface SimDomain {
  name: string;
  uuid: string;
  xml: string;
  image: string | undefined;
  memoryBytes: number;
  persistent: boolean;
  state: DomainRunState;
  reason: string;
  client: string | undefined;
  startedAt: number;
  shutdownTimer: CancelTimer | undefined;
  migration: { abort: (why: string) => void } | undefined;
  passwords: Map<string, string>;
}

type HostMode = "up" | "hung" | "down";

function unescapeXml(s: string): string {
  return s
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, "&");
}

/** The few facts the simulation needs from a domain XML. */
export function parseSimDomainXml(xml: string): {
  name: string;
  uuid: string | undefined;
  image: string | undefined;
  memoryBytes: number;
} {
  const name = /<name>([^<]+)<\/name>/.exec(xml)?.[1];
  if (!/^\s*<domain\s[^>]*type=['"][a-z]+['"]/.test(xml) || !name) {
    throw new HypervisorError("invalid-xml", "domain XML needs a <domain type=…> root and a <name>");
  }
  const uuid = /<uuid>([^<]+)<\/uuid>/.exec(xml)?.[1];
  const disk = /<disk[^>]*device=['"]disk['"][^>]*>([\s\S]*?)<\/disk>/.exec(xml)?.[1] ?? "";
  const source =
    /<source\s+protocol=['"]rbd['"]\s+name=['"]([^'"]+)['"]/.exec(disk)?.[1] ??
    /<source\s+file=['"]([^'"]+)['"]/.exec(disk)?.[1];
  const mem = /<memory(?:\s+unit=['"](\w+)['"])?>(\d+)<\/memory>/.exec(xml);
  const unit = {
    b: 1,
    bytes: 1,
    KiB: 1024,
    k: 1024,
    MiB: 1024 ** 2,
    M: 1024 ** 2,
    GiB: 1024 ** 3,
    G: 1024 ** 3,
  };
  const factor = mem ? (unit[(mem[1] ?? "KiB") as keyof typeof unit] ?? 1024) : 1024 ** 3;
  return {
    name: unescapeXml(name),
    uuid,
    image: source === undefined ? undefined : unescapeXml(source),
    memoryBytes: mem ? Number(mem[2]) * factor : 1024 ** 3,
  };
}

/** The hosts of a simulated cluster and their shared disk. */
export class SimWorld {
  readonly storage: SimStorage;
  private readonly hosts = new Map<string, SimHypervisor>();
  private uuidSeq = 0;

  constructor(
    readonly scheduler: SimScheduler,
    readonly timings: SimTimings = DEFAULT_SIM_TIMINGS,
  ) {
    this.storage = new SimStorage(scheduler);
  }

  /** The hypervisor of host `name` (created on first use), reachable as `sim://<name>`. */
  host(name: string): SimHypervisor {
    let h = this.hosts.get(name);
    if (!h) {
      h = new SimHypervisor(this, name);
      this.hosts.set(name, h);
    }
    return h;
  }

  /** The host a migration URI names (`sim://ceph-2`, `sim://ceph-2/system`), if it exists. */
  hostByUri(uri: string): SimHypervisor | undefined {
    const m = /^sim:\/\/([^/]+)/.exec(uri);
    return m ? this.hosts.get(m[1]!) : undefined;
  }

  /** Hosts where domain `name` is running (any state but shut off). Two is split brain. */
  runningOn(name: string): string[] {
    return [...this.hosts.values()].filter((h) => h.isRunning(name)).map((h) => h.hostName);
  }

  /** Hosts where domain `name` runs AND can write its disk. The safety invariant: at most one. */
  writersOf(name: string): string[] {
    return [...this.hosts.values()].filter((h) => h.isRunningWithWriteAccess(name)).map((h) => h.hostName);
  }

  /** @internal a fresh UUID for a domain XML without one; deterministic. */
  nextUuid(): string {
    const n = (++this.uuidSeq).toString(16).padStart(12, "0");
    return `00000000-0000-4000-8000-${n}`;
  }
}

export class SimHypervisor implements Hypervisor {
  readonly driver = "sim";
  readonly uri: string;
  private readonly domains = new Map<string, SimDomain>();
  private readonly listeners = new Set<DomainEventListener>();
  private readonly secrets = new Map<string, CephSecret>();
  private readonly pending = new Set<(err: HypervisorError) => void>();
  private mode: HostMode = "up";
  private closed = false;
  private startFailures: string[] = [];
  private migrationFailures: string[] = [];
  private ignoreAcpi = false;
  /** Events that happened while the daemon was hung, delivered when it answers again. */
  private heldEvents: DomainEvent[] = [];

  constructor(
    private readonly world: SimWorld,
    readonly hostName: string,
  ) {
    this.uri = `sim://${hostName}`;
  }

  private get t(): SimTimings {
    return this.world.timings;
  }

  private get sched(): SimScheduler {
    return this.world.scheduler;
  }

  // ---- Hypervisor ----------------------------------------------------------------------------

  hostname(opts?: CallOptions): Promise<string> {
    return this.call(opts, this.t.callMs, undefined, () => this.hostName);
  }

  define(domainXml: string, opts?: CallOptions): Promise<DomainRef> {
    return this.call(opts, this.t.callMs, undefined, () => {
      const parsed = parseSimDomainXml(domainXml);
      const existing = this.domains.get(parsed.name);
      if (existing && parsed.uuid && parsed.uuid !== existing.uuid) {
        throw new HypervisorError(
          "operation-failed",
          `domain '${parsed.name}' already exists with uuid ${existing.uuid}`,
          { domain: parsed.name },
        );
      }
      const d: SimDomain = existing ?? {
        name: parsed.name,
        uuid: parsed.uuid ?? this.world.nextUuid(),
        xml: domainXml,
        image: parsed.image,
        memoryBytes: parsed.memoryBytes,
        persistent: true,
        state: "shutoff",
        reason: "unknown",
        client: undefined,
        startedAt: 0,
        shutdownTimer: undefined,
        migration: undefined,
        passwords: new Map(),
      };
      // A running domain keeps its live settings; the new definition applies at its next start.
      d.xml = domainXml;
      d.persistent = true;
      this.domains.set(d.name, d);
      this.emit({ kind: "defined", domain: ref(d) });
      return ref(d);
    });
  }

  start(name: string, opts?: CallOptions): Promise<void> {
    return this.call(opts, this.t.startMs, name, () => {
      const d = this.need(name);
      if (d.state !== "shutoff") {
        throw new HypervisorError("already-active", `domain '${name}' is already active`, { domain: name });
      }
      const failure = this.startFailures.shift();
      if (failure !== undefined) throw new HypervisorError("operation-failed", failure, { domain: name });
      // A start applies the persistent definition, including one redefined while the domain ran.
      const parsed = parseSimDomainXml(d.xml);
      d.image = parsed.image;
      d.memoryBytes = parsed.memoryBytes;
      this.boot(d, "booted");
    });
  }

  shutdown(name: string, opts?: CallOptions): Promise<void> {
    return this.call(opts, this.t.callMs, name, () => {
      const d = this.needRunning(name);
      if (this.ignoreAcpi || d.shutdownTimer) return;
      d.state = "shutdown";
      d.reason = "user";
      d.shutdownTimer = this.sched.schedule(this.t.guestShutdownMs, () => {
        d.shutdownTimer = undefined;
        if (this.mode !== "down" && d.state === "shutdown") this.halt(d, "shutdown-from-host");
      });
    });
  }

  destroy(name: string, opts?: CallOptions): Promise<void> {
    return this.call(opts, this.t.destroyMs, name, () => {
      this.halt(this.needRunning(name), "destroyed");
    });
  }

  undefine(name: string, opts?: CallOptions): Promise<void> {
    return this.call(opts, this.t.callMs, name, () => {
      const d = this.need(name);
      if (!d.persistent) {
        throw new HypervisorError("operation-failed", `cannot undefine transient domain '${name}'`, {
          domain: name,
        });
      }
      d.persistent = false;
      if (d.state === "shutoff") this.domains.delete(name);
      this.emit({ kind: "undefined", domain: ref(d) });
    });
  }

  state(name: string, opts?: CallOptions): Promise<DomainStatus> {
    return this.call(opts, this.t.callMs, name, () => {
      const d = this.need(name);
      return { state: d.state, reason: d.reason };
    });
  }

  getXml(name: string, opts?: CallOptions): Promise<string> {
    return this.call(opts, this.t.callMs, name, () => this.need(name).xml);
  }

  migrate(
    name: string,
    targetUri: string,
    opts: MigrateOptions = {},
    onProgress?: (progress: MigrationProgress) => void,
  ): Promise<MigrateResult> {
    const timeoutMs = opts.timeoutMs ?? this.t.defaultTimeoutMs;
    const deadline = this.sched.now() + timeoutMs;
    // Phase 1: the daemon accepts the job (a normal call); phase 2: the job runs until done or aborted.
    // The job starts inside the acceptance callback (not in a promise continuation), so its timers are
    // placed at the same virtual instant however the caller drives the scheduler.
    let job: Promise<MigrateResult> | undefined;
    const accepted = this.call({ timeoutMs }, this.t.callMs, name, () => {
      const d = this.needRunning(name);
      if (d.migration) {
        throw new HypervisorError("operation-failed", `domain '${name}' already has a migration job`, {
          domain: name,
        });
      }
      const target = this.world.hostByUri(targetUri);
      if (!target || target === this || target.mode === "down") {
        throw new HypervisorError(
          target === this ? "operation-failed" : "unreachable",
          target === this
            ? "Attempt to migrate guest to the same host"
            : `unable to connect to the migration target ${targetUri}`,
          { domain: name },
        );
      }
      if (target.isRunning(name)) {
        throw new HypervisorError("already-active", `domain '${name}' is already active`, { domain: name });
      }
      job = this.runMigration(d, target, opts, deadline, onProgress);
      // Handled by the caller through `accepted.then` below; this only keeps Node from reporting it early.
      job.catch(() => undefined);
    });
    return accepted.then(() => job!);
  }

  abortJob(name: string, opts?: CallOptions): Promise<void> {
    return this.call(opts, this.t.callMs, name, () => {
      this.need(name).migration?.abort("migration job: canceled by client");
    });
  }

  setCephSecret(secret: CephSecret, opts?: CallOptions): Promise<void> {
    return this.call(opts, this.t.callMs, undefined, () => {
      this.secrets.set(secret.uuid, secret);
    });
  }

  setUserPassword(name: string, user: string, password: string, opts?: CallOptions): Promise<void> {
    return this.call(opts, this.t.callMs, name, () => {
      this.needAgent(name).passwords.set(user, password);
    });
  }

  agentCommand(name: string, commandJson: string, opts?: CallOptions): Promise<string> {
    return this.call(opts, this.t.callMs, name, () => {
      const d = this.needAgent(name);
      let cmd: { execute?: unknown };
      try {
        cmd = JSON.parse(commandJson) as { execute?: unknown };
      } catch {
        throw new HypervisorError("operation-failed", "guest agent command is not valid JSON", {
          domain: name,
        });
      }
      if (cmd.execute === "guest-get-host-name") return JSON.stringify({ return: { "host-name": d.name } });
      if (typeof cmd.execute !== "string") {
        throw new HypervisorError("operation-failed", "guest agent command has no 'execute'", {
          domain: name,
        });
      }
      return JSON.stringify({ return: {} });
    });
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
    this.failPending(new HypervisorError("connection-closed", "connection closed by the client"));
    this.emit({ kind: "connection-closed", reason: "client" });
    this.listeners.clear();
  }

  // ---- Inspection (tests, simulator invariants, demo) ----------------------------------------

  /** Running in any sense (running, paused, shutting down): a qemu process exists for it. */
  isRunning(name: string): boolean {
    const d = this.domains.get(name);
    return d !== undefined && d.state !== "shutoff";
  }

  /** Running and able to write its disk (its disk client was not blocklisted). */
  isRunningWithWriteAccess(name: string): boolean {
    const d = this.domains.get(name);
    return (
      d !== undefined &&
      d.state !== "shutoff" &&
      (d.image === undefined || this.world.storage.canWrite(d.client))
    );
  }

  /** The disk client address of a running domain (what a fence blocklists). */
  diskClient(name: string): string | undefined {
    return this.domains.get(name)?.client;
  }

  isDefined(name: string): boolean {
    return this.domains.get(name)?.persistent === true;
  }

  passwordOf(name: string, user: string): string | undefined {
    return this.domains.get(name)?.passwords.get(user);
  }

  cephSecret(uuid: string): CephSecret | undefined {
    return this.secrets.get(uuid);
  }

  get hostMode(): HostMode {
    return this.mode;
  }

  // ---- Faults ----------------------------------------------------------------------------------

  /** libvirtd hangs: from now on calls never answer (they time out). Guests keep running. */
  hang(): void {
    if (this.mode === "up") this.mode = "hung";
  }

  /** libvirtd answers again: events held meanwhile are delivered; calls made while hung stay lost. */
  unhang(): void {
    if (this.mode !== "hung") return;
    this.mode = "up";
    const held = this.heldEvents;
    this.heldEvents = [];
    for (const event of held) this.emit(event);
  }

  /** The host loses power: guests vanish without closing their disk, the daemon is unreachable. */
  powerOff(): void {
    if (this.mode === "down") return;
    this.mode = "down";
    for (const d of this.domains.values()) {
      d.shutdownTimer?.();
      d.shutdownTimer = undefined;
      d.migration?.abort("source host lost power");
      if (d.client) this.world.storage.abandon(d.client);
      d.client = undefined;
      if (d.state !== "shutoff") {
        d.state = "shutoff";
        d.reason = "unknown";
      }
      if (!d.persistent) this.domains.delete(d.name);
    }
    this.failPending(new HypervisorError("unreachable", `host ${this.hostName} is down`));
  }

  /** The host is back: its persistent domains are defined and shut off; nothing starts by itself. */
  powerOn(): void {
    if (this.mode === "down") this.mode = "up";
  }

  /** The next `count` starts fail with `message` (e.g. a missing bridge). */
  failStarts(count: number, message = "internal error: qemu unexpectedly closed the monitor"): void {
    for (let i = 0; i < count; i++) this.startFailures.push(message);
  }

  /** The next migration fails at the end with `message`; the domain stays on this host. */
  failNextMigration(message = "operation failed: migration job: unexpectedly failed"): void {
    this.migrationFailures.push(message);
  }

  /** Guests ignore ACPI shutdown requests (a hung guest OS). */
  setIgnoreAcpi(ignore: boolean): void {
    this.ignoreAcpi = ignore;
  }

  /** The guest powers itself off (`halt -p` inside). */
  guestShutdown(name: string): void {
    const d = this.domains.get(name);
    if (d && d.state !== "shutoff" && this.mode !== "down") this.halt(d, "shutdown-from-guest");
  }

  /** qemu dies (killed, or it crashed). */
  crashGuest(name: string): void {
    const d = this.domains.get(name);
    if (d && d.state !== "shutoff" && this.mode !== "down") this.halt(d, "crashed");
  }

  /** The connection to libvirtd drops (e.g. libvirtd restarted): pending calls fail, an event says so. */
  dropConnection(): void {
    this.failPending(new HypervisorError("connection-closed", "connection to the hypervisor was lost"));
    this.emit({ kind: "connection-closed", reason: "eof" });
  }

  // ---- Internals -------------------------------------------------------------------------------

  /**
   * Runs `effect` after `latencyMs` unless the host is hung or down; rejects with `timeout` when
   * `timeoutMs` passes first. The effect runs at its time even after a timeout (the outcome of a
   * timed-out call is unknown to the caller, as with a real daemon).
   */
  private call<T>(
    opts: CallOptions | undefined,
    latencyMs: number,
    domain: string | undefined,
    effect: () => T,
  ) {
    return new Promise<T>((resolve, reject) => {
      if (this.closed) {
        reject(new HypervisorError("connection-closed", "the connection is closed", { domain }));
        return;
      }
      if (this.mode === "down") {
        reject(new HypervisorError("unreachable", `host ${this.hostName} is down`, { domain }));
        return;
      }
      const timeoutMs = opts?.timeoutMs ?? this.t.defaultTimeoutMs;
      let settled = false;
      const fail = (err: HypervisorError) => {
        if (settled) return;
        settled = true;
        cancelTimeout();
        this.pending.delete(fail);
        reject(err);
      };
      this.pending.add(fail);
      const cancelTimeout = this.sched.schedule(timeoutMs, () =>
        fail(new HypervisorError("timeout", `no answer from ${this.uri} within ${timeoutMs} ms`, { domain })),
      );
      if (this.mode === "hung") return; // never answers
      this.sched.schedule(latencyMs, () => {
        if (this.mode !== "up" || this.closed) return;
        let value: T;
        try {
          value = effect();
        } catch (err) {
          fail(
            err instanceof HypervisorError
              ? err
              : new HypervisorError("operation-failed", String(err), { domain, cause: err }),
          );
          return;
        }
        if (settled) return;
        settled = true;
        cancelTimeout();
        this.pending.delete(fail);
        resolve(value);
      });
    });
  }

  private failPending(err: HypervisorError): void {
    for (const fail of [...this.pending]) fail(err);
  }

  private need(name: string): SimDomain {
    const d = this.domains.get(name);
    if (!d)
      throw new HypervisorError("no-domain", `Domain not found: no domain with matching name '${name}'`, {
        domain: name,
      });
    return d;
  }

  private needRunning(name: string): SimDomain {
    const d = this.need(name);
    if (d.state === "shutoff") {
      throw new HypervisorError("not-running", `Requested operation is not valid: domain is not running`, {
        domain: name,
      });
    }
    return d;
  }

  private needAgent(name: string): SimDomain {
    const d = this.needRunning(name);
    if (this.sched.now() < d.startedAt + this.t.agentReadyMs) {
      throw new HypervisorError(
        "agent-unavailable",
        "Guest agent is not responding: QEMU guest agent is not connected",
        {
          domain: name,
        },
      );
    }
    return d;
  }

  private boot(d: SimDomain, reason: "booted" | "migrated"): void {
    d.state = "running";
    d.reason = reason;
    d.startedAt = this.sched.now();
    if (d.image !== undefined) d.client = this.world.storage.open(d.image, this.hostName, d.name);
    this.emit({ kind: "started", domain: ref(d), reason });
  }

  private halt(d: SimDomain, why: StoppedReason): void {
    d.shutdownTimer?.();
    d.shutdownTimer = undefined;
    d.migration?.abort(`domain stopped (${why}) during migration`);
    if (d.client) this.world.storage.close(d.client);
    d.client = undefined;
    d.state = "shutoff";
    d.reason = why === "shutdown-from-guest" || why === "shutdown-from-host" ? "shutdown" : why;
    this.emit({ kind: "stopped", domain: ref(d), reason: why });
    if (!d.persistent) this.domains.delete(d.name);
  }

  private runMigration(
    d: SimDomain,
    target: SimHypervisor,
    opts: MigrateOptions,
    deadline: number,
    onProgress?: (progress: MigrationProgress) => void,
  ): Promise<MigrateResult> {
    return new Promise<MigrateResult>((resolve, reject) => {
      const began = this.sched.now();
      const total = d.memoryBytes;
      const interval = opts.progressIntervalMs ?? this.t.progressIntervalMs;
      const timers: CancelTimer[] = [];
      const end = () => {
        for (const cancel of timers) cancel();
        d.migration = undefined;
      };
      const fail = (code: HypervisorErrorCode, message: string) => {
        end();
        reject(new HypervisorError(code, message, { domain: d.name }));
      };
      d.migration = { abort: (why) => fail("migration-failed", `operation aborted: ${why}`) };
      const progress = (): MigrationProgress => {
        const elapsedMs = this.sched.now() - began;
        const done = Math.min(total, Math.floor((total * elapsedMs) / this.t.migrationMs));
        return {
          elapsedMs,
          dataTotal: total,
          dataProcessed: done,
          dataRemaining: total - done,
          memIteration: 1,
          percent: Math.min(99, Math.floor((100 * elapsedMs) / this.t.migrationMs)),
        };
      };
      const tick = () => {
        if (!d.migration) return;
        onProgress?.(progress());
        timers.push(this.sched.schedule(interval, tick));
      };
      timers.push(this.sched.schedule(interval, tick));
      timers.push(
        this.sched.schedule(Math.max(0, deadline - this.sched.now()), () => {
          fail("timeout", `migration of '${d.name}' did not finish before its timeout; the job was aborted`);
        }),
      );
      timers.push(
        this.sched.schedule(this.t.migrationMs, () => {
          if (this.mode !== "up" || target.mode !== "up") {
            // A hung source or target daemon never completes the job; the timeout will fire.
            return;
          }
          if (target.isRunning(d.name)) {
            fail("already-active", `domain '${d.name}' is already active`);
            return;
          }
          const failure = this.migrationFailures.shift();
          if (failure !== undefined) {
            fail("migration-failed", failure);
            return;
          }
          end();
          const xml = opts.destXml ?? d.xml;
          target.receiveMigrated(d, xml, opts.persistentOnDest ?? true);
          // The source qemu closes the disk after the target opened it (the switch-over).
          const undefineSource = opts.undefineSource ?? true;
          if (undefineSource) d.persistent = false;
          this.halt(d, "migrated");
          if (undefineSource) this.emit({ kind: "undefined", domain: ref(d) });
          this.emit({ kind: "job-completed", domain: ref(d) });
          onProgress?.({ ...progress(), dataProcessed: total, dataRemaining: 0, percent: 100 });
          resolve({
            durationMs: this.sched.now() - began,
            downtimeMs: this.t.migrationDowntimeMs,
            dataTransferred: total,
          });
        }),
      );
    });
  }

  /** @internal the destination side of a live migration. */
  receiveMigrated(source: SimDomain, xml: string, persistent: boolean): void {
    const existing = this.domains.get(source.name);
    const d: SimDomain = {
      ...source,
      xml,
      persistent: persistent || (existing?.persistent ?? false),
      state: "shutoff",
      client: undefined,
      shutdownTimer: undefined,
      migration: undefined,
      passwords: new Map(source.passwords),
    };
    this.domains.set(d.name, d);
    if (persistent) this.emit({ kind: "defined", domain: ref(d) });
    this.boot(d, "migrated");
    // The guest (and its agent) kept running: the agent answers at once on the target.
    d.startedAt = source.startedAt;
  }

  private emit(event: DomainEvent): void {
    if (this.closed && event.kind !== "connection-closed") return;
    if (this.mode === "hung" && event.kind !== "connection-closed") {
      this.heldEvents.push(event);
      return;
    }
    for (const listener of [...this.listeners]) listener(event);
  }
}

function ref(d: SimDomain): DomainRef {
  return { name: d.name, uuid: d.uuid };
}
