// Starts this node's HA agent next to its consensus member: picks the hypervisor driver (libvirt through our
// binding, or the simulated one — said plainly at start), connects the KV client to the local member, and
// keeps the cluster config fresh.

import { randomBytes } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import type { Logger } from "pino";
import type { RunningMember } from "../api/serve.js";
import { KvClient } from "../client/kv-client.js";
import { LeaseDatagramClient } from "../client/lease-datagrams.js";
import type { HaLogger } from "../ha/env.js";
import { KEYS } from "../ha/records.js";
import type { Hypervisor } from "../hypervisor/hypervisor.js";
import { hypervisorDriverLine, LibvirtHypervisor, loadLibvirt } from "../hypervisor/libvirt.js";
import { SimWorld } from "../hypervisor/sim.js";
import { realTimeScheduler } from "../hypervisor/sim-scheduler.js";
import { nodeId } from "../raft/index.js";
import { clientChannelOptions, clientCredentials } from "../transport/tls.js";
import { haAgent } from "./ha-env.js";
import { clientHaKv, compareToProto, opToProto } from "./ha-kv.js";
import type { NodeFile } from "./node-file.js";

export interface RunningHa {
  readonly driver: string;
  stop(): Promise<void>;
}

async function hypervisorFor(
  uri: string,
  log: Logger,
): Promise<{ hv: Hypervisor; line: string; simulated: boolean }> {
  if (uri === "sim") {
    const world = new SimWorld(realTimeScheduler());
    return {
      hv: world.host("local"),
      line: "hypervisor driver: simulated (requested with hypervisorUri 'sim')",
      simulated: true,
    };
  }
  const load = await loadLibvirt();
  const line = hypervisorDriverLine(load, uri);
  if (!load.ok) {
    log.warn({ reason: load.reason }, "ha.libvirt-unavailable");
    return { hv: new SimWorld(realTimeScheduler()).host("local"), line, simulated: true };
  }
  const hv = await LibvirtHypervisor.connect(load.lib, {
    uri,
    ...(uri.startsWith("test:") ? { shutdownMode: "default" as const } : {}),
  });
  return { hv, line, simulated: false };
}

