// The durable Raft store (issue 3): the Raft log, hard state and snapshots on LevelDB, written with
// `sync: true` in group-committed batches before anything is acknowledged, verified when opened.

export {
  InvalidWriteError,
  StorageCorruptError,
  StorageLockedError,
  StorageUnavailableError,
} from "./errors.js";
export {
  type BatchInfo,
  RaftStore,
  type RaftStoreOptions,
  type RaftStoreStats,
  type SaveRequest,
} from "./raft-store.js";
