import { JOB_TYPES, type JobType, nameOf } from "./constants.js";
import type { JobStats } from "./types.js";

type Raw = Readonly<Record<string, number | string | boolean>>;

function num(raw: Raw, key: string): number | undefined {
  const v = raw[key];
  return typeof v === "number" ? v : undefined;
}

/** Names the fields of virDomainGetJobStats / the job-completed event (VIR_DOMAIN_JOB_* params). */
export function parseJobStats(type: JobType | number, raw: Raw): JobStats {
  const success = raw.success;
  const fields: Record<string, unknown> = {
    type: typeof type === "number" ? nameOf(JOB_TYPES, type) : type,
    timeElapsedMs: num(raw, "time_elapsed"),
    timeRemainingMs: num(raw, "time_remaining"),
    dataTotal: num(raw, "data_total"),
    dataProcessed: num(raw, "data_processed"),
    dataRemaining: num(raw, "data_remaining"),
    memoryTotal: num(raw, "memory_total"),
    memoryProcessed: num(raw, "memory_processed"),
    memoryRemaining: num(raw, "memory_remaining"),
    memoryIteration: num(raw, "memory_iteration"),
    memoryDirtyRate: num(raw, "memory_dirty_rate"),
    memoryBps: num(raw, "memory_bps"),
    downtimeMs: num(raw, "downtime"),
    operation: num(raw, "operation"),
    success: typeof success === "boolean" ? success : undefined,
    raw,
  };
  for (const k of Object.keys(fields)) if (fields[k] === undefined) delete fields[k];
  return fields as unknown as JobStats;
}
