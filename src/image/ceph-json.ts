/**
 * Validators for the JSON the Ceph tools print (shapes seen with Ceph 16.2). Each takes the parsed value
 * and the command (for the error) and returns only the fields zsha uses, or throws `bad-output` naming
 * the field. Hand-written rather than a schema library: five small shapes, no other user.
 */
import { ImageError } from "./image-store.js";

type Obj = Record<string, unknown>;

function bad(cmd: string, field: string, want: string): never {
  throw new ImageError("bad-output", `${cmd} printed JSON whose field "${field}" is not ${want}`, {
    command: cmd,
  });
}

function obj(v: unknown, cmd: string, field: string): Obj {
  if (typeof v !== "object" || v === null || Array.isArray(v)) bad(cmd, field, "an object");
  return v as Obj;
}

function arr(v: unknown, cmd: string, field: string): unknown[] {
  if (!Array.isArray(v)) bad(cmd, field, "a list");
  return v;
}

function str(o: Obj, k: string, cmd: string, prefix = ""): string {
  const v = o[k];
  if (typeof v !== "string") bad(cmd, prefix + k, "a string");
  return v;
}

function num(o: Obj, k: string, cmd: string, prefix = ""): number {
  const v = o[k];
  if (typeof v !== "number" || !Number.isFinite(v)) bad(cmd, prefix + k, "a number");
  return v;
}

export interface RbdInfo {
  readonly name: string;
  readonly sizeBytes: number;
  readonly objectSize: number;
  /** Prefix of the image's data objects, e.g. `rbd_data.1023e8ea84f8`. */
  readonly blockNamePrefix: string;
  readonly features: readonly string[];
}

export function parseRbdInfo(v: unknown, cmd: string): RbdInfo {
  const o = obj(v, cmd, "(top)");
  return {
    name: str(o, "name", cmd),
    sizeBytes: num(o, "size", cmd),
    objectSize: num(o, "object_size", cmd),
    blockNamePrefix: str(o, "block_name_prefix", cmd),
    features: arr(o.features, cmd, "features").map((f, i) => {
      if (typeof f !== "string") bad(cmd, `features[${i}]`, "a string");
      return f;
    }),
  };
}

export interface RbdWatcher {
  readonly address: string;
  /** `client.4174` (Ceph 16 prints the bare number; older releases the full name). */
  readonly client: string;
}

export function parseRbdStatus(v: unknown, cmd: string): RbdWatcher[] {
  const o = obj(v, cmd, "(top)");
  return arr(o.watchers, cmd, "watchers").map((w, i) => {
    const p = `watchers[${i}].`;
    const wo = obj(w, cmd, p.slice(0, -1));
    const c = wo.client;
    if (typeof c !== "number" && typeof c !== "string") bad(cmd, `${p}client`, "a number or string");
    const client = typeof c === "number" ? `client.${c}` : c.startsWith("client.") ? c : `client.${c}`;
    return { address: str(wo, "address", cmd, p), client };
  });
}

export interface RbdLock {
  readonly id: string;
  readonly locker: string;
  readonly address: string;
}

/** Ceph 16 prints a list; older releases an object keyed by lock id. Both are accepted. */
export function parseRbdLocks(v: unknown, cmd: string): RbdLock[] {
  if (Array.isArray(v)) {
    return v.map((l, i) => {
      const p = `[${i}].`;
      const lo = obj(l, cmd, `[${i}]`);
      return {
        id: str(lo, "id", cmd, p),
        locker: str(lo, "locker", cmd, p),
        address: str(lo, "address", cmd, p),
      };
    });
  }
  const o = obj(v, cmd, "(top)");
  return Object.entries(o).map(([id, l]) => {
    const lo = obj(l, cmd, id);
    return { id, locker: str(lo, "locker", cmd, `${id}.`), address: str(lo, "address", cmd, `${id}.`) };
  });
}

export function parseBlocklist(v: unknown, cmd: string): string[] {
  return arr(v, cmd, "(top)").map((e, i) => str(obj(e, cmd, `[${i}]`), "addr", cmd, `[${i}].`));
}

export interface CephStatus {
  readonly status: string;
  readonly checks: readonly string[];
  readonly monsInQuorum: number;
  readonly mons: number;
  readonly osds: number;
  readonly osdsUp: number;
  readonly osdsIn: number;
  readonly pgs: number;
  readonly bytesUsed: number;
  readonly bytesTotal: number;
}

/** `ceph -s -f json`: health, quorum, OSD counts and usage (usage is zero without a manager). */
export function parseCephStatus(v: unknown, cmd: string): CephStatus {
  const o = obj(v, cmd, "(top)");
  const health = obj(o.health, cmd, "health");
  const checks = Object.entries(obj(health.checks ?? {}, cmd, "health.checks")).map(([name, c]) => {
    const summary = obj(obj(c, cmd, `health.checks.${name}`).summary, cmd, `health.checks.${name}.summary`);
    return `${name}: ${str(summary, "message", cmd, `health.checks.${name}.summary.`)}`;
  });
  const monmap = obj(o.monmap, cmd, "monmap");
  const osdmap = obj(o.osdmap, cmd, "osdmap");
  const pgmap = obj(o.pgmap ?? {}, cmd, "pgmap");
  return {
    status: str(health, "status", cmd, "health."),
    checks,
    monsInQuorum: arr(o.quorum_names, cmd, "quorum_names").length,
    mons: num(monmap, "num_mons", cmd, "monmap."),
    osds: num(osdmap, "num_osds", cmd, "osdmap."),
    osdsUp: num(osdmap, "num_up_osds", cmd, "osdmap."),
    osdsIn: num(osdmap, "num_in_osds", cmd, "osdmap."),
    pgs: typeof pgmap.num_pgs === "number" ? pgmap.num_pgs : 0,
    bytesUsed: typeof pgmap.bytes_used === "number" ? pgmap.bytes_used : 0,
    bytesTotal: typeof pgmap.bytes_total === "number" ? pgmap.bytes_total : 0,
  };
}
