// libvirt enums and flags the wrapper uses, with their ABI values (libvirt-domain.h, libvirt-host.h of
// libvirt 9.0; libvirt never renumbers them). Names are spelled like hypervisor.ts: lower case, dashes.

/** virDomainState, by value. */
export const DOMAIN_STATES = [
  "nostate",
  "running",
  "blocked",
  "paused",
  "shutdown",
  "shutoff",
  "crashed",
  "pmsuspended",
] as const;
export type DomainState = (typeof DOMAIN_STATES)[number];

/** The reason enums per state (virDomainRunningReason, virDomainShutoffReason, …), by value. */
export const STATE_REASONS: Readonly<Record<DomainState, readonly string[]>> = {
  nostate: ["unknown"],
  running: [
    "unknown",
    "booted",
    "migrated",
    "restored",
    "from-snapshot",
    "unpaused",
    "migration-canceled",
    "save-canceled",
    "wakeup",
    "crashed",
    "postcopy",
    "postcopy-failed",
  ],
  blocked: ["unknown"],
  paused: [
    "unknown",
    "user",
    "migration",
    "save",
    "dump",
    "ioerror",
    "watchdog",
    "from-snapshot",
    "shutting-down",
    "snapshot",
    "crashed",
    "starting-up",
    "postcopy",
    "postcopy-failed",
    "api-error",
  ],
  shutdown: ["unknown", "user"],
  shutoff: [
    "unknown",
    "shutdown",
    "destroyed",
    "crashed",
    "migrated",
    "saved",
    "failed",
    "from-snapshot",
    "daemon",
  ],
  crashed: ["unknown", "panicked"],
  pmsuspended: ["unknown"],
};

/** virDomainEventType, by value. */
export const LIFECYCLE_EVENTS = [
  "defined",
  "undefined",
  "started",
  "suspended",
  "resumed",
  "stopped",
  "shutdown",
  "pmsuspended",
  "crashed",
] as const;
export type LifecycleEvent = (typeof LIFECYCLE_EVENTS)[number];

/** The detail enums per lifecycle event (virDomainEventStartedDetailType, …), by value. */
export const LIFECYCLE_DETAILS: Readonly<Record<LifecycleEvent, readonly string[]>> = {
  defined: ["added", "updated", "renamed", "from-snapshot"],
  undefined: ["removed", "renamed"],
  started: ["booted", "migrated", "restored", "from-snapshot", "wakeup"],
  suspended: [
    "paused",
    "migrated",
    "ioerror",
    "watchdog",
    "restored",
    "from-snapshot",
    "api-error",
    "postcopy",
    "postcopy-failed",
  ],
  resumed: ["unpaused", "migrated", "from-snapshot", "postcopy", "postcopy-failed"],
  stopped: ["shutdown", "destroyed", "crashed", "migrated", "saved", "failed", "from-snapshot"],
  shutdown: ["finished", "guest", "host"],
  pmsuspended: ["memory", "disk"],
  crashed: ["panicked", "crashloaded"],
};

/** virDomainJobType, by value. */
export const JOB_TYPES = ["none", "bounded", "unbounded", "completed", "failed", "cancelled"] as const;
export type JobType = (typeof JOB_TYPES)[number];

/** virConnectCloseReason, by value. */
export const CLOSE_REASONS = ["error", "eof", "keepalive", "client"] as const;
export type CloseReason = (typeof CLOSE_REASONS)[number];

export const SHUTDOWN_FLAGS = { default: 0, acpi: 1, agent: 2 } as const;
export const DESTROY_GRACEFUL = 1;
export const UNDEFINE_NVRAM = 4;
export const XML_FLAGS = { secure: 1, inactive: 2, migratable: 8 } as const;
export const JOB_STATS_COMPLETED = 1;
export const SET_USER_PASSWORD_ENCRYPTED = 1;
export const LIST_DOMAINS_ALL = 0;
/** virDomainQemuAgentCommandTimeoutValues: wait as long as libvirt's default. */
export const AGENT_TIMEOUT_DEFAULT = -1;

export const MIGRATE_FLAGS = {
  live: 1 << 0,
  peerToPeer: 1 << 1,
  persistDest: 1 << 3,
  undefineSource: 1 << 4,
  abortOnError: 1 << 12,
  autoConverge: 1 << 13,
} as const;

export const MIGRATE_PARAMS = {
  uri: "migrate_uri",
  destName: "destination_name",
  destXml: "destination_xml",
  persistXml: "persistent_xml",
  bandwidth: "bandwidth",
  listenAddress: "listen_address",
} as const;

/** Turns a libvirt enum value into its name, keeping unknown (newer) values visible. */
export function nameOf(names: readonly string[], value: number): string {
  return names[value] ?? `unknown-${value}`;
}

/** libvirt packs versions as major * 1,000,000 + minor * 1,000 + micro. */
export function versionString(packed: number): string {
  return `${Math.floor(packed / 1_000_000)}.${Math.floor(packed / 1000) % 1000}.${packed % 1000}`;
}
