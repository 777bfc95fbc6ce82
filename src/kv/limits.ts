// The limits requests are checked against. One place, shared by validation (before proposing) and the state
// machine (defence in depth at apply time), so both always agree.

export interface KvLimits {
  /** Longest key, in bytes. */
  readonly maxKeyBytes: number;
  /** Largest value, in bytes. */
  readonly maxValueBytes: number;
  /** Most compares, and most operations per branch, in one txn (etcd's --max-txn-ops default). */
  readonly maxTxnOps: number;
  /**
   * Shortest lease TTL, in seconds. It must exceed a leader election: a new leader restarts every lease's
   * TTL, so a lease shorter than an election could expire before its holder even reaches the new leader.
   */
  readonly minLeaseTtlSeconds: number;
  /** Longest lease TTL, in seconds (etcd's MaxLeaseTTL). */
  readonly maxLeaseTtlSeconds: number;
}

export const DEFAULT_LIMITS: KvLimits = Object.freeze({
  maxKeyBytes: 1024,
  maxValueBytes: 1024 * 1024,
  maxTxnOps: 128,
  minLeaseTtlSeconds: 5,
  maxLeaseTtlSeconds: 9_000_000_000,
});

export function kvLimits(overrides: Partial<KvLimits> = {}): KvLimits {
  const l = { ...DEFAULT_LIMITS, ...overrides };
  for (const [name, v] of Object.entries(l)) {
    if (!Number.isSafeInteger(v) || v <= 0)
      throw new RangeError(`kv limits: ${name} must be a positive integer, got ${v}`);
  }
  if (l.minLeaseTtlSeconds > l.maxLeaseTtlSeconds) {
    throw new RangeError(
      `kv limits: minLeaseTtlSeconds ${l.minLeaseTtlSeconds} is above maxLeaseTtlSeconds ${l.maxLeaseTtlSeconds}`,
    );
  }
  return Object.freeze(l);
}
