/**
 * A domain of a connection. It holds only the name and UUID: each call looks the domain up by UUID on
 * the worker thread, so no libvirt object is owned by JS (and none waits for the GC to be freed).
 */

import type { CallOptions, Connection } from "./connection.js";
import {
  AGENT_TIMEOUT_DEFAULT,
  DESTROY_GRACEFUL,
  DOMAIN_STATES,
  JOB_STATS_COMPLETED,
  LIFECYCLE_DETAILS,
  LIFECYCLE_EVENTS,
  type LifecycleEvent,
  MIGRATE_FLAGS,
  MIGRATE_PARAMS,
  nameOf,
  SET_USER_PASSWORD_ENCRYPTED,
  SHUTDOWN_FLAGS,
  STATE_REASONS,
  UNDEFINE_NVRAM,
  XML_FLAGS,
} from "./constants.js";
import { parseJobStats } from "./job-stats.js";
import type { NativeDomainId, NativeParam } from "./native.js";
import type { DomainEvent, DomainId, DomainStateInfo, JobStats, LibvirtEvent } from "./types.js";

export type DomainEventListeners = Map<string, Set<(event: DomainEvent) => void>>;

export interface MigrateParams {
  /** VIR_MIGRATE_LIVE. Default true. */
  readonly live?: boolean;
  /** VIR_MIGRATE_PEER2PEER: the source daemon drives the migration. Default true. */
  readonly peerToPeer?: boolean;
  /** VIR_MIGRATE_PERSIST_DEST. Default false. */
  readonly persistentOnDest?: boolean;
  /** VIR_MIGRATE_UNDEFINE_SOURCE. Default false. */
  readonly undefineSource?: boolean;
  /** VIR_MIGRATE_AUTO_CONVERGE. Default false. */
  readonly autoConverge?: boolean;
  /** VIR_MIGRATE_ABORT_ON_ERROR. Default false. */
  readonly abortOnError?: boolean;
  /** VIR_MIGRATE_PARAM_BANDWIDTH, MiB/s. */
  readonly bandwidthMiBps?: number;
  /** VIR_MIGRATE_PARAM_URI: where qemu sends the stream, e.g. tcp://10.88.0.2. */
  readonly migrateUri?: string;
  /** VIR_MIGRATE_PARAM_LISTEN_ADDRESS: the address the destination qemu listens on. */
  readonly listenAddress?: string;
  /** VIR_MIGRATE_PARAM_DEST_NAME. */
  readonly destName?: string;
  /** VIR_MIGRATE_PARAM_DEST_XML. */
  readonly destXml?: string;
  /** VIR_MIGRATE_PARAM_PERSIST_XML. */
  readonly persistXml?: string;
}

function migrateFlags(p: MigrateParams): number {
  let flags = 0;
  if (p.live !== false) flags |= MIGRATE_FLAGS.live;
  if (p.peerToPeer !== false) flags |= MIGRATE_FLAGS.peerToPeer;
  if (p.persistentOnDest === true) flags |= MIGRATE_FLAGS.persistDest;
  if (p.undefineSource === true) flags |= MIGRATE_FLAGS.undefineSource;
  if (p.autoConverge === true) flags |= MIGRATE_FLAGS.autoConverge;
  if (p.abortOnError === true) flags |= MIGRATE_FLAGS.abortOnError;
  return flags;
}

function migrateParams(p: MigrateParams): NativeParam[] {
  const out: NativeParam[] = [];
  if (p.bandwidthMiBps !== undefined) {
    if (!Number.isInteger(p.bandwidthMiBps) || p.bandwidthMiBps < 0) {
      throw new TypeError("bandwidthMiBps must be a non-negative integer");
    }
    out.push([MIGRATE_PARAMS.bandwidth, "ullong", p.bandwidthMiBps]);
  }
  const strings: [keyof MigrateParams, string][] = [
    ["migrateUri", MIGRATE_PARAMS.uri],
    ["listenAddress", MIGRATE_PARAMS.listenAddress],
    ["destName", MIGRATE_PARAMS.destName],
    ["destXml", MIGRATE_PARAMS.destXml],
    ["persistXml", MIGRATE_PARAMS.persistXml],
  ];
  for (const [key, param] of strings) {
    const v = p[key];
    if (v === undefined) continue;
    if (typeof v !== "string" || v === "") throw new TypeError(`${key} must be a non-empty string`);
    out.push([param, "string", v]);
  }
  return out;
}

export function toLifecycleEvent(domain: NativeDomainId, event: number, detail: number): LibvirtEvent {
  const name = nameOf(LIFECYCLE_EVENTS, event) as LifecycleEvent;
  return {
    type: "lifecycle",
    domain,
    event: name,
    detail: nameOf(LIFECYCLE_DETAILS[name] ?? [], detail),
    eventCode: event,
    detailCode: detail,
  };
}

export class Domain implements DomainId {
  readonly conn: Connection;
  readonly name: string;
  readonly uuid: string;

  constructor(conn: Connection, name: string, uuid: string) {
    this.conn = conn;
    this.name = name;
    this.uuid = uuid;
  }

  /** virDomainCreate: starts the defined domain. */
  start(opts?: CallOptions): Promise<void> {
    return this.conn.call("virDomainCreate", opts, (n, t) => n.domainCreate(this.uuid, 0, t));
  }

