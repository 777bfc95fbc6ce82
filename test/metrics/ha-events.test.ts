// The HA counters and MN-VM gauges follow the HA agent's log events through pino's hook, child loggers
// included, and the log lines themselves still come out unchanged.

import { Writable } from "node:stream";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { AgentMetrics, haEventHooks } from "../../src/metrics/index.js";

function values(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const sp = line.lastIndexOf(" ");
    out.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return out;
}

describe("HA metrics from HA log events", () => {
  it("counts failovers and migrations and tracks the MN-VM's state and node", async () => {
    const metrics = new AgentMetrics();
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    const log = pino({ hooks: haEventHooks(metrics, "n1") }, sink).child({ component: "ha" });

    log.info({ epoch: 1, kind: "initial", reason: "initial start", attempt: 1 }, "ha.started");
    let m = values(await metrics.scrape());
    expect(m.get('zsha_mnvm_state{state="running"}')).toBe(1);
    expect(m.get('zsha_mnvm_node{node="n1"}')).toBe(1);
    expect(m.get("zsha_ha_failovers_total")).toBe(0);

    log.info({ epoch: 2, kind: "failover", reason: "n2 failed", attempt: 1 }, "ha.started");
    log.warn({ to: "n3", err: "connection refused" }, "ha.migration-failed");
    log.info({ to: "n3", handedOver: true }, "ha.migrated");
    log.warn({ to: "n2", handedOver: false }, "ha.migrated");
    log.info({ unrelated: true }, "member.role");
    m = values(await metrics.scrape());
    expect(m.get("zsha_ha_failovers_total")).toBe(1);
    expect(m.get('zsha_ha_migrations_total{result="ok"}')).toBe(1);
    expect(m.get('zsha_ha_migrations_total{result="failed"}')).toBe(2);
    expect(m.get('zsha_mnvm_node{node="n3"}')).toBe(1);
    expect(m.has('zsha_mnvm_node{node="n1"}')).toBe(false);

    log.info({ epoch: 3 }, "ha.stopped");
    m = values(await metrics.scrape());
    expect(m.get('zsha_mnvm_state{state="stopped"}')).toBe(1);
    expect([...m.keys()].some((k) => k.startsWith("zsha_mnvm_node{"))).toBe(false);

    await new Promise((r) => setImmediate(r));
    expect(lines).toHaveLength(7);
    expect(JSON.parse(lines[1] as string)).toMatchObject({
      component: "ha",
      kind: "failover",
      msg: "ha.started",
    });
  });
});
