// The agent's logger: pino JSON lines into `<dir>/agent.log`, rotated by day and by size with
// rotating-file-stream, behind a SafeDestination so a full or read-only log disk never stops or slows HA.

import pino, { type Logger, type LoggerOptions } from "pino";
import { createStream } from "rotating-file-stream";
import { type LogSinkStats, SafeDestination } from "./safe-destination.js";

export const DEFAULT_LOG_DIR = "/var/log/z";

export interface AgentLogOptions {
  /** Folder for the log files (default /var/log/z); created if missing. */
  dir?: string;
  /** pino level (default info). */
  level?: string;
  /** Fields on every line (default { pid }). */
  base?: Record<string, unknown>;
  /** Rotate when the file reaches this size (rotating-file-stream syntax, default 50M). */
  size?: string;
  /** Rotate at this interval too (default 1d, at midnight UTC). */
  interval?: string;
  /** Rotated files kept (default 14). */
  maxFiles?: number;
  /** Bytes buffered in memory before lines are dropped (default 1 MiB). */
  maxQueuedBytes?: number;
  /** Pause before reopening a failed log file (default 5 s). */
  retryMs?: number;
  /** pino hooks, e.g. the metrics' HA event feed. */
  hooks?: LoggerOptions["hooks"];
}

export interface AgentLog {
  readonly logger: Logger;
  readonly dir: string;
  /** Lines written and dropped so far (the metrics endpoint exports them). */
  stats(): LogSinkStats;
  /** Resolves once queued lines are written or dropped. */
  idle(): Promise<void>;
  close(): Promise<void>;
}

const pad = (n: number) => String(n).padStart(2, "0");

/** `agent.log` is the live file; rotated ones are `agent-YYYYMMDD-N.log` (UTC date, N per day). */
export function rotatedName(time: number | Date | null, index?: number): string {
  if (!time) return "agent.log";
  const d = typeof time === "number" ? new Date(time) : time;
  return `agent-${d.getUTCFullYear()}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}-${index ?? 1}.log`;
}

export function createAgentLog(opts: AgentLogOptions = {}): AgentLog {
  const dir = opts.dir ?? DEFAULT_LOG_DIR;
  if (!dir.startsWith("/")) throw new Error(`log dir must be an absolute path, got '${dir}'`);
  const dest = new SafeDestination({
    open: () =>
      createStream(rotatedName as (time: number | Date, index?: number) => string, {
        path: dir,
        size: opts.size ?? "50M",
        interval: opts.interval ?? "1d",
        intervalUTC: true,
        maxFiles: opts.maxFiles ?? 14,
        mode: 0o640,
      }),
    ...(opts.maxQueuedBytes !== undefined ? { maxQueuedBytes: opts.maxQueuedBytes } : {}),
    ...(opts.retryMs !== undefined ? { retryMs: opts.retryMs } : {}),
  });
  const logger = pino(
    {
      level: opts.level ?? "info",
      base: opts.base ?? { pid: process.pid },
      ...(opts.hooks ? { hooks: opts.hooks } : {}),
    },
    dest,
  );
  return {
    logger,
    dir,
    stats: () => dest.stats(),
    idle: () => dest.idle(),
    close: () => dest.close(),
  };
}
