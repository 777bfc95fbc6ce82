import type { CloseReason, DomainState, JobType, LifecycleEvent } from "./constants.js";

export interface DomainId {
  readonly name: string;
  readonly uuid: string;
}

/** virDomainGetState: the state and libvirt's reason for it, e.g. shutoff/destroyed. */
export interface DomainStateInfo {
  readonly state: DomainState;
  readonly reason: string;
  readonly stateCode: number;
  readonly reasonCode: number;
}

/**
 * virDomainGetJobStats, with the fields zsha reads named and typed (all optional: which ones appear
 * depends on the job and the hypervisor); `raw` has every field under libvirt's own name.
 */
export interface JobStats {
  readonly type: JobType;
  readonly timeElapsedMs?: number;
  readonly timeRemainingMs?: number;
  readonly dataTotal?: number;
  readonly dataProcessed?: number;
  readonly dataRemaining?: number;
  readonly memoryTotal?: number;
  readonly memoryProcessed?: number;
  readonly memoryRemaining?: number;
  readonly memoryIteration?: number;
  readonly memoryDirtyRate?: number;
  readonly memoryBps?: number;
  /** Guest pause at switch-over (completed jobs). */
  readonly downtimeMs?: number;
  /** virDomainJobOperation of the job (e.g. 4 = migration out). */
  readonly operation?: number;
  readonly success?: boolean;
  readonly raw: Readonly<Record<string, number | string | boolean>>;
}

export type LibvirtEvent =
  | {
      readonly type: "lifecycle";
      readonly domain: DomainId;
      readonly event: LifecycleEvent;
      /** The detail as libvirt names it for this event, e.g. started/booted, stopped/destroyed. */
      readonly detail: string;
      readonly eventCode: number;
      readonly detailCode: number;
    }
  | { readonly type: "jobCompleted"; readonly domain: DomainId; readonly stats: JobStats }
  | { readonly type: "migrationIteration"; readonly domain: DomainId; readonly iteration: number }
  /** The connection died (keepalive, EOF, error) or was closed by the client. */
  | { readonly type: "close"; readonly reason: CloseReason };

export type DomainEvent = Exclude<LibvirtEvent, { type: "close" }>;
