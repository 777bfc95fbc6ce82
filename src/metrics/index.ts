export { AgentMetrics, type MemberSource, RAFT_ROLES } from "./agent-metrics.js";
export { applyHaEvent, haEventHooks } from "./ha-events.js";
export { ownerLeaseRemaining } from "./owner-lease.js";
export { DEFAULT_METRICS_LISTEN, type MetricsServer, parseListen, startMetricsServer } from "./server.js";
