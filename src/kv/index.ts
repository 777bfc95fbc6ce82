// zsha's replicated key-value state machine with etcd v3 semantics. The store is pure and deterministic
// (no I/O, no clocks); the Lessor is the leader's expiry clock, injected with monotonic time.
export { Code, CompactedError, KvError } from "./errors.js";
export type { RevisionEvents, Watcher, WatchOptions, WatchSink } from "./history.js";
export { Lessor, type LessorOptions } from "./lessor.js";
export { DEFAULT_LIMITS, type KvLimits, kvLimits } from "./limits.js";
export {
  type ApplyResult,
  type CommandResponse,
  KvStore,
  type KvStoreOptions,
  type LeaseInfo,
  type LeaseSource,
} from "./store.js";
export { formatLeaseId, type LeaseId, leaseId, NO_LEASE, type Revision, revision } from "./types.js";
export * from "./validate.js";
