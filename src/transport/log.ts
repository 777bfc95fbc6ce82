// The transport logs through whatever the member uses: a pino-like logger or one plain function. Events are
// names with fields (pino style), never interpolated prose.

export type LogLevel = "debug" | "info" | "warn" | "error";

export type Logger =
  | { [L in LogLevel]: (fields: object, event: string) => void }
  | ((level: LogLevel, fields: object, event: string) => void);

export type Log = (level: LogLevel, fields: object, event: string) => void;

export function toLog(logger: Logger | undefined): Log {
  if (!logger) return () => {};
  if (typeof logger === "function") return logger;
  return (level, fields, event) => logger[level](fields, event);
}

/** An error as log fields: its message (and gRPC code when it has one), never a stack on the hot path. */
export function errorFields(err: unknown): { err: string; code?: number } {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === "number" ? { err: err.message, code } : { err: err.message };
  }
  return { err: String(err) };
}
