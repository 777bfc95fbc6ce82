// Raft messages between members: one long-lived gRPC stream per ordered pair of peers (RaftService.Stream).
//
// Wire protocol: the caller's first frame is a StreamHello (from, to, cluster id); then Message frames in
// the order Raft produced them; a Snap message travels as SnapshotChunk frames, the first carrying the
// message, and the callee answers each whole snapshot with a SnapshotAck on the response stream.
// The callee refuses a stream with FAILED_PRECONDITION (other cluster, other addressee), NOT_FOUND (not a
// known peer), PERMISSION_DENIED (TLS certificate does not name the hello's sender) or INVALID_ARGUMENT
// (undecodable or misplaced frames). Loss is tolerated, as Raft does: a full queue drops new messages, a
// broken stream loses what was in flight, and Raft is told through onUnreachable / onSnapshotStatus.
export { type BackoffOptions, DEFAULT_BACKOFF } from "./backoff.js";
export type { Logger, LogLevel } from "./log.js";
export { TransportConfigError, type TransportOptions } from "./options.js";
export type { PeerStats } from "./outbound.js";
export {
  clientChannelOptions,
  clientCredentials,
  serverCredentials,
  type TlsConfig,
} from "./tls.js";
export { Transport } from "./transport.js";
