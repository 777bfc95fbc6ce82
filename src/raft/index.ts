// zsha's Raft consensus core, in the style of etcd's raft library: a pure, deterministic value with no
// timers, clocks, randomness (injected), sockets or disks inside.
//
// THE READY CONTRACT — every caller follows it, in this order:
//   1. `rawNode.hasReady()` → `rd = rawNode.ready()`.
//   2. Persist `rd.snapshot` (if any), then `rd.entries` (appended, truncating any conflicting suffix), then
//      `rd.hardState` (if any) — with an fsync when `rd.mustSync`. Nothing below may happen before this.
//   3. Send `rd.messages`. (A vote or an append acknowledgement sent before step 2 can elect two leaders or
//      lose committed entries after a crash.)
//   4. Apply `rd.snapshot` (if any), then `rd.committedEntries` in order, to the state machine; serve
//      `rd.readStates` once the state machine has applied their index.
//   5. `rawNode.advance()`. Conf change entries among the committed entries take effect here.
// Between ready() and advance() the caller may keep stepping messages and ticking; the next Ready only
// carries what happened after this one.

export * from "./confchange.js";
export * from "./errors.js";
export { ProgressState } from "./progress.js";
export type { RaftConfig, RaftLogger } from "./raft.js";
export { CAMPAIGN_TRANSFER } from "./raft.js";
export { type PeerStatus, RawNode, type Status } from "./raw-node.js";
export { EMPTY_CONF_STATE, type InitialState, MemoryStorage, type Storage } from "./storage.js";
export * from "./types.js";
