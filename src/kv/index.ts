// zsha's replicated key-value state machine with etcd v3 semantics. The store is pure and deterministic
// (no I/O, no clocks); the Lessor is the leader's expiry clock, injected with monotonic time.
//
// How a member uses it:
//   - Before proposing a client request: validate*(req, store.limits) — a KvError means answer it
//     (err.toRpcError()) and propose nothing.
//   - For each committed command entry, in order: store.apply(entry.index, command). The result (a typed
//     response or an apply-time KvError; on error nothing changed) goes back to the waiting client on the
//     member named by command.origin. After a grant or revoke/expire applies: lessor.onGrant / onRevoke.
//   - Reads after ReadIndex (or serializable): store.range(req), store.lease(id), store.leaseIds().
//   - Watches: store.watch(opts, sink) replays history synchronously, then feeds sink as commands apply;
//     a CompactedError carries `oldest` for WatchResponse.compact_revision.
//   - On becoming leader: lessor.promote(now); on losing it: lessor.demote(). Every tick on the leader:
//     propose a LeaseExpire for each id of lessor.expired(now). Keep-alives: lessor.keepAlive(id, now) on
//     the leader; TimeToLive there: lessor.remainingMs(id, now) with store.lease(id).
//   - Raft snapshots: store.snapshot() (set store.memberAddresses first) and store.install(bytes, index)
//     (watches survive) or KvStore.restore(bytes, { appliedIndex }) at start-up.
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
