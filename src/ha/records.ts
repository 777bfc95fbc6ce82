// The HA state in the replicated KV: key layout (DESIGN.md "The MN-VM lease") and the JSON records stored
// there, validated on every read — a record another version wrote badly is an error, never a guess.

import { z } from "zod";

export const KEYS = {
  config: "/zsha/config",
  /** 32 random bytes: the MAC key of lease renewals sent as datagrams (src/client/lease-datagrams.ts). */
  leaseRenewalKey: "/zsha/lease-renewal-key",
  node: (name: string) => `/zsha/nodes/${name}`,
  nodesPrefix: "/zsha/nodes/",
  desired: "/zsha/mnvm/desired",
  epoch: "/zsha/mnvm/epoch",
  assignment: "/zsha/mnvm/assignment",
  owner: "/zsha/mnvm/owner",
  migration: "/zsha/mnvm/migration",
  historyPrefix: "/zsha/mnvm/history/",
  history: (epoch: number, n: number) =>
    `/zsha/mnvm/history/${String(epoch).padStart(10, "0")}-${String(n).padStart(4, "0")}`,
  passwordReset: "/zsha/mnvm/password-reset",
  globalMaintenance: "/zsha/maintenance/global",
  maintenance: (name: string) => `/zsha/maintenance/nodes/${name}`,
  maintenancePrefix: "/zsha/maintenance/nodes/",
} as const;

/** A fact and when this node observed it (wall-clock ms), so readers can show its age. */
const fact = <T extends z.ZodTypeAny>(value: T) =>
  z.object({ value, atMs: z.number(), error: z.string().optional() });

export const NodeReportSchema = z.object({
  node: z.string(),
  agentVersion: z.string(),
  reportedAtMs: z.number(),
  /** libvirtd answers. */
  hypervisor: fact(z.boolean()),
  /** When libvirtd does not answer: whether the MN-VM's qemu process still runs here (SPEC §3a). */
  qemuRunning: fact(z.boolean()).optional(),
  /** The MN-VM image is reachable from here. */
  image: fact(z.boolean()),
  /** Storage-network reachability of the other nodes, by name. */
  peers: z.record(z.string(), fact(z.boolean())),
  /** Recent start failures on this node (wall ms). */
  startFailures: z.array(z.object({ atMs: z.number(), reason: z.string() })),
  /** The MN-VM domain as this node's hypervisor reports it. */
  mnvm: fact(z.string()).optional(),
});
export type NodeReport = z.infer<typeof NodeReportSchema>;

export const DesiredSchema = z.object({
  state: z.enum(["running", "stopped"]),
  by: z.string(),
  atMs: z.number(),
});
export type Desired = z.infer<typeof DesiredSchema>;

export const EpochSchema = z.object({ epoch: z.number().int().nonnegative() });

export const AssignmentSchema = z.object({
  node: z.string(),
  epoch: z.number().int().positive(),
  /** "start": fence the previous owner and start; "migration": the MN-VM already runs there (live migrated). */
  kind: z.enum(["start", "migration"]),
  reason: z.string(),
  /** Node that owned the MN-VM before (to fence and to name in the start record). */
  previous: z.string().optional(),
  atMs: z.number(),
  /** Set by the node when it took ownership. */
  claimedAtMs: z.number().optional(),
  /** Set by the node when it gave up after failed starts. */
  failed: z.string().optional(),
});
export type Assignment = z.infer<typeof AssignmentSchema>;

export const OwnerSchema = z.object({
  node: z.string(),
  epoch: z.number().int().positive(),
  sinceMs: z.number(),
});
export type Owner = z.infer<typeof OwnerSchema>;

export const MigrationSchema = z.object({
  id: z.string(),
  from: z.string(),
  to: z.string(),
  /** The owner epoch the migration belongs to; a newer epoch makes it moot. */
  epoch: z.number().int().positive(),
  state: z.enum(["requested", "running", "done", "failed"]),
  percent: z.number().min(0).max(100),
  reason: z.string(),
  error: z.string().optional(),
  atMs: z.number(),
});
export type Migration = z.infer<typeof MigrationSchema>;

export const HistorySchema = z.object({
  atMs: z.number(),
  node: z.string(),
  epoch: z.number(),
  /** initial | failover | migration | operator | restart-after-guest-shutdown | restart-after-crash */
  kind: z.string(),
  reason: z.string(),
  /** Hash of the cluster config the MN-VM was started with (status shows a restart pending when it differs). */
  configHash: z.string().optional(),
});
export type HistoryRecord = z.infer<typeof HistorySchema>;

/**
 * The MN-VM image's documented default root password, which `zsha reset-MNVM-password` restores (SPEC §3).
 * Not a secret: it is the value operators are told to change after the reset.
 */
export const DEFAULT_MNVM_ROOT_PASSWORD = "password";

/** `zsha reset-MNVM-password`: requested by the API, carried out by the owner through the guest agent. */
export const PasswordResetSchema = z.object({
  id: z.string(),
  state: z.enum(["requested", "done", "failed"]),
  /** The node that ran it (the owner at the time). */
  node: z.string().optional(),
  error: z.string().optional(),
  atMs: z.number(),
});
export type PasswordReset = z.infer<typeof PasswordResetSchema>;

export const GlobalMaintenanceSchema = z.object({ enabled: z.boolean(), atMs: z.number(), by: z.string() });
export type GlobalMaintenance = z.infer<typeof GlobalMaintenanceSchema>;

export const NodeMaintenanceSchema = z.object({
  /** entering: the MN-VM is being moved away; in: the node holds nothing and receives nothing. */
  state: z.enum(["entering", "in"]),
  atMs: z.number(),
  by: z.string(),
});
export type NodeMaintenance = z.infer<typeof NodeMaintenanceSchema>;

/** FNV-1a (64-bit) of the config bytes: cheap, deterministic, no crypto needed to tell configs apart. */
export function configHash(bytes: Uint8Array): string {
  let h = 0xcbf29ce484222325n;
  for (const b of bytes) {
    h ^= BigInt(b);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h.toString(16).padStart(16, "0");
}

export class RecordError extends Error {
  override readonly name = "RecordError";
}

const dec = new TextDecoder();
const enc = new TextEncoder();

export function decodeRecord<T>(schema: z.ZodType<T>, key: string, value: Uint8Array): T {
  let json: unknown;
  try {
    json = JSON.parse(dec.decode(value));
  } catch (e) {
    throw new RecordError(`${key}: not JSON (${(e as Error).message})`);
  }
  const r = schema.safeParse(json);
  if (!r.success) {
    throw new RecordError(
      `${key}: ${r.error.issues.map((i) => `${i.path.join(".") || "(value)"} ${i.message}`).join("; ")}`,
    );
  }
  return r.data;
}

export function encodeRecord<T>(v: T): Uint8Array {
  return enc.encode(JSON.stringify(v));
}
