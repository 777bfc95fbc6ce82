// The Prometheus endpoint scraped over HTTP while a real single-member cluster runs in-process: Raft figures
// come from the member itself, HA figures from the setters, and the text parses as Prometheus exposition.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningMember, runMember } from "../../src/api/serve.js";
import { KvClient } from "../../src/client/kv-client.js";
import { KEYS } from "../../src/ha/records.js";
import {
  AgentMetrics,
  type MetricsServer,
  ownerLeaseRemaining,
  parseListen,
  startMetricsServer,
} from "../../src/metrics/index.js";
import { freePort, until } from "../support/cluster.js";

const dir = mkdtempSync(join(tmpdir(), "zsha-metrics-"));
let running: RunningMember;
let server: MetricsServer;
const metrics = new AgentMetrics();

beforeAll(async () => {
  const peer = `127.0.0.1:${await freePort()}`;
  running = await runMember({
    name: "n1",
    clusterId: "metrics",
    peerListen: peer,
    dataDir: join(dir, "n1"),
    initialCluster: { n1: peer },
    tickMs: 20,
    logger: pino({ level: "silent" }),
  });
  metrics.attachMember(running.member);
  metrics.attachLog(() => ({ written: 7, dropped: 3, failures: 1 }));
  server = await startMetricsServer(metrics, "127.0.0.1:0");
});

afterAll(async () => {
  await server?.close();
  await running?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Scrapes and parses the exposition into `name{labels}` -> value. */
async function scrape(): Promise<Map<string, number>> {
  const res = await fetch(`http://${server.address}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
  const out = new Map<string, number>();
  for (const line of (await res.text()).split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const sp = line.lastIndexOf(" ");
    out.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return out;
}

describe("metrics endpoint", () => {
  it("exports the member's Raft role, term, commit and applied index", async () => {
    await until("n1 leads", () => running.member.status().state === "leader", 5000);
    await until(
      "n1 applied its commits",
      () => {
        const s = running.member.status();
        return s.commit >= 1 && s.applied >= s.commit;
      },
      5000,
    );
    const m = await scrape();
    const s = running.member.status();
    expect(m.get('zsha_raft_role{role="leader"}')).toBe(1);
    expect(m.get('zsha_raft_role{role="follower"}')).toBe(0);
    expect(m.get("zsha_raft_term")).toBe(Number(s.term));
    expect(m.get("zsha_raft_term")).toBeGreaterThanOrEqual(1);
    expect(m.get("zsha_raft_commit_index")).toBeGreaterThanOrEqual(1);
    expect(m.get("zsha_raft_applied_index")).toBe(m.get("zsha_raft_commit_index"));
    expect(m.get("zsha_log_lines_dropped")).toBe(3);
    expect(m.get("zsha_log_lines_written")).toBe(7);
  });

  it("exports peers' last contact, lease, MN-VM state and node, failovers and migrations", async () => {
    // A single member hears no peer; the map is what Member keeps, so a peer entry shows up as its age.
    (running.member.lastHeard as Map<string, number>).set("n2", performance.now() - 1500);
    metrics.setOwnerLeaseRemaining(4.5);
    metrics.setMnvm("running", "n1");
    metrics.countFailover();
    metrics.countMigration("ok");
    metrics.countMigration("ok");
    metrics.countMigration("failed");
    let m = await scrape();
    const age = m.get('zsha_raft_peer_last_contact_seconds{peer="n2"}') ?? -1;
    expect(age).toBeGreaterThanOrEqual(1.5);
    expect(age).toBeLessThan(10);
    expect(m.get("zsha_ha_owner_lease_remaining_seconds")).toBe(4.5);
    expect(m.get('zsha_mnvm_state{state="running"}')).toBe(1);
    expect(m.get('zsha_mnvm_node{node="n1"}')).toBe(1);
    expect(m.get("zsha_ha_failovers_total")).toBe(1);
    expect(m.get('zsha_ha_migrations_total{result="ok"}')).toBe(2);
    expect(m.get('zsha_ha_migrations_total{result="failed"}')).toBe(1);

    // The MN-VM moves: the old state and node disappear instead of lingering at 1.
    metrics.setMnvm("migrating", "n2");
    (running.member.lastHeard as Map<string, number>).delete("n2");
    m = await scrape();
    expect(m.get('zsha_mnvm_state{state="migrating"}')).toBe(1);
    expect(m.has('zsha_mnvm_state{state="running"}')).toBe(false);
    expect(m.get('zsha_mnvm_node{node="n2"}')).toBe(1);
    expect(m.has('zsha_mnvm_node{node="n1"}')).toBe(false);
    expect(m.has('zsha_raft_peer_last_contact_seconds{peer="n2"}')).toBe(false);
  });

  it("reads the owner lease's remaining seconds from the member's KV and lessor", async () => {
    const fed = new AgentMetrics();
    fed.attachOwnerLease(() => ownerLeaseRemaining(running.member));
    const text = async () => fed.scrape();
    expect(await text()).toMatch(/^zsha_ha_owner_lease_remaining_seconds 0$/m);
    const client = new KvClient({ endpoints: [running.peerAddress], deadlineMs: 5000 });
    try {
      const lease = await client.leaseGrant(30);
      await client.put(KEYS.owner, '{"node":"n1","epoch":1}', { lease: lease.id });
      const left = Number(/^zsha_ha_owner_lease_remaining_seconds (\S+)$/m.exec(await text())?.[1]);
      expect(left).toBeGreaterThan(25);
      expect(left).toBeLessThanOrEqual(30);
    } finally {
      client.close();
    }
  });

  it("serves only GET /metrics, and refuses a bad listen address in one sentence", async () => {
    expect((await fetch(`http://${server.address}/`)).status).toBe(404);
    expect(() => parseListen("localhost")).toThrow(/--metrics-listen must be host:port .*got 'localhost'/);
    expect(() => parseListen("127.0.0.1:99999")).toThrow(/must be host:port/);
    expect(parseListen("[::1]:9780")).toEqual({ host: "::1", port: 9780 });
    await expect(startMetricsServer(metrics, server.address)).rejects.toThrow(/cannot serve metrics on/);
  });
});