  /**
   * virDomainShutdownFlags: asks the guest to power off; resolves when asked. `acpi` (default) presses
   * the power button, `agent` asks the guest agent, `default` lets the driver choose (the test driver
   * accepts only this one).
   */
  shutdown(opts: CallOptions & { mode?: keyof typeof SHUTDOWN_FLAGS } = {}): Promise<void> {
    const flags = SHUTDOWN_FLAGS[opts.mode ?? "acpi"];
    return this.conn.call("virDomainShutdown", opts, (n, t) => n.domainShutdown(this.uuid, flags, t));
  }

  /** virDomainDestroyFlags: kills the domain (`graceful`: SIGTERM only, no SIGKILL). */
  destroy(opts: CallOptions & { graceful?: boolean } = {}): Promise<void> {
    const flags = opts.graceful === true ? DESTROY_GRACEFUL : 0;
    return this.conn.call("virDomainDestroy", opts, (n, t) => n.domainDestroy(this.uuid, flags, t));
  }

  /** virDomainUndefineFlags (`nvram`: remove the NVRAM file too). */
  undefine(opts: CallOptions & { nvram?: boolean } = {}): Promise<void> {
    const flags = opts.nvram === true ? UNDEFINE_NVRAM : 0;
    return this.conn.call("virDomainUndefine", opts, (n, t) => n.domainUndefine(this.uuid, flags, t));
  }

  /** virDomainGetState with the reason. */
  async state(opts?: CallOptions): Promise<DomainStateInfo> {
    const s = await this.conn.call("virDomainGetState", opts, (n, t) => n.domainState(this.uuid, t));
    const state = (DOMAIN_STATES[s.state] ?? "nostate") as DomainStateInfo["state"];
    return {
      state,
      reason: nameOf(STATE_REASONS[state], s.reason),
      stateCode: s.state,
      reasonCode: s.reason,
    };
  }

  /** virDomainGetXMLDesc. */
  xml(
    opts: CallOptions & { secure?: boolean; inactive?: boolean; migratable?: boolean } = {},
  ): Promise<string> {
    let flags = 0;
    if (opts.secure === true) flags |= XML_FLAGS.secure;
    if (opts.inactive === true) flags |= XML_FLAGS.inactive;
    if (opts.migratable === true) flags |= XML_FLAGS.migratable;
    return this.conn.call("virDomainGetXMLDesc", opts, (n, t) => n.domainXML(this.uuid, flags, t));
  }

  /** virDomainGetJobStats of the running job (`completed`: of the last completed one). */
  async jobStats(opts: CallOptions & { completed?: boolean } = {}): Promise<JobStats> {
    const flags = opts.completed === true ? JOB_STATS_COMPLETED : 0;
    const r = await this.conn.call("virDomainGetJobStats", opts, (n, t) =>
      n.domainJobStats(this.uuid, flags, t),
    );
    return parseJobStats(r.type, r.stats);
  }

  /** virDomainAbortJob. */
  abortJob(opts?: CallOptions): Promise<void> {
    return this.conn.call("virDomainAbortJob", opts, (n, t) => n.domainAbortJob(this.uuid, t));
  }

  /** virDomainSetUserPassword (through the guest agent; `encrypted`: the password is already crypted). */
  setUserPassword(
    user: string,
    password: string,
    opts: CallOptions & { encrypted?: boolean } = {},
  ): Promise<void> {
    const flags = opts.encrypted === true ? SET_USER_PASSWORD_ENCRYPTED : 0;
    return this.conn.call("virDomainSetUserPassword", opts, (n, t) =>
      n.domainSetUserPassword(this.uuid, user, password, flags, t),
    );
  }

  /** virDomainQemuAgentCommand: a raw guest-agent JSON command; returns the reply text. */
  agentCommand(command: string, opts: CallOptions & { agentTimeoutSec?: number } = {}): Promise<string> {
    const agentTimeout = opts.agentTimeoutSec ?? AGENT_TIMEOUT_DEFAULT;
    return this.conn.call("virDomainQemuAgentCommand", opts, (n, t) =>
      n.domainAgentCommand(this.uuid, command, agentTimeout, 0, t),
    );
  }

  /**
   * virDomainMigrateToURI3 to `destUri` (the destination libvirt URI for peer-to-peer). Resolves when the
   * migration finished. Runs on a thread of its own: `jobStats()` and `abortJob()` work meanwhile.
   * A timeout rejects but does not abort the job; call `abortJob()` for that.
   */
  migrateToURI3(destUri: string, params: MigrateParams = {}, opts?: CallOptions): Promise<void> {
    return this.conn.call("virDomainMigrateToURI3", opts, (n, t) =>
      n.domainMigrateToURI3(this.uuid, destUri, migrateParams(params), migrateFlags(params), t),
    );
  }

  /** Subscribes to this domain's events (lifecycle, job completed, migration iteration). */
  on(listener: (event: DomainEvent) => void): () => void {
    const map = this.conn.domainListeners;
    let set = map.get(this.uuid);
    if (set === undefined) {
      set = new Set();
      map.set(this.uuid, set);
    }
    set.add(listener);
    return () => {
      const s = map.get(this.uuid);
      s?.delete(listener);
      if (s !== undefined && s.size === 0) map.delete(this.uuid);
    };
  }
}
