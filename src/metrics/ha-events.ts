// Feeds the HA metrics from the HA agent's own log events, so the counters need no hook inside src/ha:
// every event the agent logs passes through pino's logMethod hook, and the few that mean "the MN-VM started
// here", "a migration ended" or "it stopped" update the gauges and counters. These are this node's view;
// an agent on each node exports its own, and Prometheus sums the counters across nodes.

import type { LoggerOptions } from "pino";
import type { AgentMetrics } from "./agent-metrics.js";

type Fields = Record<string, unknown>;

/** Applies one HA log event to the metrics; unknown events are ignored. */
export function applyHaEvent(metrics: AgentMetrics, node: string, event: string, f: Fields): void {
  switch (event) {
    case "ha.started":
      metrics.setMnvm("running", node);
      if (f.kind === "failover") metrics.countFailover();
      return;
    case "ha.migrated":
      metrics.countMigration(f.handedOver === false ? "failed" : "ok");
      if (f.handedOver !== false && typeof f.to === "string") metrics.setMnvm("running", f.to);
      return;
    case "ha.migration-failed":
      metrics.countMigration("failed");
      return;
    case "ha.stopped":
      metrics.setMnvm("stopped", "");
      return;
  }
}

/** pino `hooks` that pass each `logger.x(fields, event)` call to applyHaEvent; child loggers inherit them. */
export function haEventHooks(metrics: AgentMetrics, node: string): NonNullable<LoggerOptions["hooks"]> {
  return {
    logMethod(args, method) {
      try {
        const [fields, event] = args as unknown[];
        if (typeof event === "string" && event.startsWith("ha.") && fields && typeof fields === "object") {
          applyHaEvent(metrics, node, event, fields as Fields);
        }
      } catch {
        // Metrics must never break logging, and logging must never break HA.
      }
      method.apply(this, args as Parameters<typeof method>);
    },
  };
}
