// Everything the HA logic touches, as interfaces (Proxmox ha-manager's Env): the agent wires real ones
// (KV client, libvirt, rbd, the system clock), the simulator wires simulated ones. src/ha imports no I/O.

import type { Hypervisor } from "../hypervisor/hypervisor.js";
import type { ImageStore } from "../image/image-store.js";

export interface HaClock {
  /** Monotonic milliseconds (never jumps; self-fencing is measured on it). */
  now(): number;
  /** Wall-clock milliseconds since the epoch (for records people read). */
  wallMs(): number;
  sleep(ms: number): Promise<void>;
}

export interface KvEntry {
  readonly key: string;
  readonly value: Uint8Array;
  readonly createRevision: bigint;
  readonly modRevision: bigint;
  readonly version: bigint;
  readonly lease: bigint;
}

export type TxnCompare =
  | {
      readonly key: string;
      readonly target: "createRevision" | "modRevision" | "version";
      readonly op: "==" | "!=" | ">" | "<";
      readonly value: bigint;
    }
  | { readonly key: string; readonly target: "value"; readonly op: "==" | "!="; readonly value: Uint8Array };

export type TxnOp =
  | { readonly put: { readonly key: string; readonly value: Uint8Array; readonly lease?: bigint } }
  | { readonly delete: { readonly key: string; readonly prefix?: boolean } };

/** One change a watch saw: the key, and whether it was deleted or (a put of version 1) created. */
export interface KvChange {
  readonly key: string;
  readonly deleted: boolean;
  readonly created: boolean;
}

/** The replicated store as the HA logic uses it: like any client (DESIGN.md). Reads are linearizable. */
export interface HaKv {
  /**
   * Calls `onChange` for each change to a key under `prefix` as this node's member applies it, until the
   * returned function is called. A hint to look again sooner, never a source of truth: changes may be
   * missed (connection lost, member restarted) or arrive late, and the HA always re-reads (linearizably)
   * before acting. After an interruption the watch re-establishes itself and calls `onChange(undefined)`
   * (something may have been missed). `onChange` must not throw or block.
   */
  watch(prefix: string, onChange: (change: KvChange | undefined) => void): () => void;
  get(key: string): Promise<KvEntry | undefined>;
  list(prefix: string): Promise<KvEntry[]>;
  /** Applies `success` when every compare holds, else `failure`; resolves whether it succeeded. */
  txn(
    compare: readonly TxnCompare[],
    success: readonly TxnOp[],
    failure?: readonly TxnOp[],
  ): Promise<boolean>;
  put(key: string, value: Uint8Array, lease?: bigint): Promise<void>;
  leaseGrant(ttlSeconds: number): Promise<bigint>;
  /** Renews; resolves with the seconds left (0: the lease no longer exists). */
  leaseKeepAlive(id: bigint): Promise<number>;
  leaseRevoke(id: bigint): Promise<void>;
  /** Whether this node's member is the Raft leader (only it runs the controller). */
  isLocalLeader(): boolean;
}

export interface HostProbes {
  /** Whether the MN-VM's qemu process runs on this host (checked when libvirtd does not answer). */
  qemuRunning(domainName: string): Promise<boolean>;
  /** Storage-network reachability of the other nodes, by name (from the peer transport's contact times). */
  peers(): Record<string, boolean>;
}

export type HaLogLevel = "debug" | "info" | "warn" | "error";
export type HaLogger = (level: HaLogLevel, fields: Record<string, unknown>, event: string) => void;

export interface HaTiming {
  /** How often the agent and the controller look at the world. */
  readonly loopMs: number;
  readonly nodeLeaseSeconds: number;
  readonly ownerLeaseSeconds: number;
  /** The owner destroys its MN-VM when it could not renew for ownerLease − this. */
  readonly fenceMarginMs: number;
  /** An assigned node that has not claimed ownership within this is passed over. */
  readonly claimTimeoutMs: number;
  /** Start attempts on one node before it gives up and the next node is tried. */
  readonly startAttempts: number;
  /** Start failures within this window count against a node. */
  readonly failureWindowMs: number;
  /** ACPI shutdown wait before destroying (zsha stop). */
  readonly shutdownTimeoutMs: number;
}

export const DEFAULT_TIMING: HaTiming = {
  loopMs: 500,
  nodeLeaseSeconds: 3,
  ownerLeaseSeconds: 5,
  fenceMarginMs: 1000,
  claimTimeoutMs: 15_000,
  startAttempts: 2,
  failureWindowMs: 10 * 60_000,
  shutdownTimeoutMs: 60_000,
};

/** Builds what the hypervisor needs to start the MN-VM on this node (domain XML from the current config). */
export interface MnvmLauncher {
  readonly domainName: string;
  /** Domain XML for this node from the cluster config stored in the KV (per-node network applied). */
  domainXml(configJson: Uint8Array): Promise<string>;
  /** libvirt URI of another node's hypervisor, for live migration. */
  migrationUri(node: string): string;
}

export interface HaEnv {
  readonly node: string;
  readonly agentVersion: string;
  readonly clock: HaClock;
  readonly kv: HaKv;
  readonly hypervisor: Hypervisor;
  readonly image: ImageStore;
  readonly probes: HostProbes;
  readonly launcher: MnvmLauncher;
  readonly log: HaLogger;
  readonly timing: HaTiming;
}
