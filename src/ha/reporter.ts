// Keeps /zsha/nodes/<this node> alive on the node's own lease with its health facts, each with the time it
// was observed; the record vanishes with the lease when the agent dies or is cut off.

import type { HaEnv } from "./env.js";
import type { LocalManager } from "./local.js";
import { encodeRecord, KEYS, type NodeReport } from "./records.js";

export class NodeReporter {
  private lease: bigint | undefined;
  private image: { value: boolean; atMs: number; error?: string } = { value: false, atMs: 0 };
  private lastImageCheck = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly env: HaEnv,
    private readonly local: LocalManager,
  ) {}

  async step(): Promise<void> {
    const env = this.env;
    if (this.local.hypervisorOk.atMs === 0) await this.local.observe();
    if (env.clock.now() - this.lastImageCheck >= 5000) {
      this.lastImageCheck = env.clock.now();
      try {
        await env.image.check();
        this.image = { value: true, atMs: env.clock.wallMs() };
      } catch (e) {
        this.image = { value: false, atMs: env.clock.wallMs(), error: (e as Error).message };
      }
    }
    if (this.lease !== undefined) {
      const ttl = await env.kv.leaseKeepAlive(this.lease).catch(() => -1);
      if (ttl === 0) this.lease = undefined; // expired: we were cut off long enough; start afresh
    }
    if (this.lease === undefined) this.lease = await env.kv.leaseGrant(env.timing.nodeLeaseSeconds);
    const now = env.clock.wallMs();
    const peers = Object.fromEntries(
      Object.entries(env.probes.peers()).map(([n, ok]) => [n, { value: ok, atMs: now }]),
    );
    const vm = this.local.vmState();
    const report: NodeReport = {
      node: env.node,
      agentVersion: env.agentVersion,
      reportedAtMs: now,
      hypervisor: this.local.hypervisorOk,
      ...(this.local.qemuRunning ? { qemuRunning: this.local.qemuRunning } : {}),
      image: this.image,
      peers,
      startFailures: this.local.recentFailures(),
      mnvm: { value: vm, atMs: now },
    };
    await env.kv.put(KEYS.node(env.node), encodeRecord(report), this.lease);
  }

  async stop(): Promise<void> {
    if (this.lease !== undefined) await this.env.kv.leaseRevoke(this.lease).catch(() => {});
    this.lease = undefined;
  }
}
