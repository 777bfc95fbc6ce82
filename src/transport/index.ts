// Raft messages between members: one long-lived gRPC stream per peer, snapshots in chunks, mutual TLS.
export { type BackoffOptions, DEFAULT_BACKOFF } from "./backoff.js";
export type { Logger, LogLevel } from "./log.js";
export { TransportConfigError, type TransportOptions } from "./options.js";
export type { PeerStats } from "./outbound.js";
export { clientChannelOptions, clientCredentials, serverCredentials, type TlsConfig } from "./tls.js";
export { Transport } from "./transport.js";
