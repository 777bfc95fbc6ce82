// One consistent look at the HA state: every /zsha/ key read in one linearizable range, decoded.

import type { HaKv, KvEntry } from "./env.js";
import {
  type Assignment,
  AssignmentSchema,
  type Desired,
  DesiredSchema,
  decodeRecord,
  EpochSchema,
  type GlobalMaintenance,
  GlobalMaintenanceSchema,
  KEYS,
  type Migration,
  MigrationSchema,
  type NodeMaintenance,
  NodeMaintenanceSchema,
  type NodeReport,
  NodeReportSchema,
  type Owner,
  OwnerSchema,
  type PasswordReset,
  PasswordResetSchema,
} from "./records.js";

export interface ClusterView {
  readonly config: Uint8Array | undefined;
  readonly desired: Desired | undefined;
  readonly epoch: number;
  /** modRevision of the epoch key (0: never written): every assignment compares it. */
  readonly epochRevision: bigint;
  readonly assignment: Assignment | undefined;
  /** The owner record, present only while the owner keeps its lease alive. */
  readonly owner: (Owner & { readonly lease: bigint }) | undefined;
  readonly migration: Migration | undefined;
  /** Reports of the nodes whose agents are alive (each report lives on its node's lease). */
  readonly reports: ReadonlyMap<string, NodeReport>;
  readonly maintenance: ReadonlyMap<string, NodeMaintenance>;
  readonly globalMaintenance: GlobalMaintenance | undefined;
  readonly passwordReset: PasswordReset | undefined;
}

export async function loadView(kv: HaKv): Promise<ClusterView> {
  const all = await kv.list("/zsha/");
  const byKey = new Map<string, KvEntry>(all.map((e) => [e.key, e]));
  const one = <T>(key: string, schema: Parameters<typeof decodeRecord<T>>[0]): T | undefined => {
    const e = byKey.get(key);
    return e ? decodeRecord(schema, key, e.value) : undefined;
  };
  const reports = new Map<string, NodeReport>();
  const maintenance = new Map<string, NodeMaintenance>();
  for (const e of all) {
    if (e.key.startsWith(KEYS.nodesPrefix))
      reports.set(e.key.slice(KEYS.nodesPrefix.length), decodeRecord(NodeReportSchema, e.key, e.value));
    else if (e.key.startsWith(KEYS.maintenancePrefix)) {
      maintenance.set(
        e.key.slice(KEYS.maintenancePrefix.length),
        decodeRecord(NodeMaintenanceSchema, e.key, e.value),
      );
    }
  }
  const ownerEntry = byKey.get(KEYS.owner);
  const epochEntry = byKey.get(KEYS.epoch);
  return {
    config: byKey.get(KEYS.config)?.value,
    desired: one(KEYS.desired, DesiredSchema),
    epoch: epochEntry ? decodeRecord(EpochSchema, KEYS.epoch, epochEntry.value).epoch : 0,
    epochRevision: epochEntry?.modRevision ?? 0n,
    assignment: one(KEYS.assignment, AssignmentSchema),
    owner: ownerEntry
      ? { ...decodeRecord(OwnerSchema, KEYS.owner, ownerEntry.value), lease: ownerEntry.lease }
      : undefined,
    migration: one(KEYS.migration, MigrationSchema),
    reports,
    maintenance,
    globalMaintenance: one(KEYS.globalMaintenance, GlobalMaintenanceSchema),
    passwordReset: one(KEYS.passwordReset, PasswordResetSchema),
  };
}