export async function runHa(
  node: NodeFile,
  running: RunningMember,
  logger: Logger,
  version: string,
): Promise<RunningHa> {
  const ha = node.ha!;
  const log = logger.child({ component: "ha" });
  const haLog: HaLogger = (level, fields, event) => log[level](fields, event);
  const { hv, line, simulated } = await hypervisorFor(ha.hypervisorUri, log);
  log.info({ driver: line }, "ha.driver");
  const member = running.member;
  const tls = member.opts.tls;
  const endpoint =
    running.clientAddress ??
    (member.opts.clientSocket ? `unix:${member.opts.clientSocket}` : running.peerAddress);
  const overPeer = endpoint === running.peerAddress;
  const client = new KvClient({
    endpoints: [endpoint],
    credentials: overPeer ? clientCredentials(tls, member.opts.name) : grpc.credentials.createInsecure(),
    ...(overPeer && tls ? { channelOptions: clientChannelOptions(tls, member.opts.name) } : {}),
    deadlineMs: 3000,
  });
  // Lease keep-alives also go straight to every other member over its own TLS connection (each forwards
  // to the leader): a degraded link to one path must not cost the owner its lease (SPEC §3a).
  const peerClients = Object.entries(node.initialCluster ?? {})
    .filter(([name]) => name !== member.opts.name)
    .map(
      ([name, address]) =>
        new KvClient({
          endpoints: [address],
          credentials: clientCredentials(tls, name),
          channelOptions: {
            ...clientChannelOptions(tls, name),
            "grpc.initial_reconnect_backoff_ms": 100,
            "grpc.max_reconnect_backoff_ms": 1000,
          },
          deadlineMs: 2000,
        }),
    );
  let renewalKey: Uint8Array | undefined;
  const datagrams = new LeaseDatagramClient({
    targets: () =>
      Object.entries(member.kv.memberAddresses)
        .filter(([name]) => name !== member.opts.name)
        .map(([, address]) => address),
    key: () => renewalKey,
  });
  const kv = clientHaKv(client, () => member.isLeader(), peerClients, datagrams);
  const electionMs = member.opts.electionTicks * member.opts.tickMs;
  const { agent, config } = haAgent({
    node: member.opts.name,
    clusterId: member.opts.clusterId,
    agentVersion: version,
    kv,
    hypervisor: hv,
    log: haLog,
    seedDir: ha.seedDir ?? `${member.opts.dataDir}/seed`,
    simulated,
    migrationUri: ha.migrationUri ?? "qemu+tcp://{ip}/system",
    peers: () => {
      const now = performance.now();
      return Object.fromEntries([...member.lastHeard].map(([n, t]) => [n, now - t < electionMs]));
    },
  });
  let stopped = false;
  const refresh = (async () => {
    while (!stopped) {
      await config
        .refresh()
        .catch((e) => log.debug({ err: (e as Error).message }, "ha.config-refresh-failed"));
      if (!renewalKey) {
        renewalKey = await leaseRenewalKey(client).catch((e) => {
          log.debug({ err: (e as Error).message }, "ha.renewal-key-unavailable");
          return undefined;
        });
        if (renewalKey) running.setLeaseRenewalKey(renewalKey);
      }
      await new Promise((r) => setTimeout(r, 2000));
    }
  })();
  running.setStorage(agent.image);
  agent.start();
  // The MN-VM's owner does not lead Raft while another voter can. Under a degraded storage link on the
  // owner (SPEC §3a) a leader there loses its quorum contact, steps down, and nobody renews anything until
  // the others elect a new one (1-2 s more): seen costing the owner its lease in CI. And when the owner
  // loses power, no election has to come before its lease can run out.
  let handingOff = false;
  const handOff = setInterval(() => {
    if (handingOff || stopped || !member.isLeader() || agent.local.ownedEpoch === undefined) return;
    const to = leadershipHeir(member, electionMs);
    if (!to) return;
    handingOff = true;
    log.info({ to }, "ha.leadership-handed-off");
    member
      .transferLeadership(nodeId(to))
      .catch((e) => log.debug({ to, err: (e as Error).message }, "ha.leadership-hand-off-failed"))
      .finally(() => {
        handingOff = false;
      });
  }, 1000);
  return {
    driver: line,
    async stop() {
      stopped = true;
      clearInterval(handOff);
      await agent.stop();
      await refresh;
      client.close();
      datagrams.close();
      for (const c of peerClients) c.close();
      await hv.close();
    },
  };
}

/** The cluster's lease-renewal MAC key: the first agent to look creates it (once, by a create-only Txn). */
async function leaseRenewalKey(client: KvClient): Promise<Uint8Array | undefined> {
  const key = KEYS.leaseRenewalKey;
  await client.txn({
    compare: [compareToProto({ key, op: "==", target: "createRevision", value: 0n })],
    success: [opToProto({ put: { key, value: randomBytes(32) } })],
  });
  const kv = await client.getValue(key);
  return kv && kv.value.length === 32 ? kv.value : undefined;
}

/** The voter that should lead instead of this one: heard within an election timeout, the most caught up. */
function leadershipHeir(member: RunningMember["member"], electionMs: number): string | undefined {
  const st = member.status();
  const now = performance.now();
  let best: string | undefined;
  let bestMatch = -1n;
  for (const v of st.config.voters) {
    if (v === member.opts.name) continue;
    const heard = member.lastHeard.get(v);
    if (heard === undefined || now - heard >= electionMs) continue;
    const match = BigInt(st.progress?.get(v)?.match ?? 0);
    if (match > bestMatch) {
      best = v;
      bestMatch = match;
    }
  }
  return best;
}
