// `zsha status`: the headings of the earlier suite, in its order (runbooks keep working), one fact per line,
// every per-node fact with its age; and the same content as JSON with a stable shape.

import type { MemberListResponse } from "../gen/zsha/cluster/v1/cluster_pb.js";
import type { GetStatusResponse, NodeStatus } from "../gen/zsha/ha/v1/ha_pb.js";

/** A report older than this is stale: its facts are shown with their age and marked. */
const STALE_MS = 3000n;
/**
 * The answering node observes its storage every few seconds (src/api/storage-facts.ts), a slow probe up to
 * its tool's own timeout: an observation older than this means its probes are stuck.
 */
const STORAGE_STALE_MS = 30_000n;

function age(ms: bigint): string {
  if (ms < 0n) return "never";
  const s = Number(ms) / 1000;
  return s < 60 ? `${s.toFixed(1)}s ago` : `${Math.round(s / 60)}m ago`;
}

function when(atMs: bigint): string {
  return new Date(Number(atMs))
    .toISOString()
    .replace("T", " ")
    .replace(/\.\d+Z$/, " UTC");
}

/** " (2.1s ago)" after a storage fact; nothing when there is no observation to date. */
function observed(ageMs: bigint): string {
  if (ageMs < 0n) return "";
  return ageMs > STORAGE_STALE_MS ? ` STALE (${age(ageMs)})` : ` (${age(ageMs)})`;
}

function nodeLine(n: NodeStatus): string {
  if (!n.reporting) return `${n.ip || "-"} : ${n.name} (not reporting: agent down or cut off)`;
  const parts = [
    `hypervisor ${n.hypervisor?.ok ? "ok" : `FAILED${n.hypervisor?.error ? ` (${n.hypervisor.error})` : ""}`}`,
    `image ${n.image?.ok ? "ok" : `FAILED${n.image?.error ? ` (${n.image.error})` : ""}`}`,
  ];
  if (n.maintenance) parts.push(`maintenance ${n.maintenance}`);
  if (n.recentStartFailures > 0) parts.push(`${n.recentStartFailures} recent start failure(s)`);
  const stale = n.reportAgeMs > STALE_MS ? ` STALE (${age(n.reportAgeMs)})` : ` (${age(n.reportAgeMs)})`;
  return `${n.ip || "-"} : ${n.name}  ${parts.join(", ")}${stale}`;
}

export function renderStatus(st: GetStatusResponse, members: MemberListResponse): string[] {
  const out: string[] = [];
  const byName = new Map(st.nodes.map((n) => [n.name, n]));
  out.push(">>>MN-VM Running On");
  if (st.owner) {
    const n = byName.get(st.owner);
    out.push(`${n?.ip || st.owner} : ${st.mnvmState} (${st.owner}, epoch ${st.epoch})`);
  } else {
    out.push(`(none) : ${st.mnvmState}${st.desired === "stopped" ? " (stopped by the operator)" : ""}`);
  }
  if (st.restartPending)
    out.push("restart pending: the config changed since the MN-VM started; it applies at its next start");
  if (st.globalMaintenance) out.push("global maintenance: HA is frozen");
  if (st.migration && (st.migration.state === "requested" || st.migration.state === "running")) {
    out.push(
      `migration ${st.migration.from} -> ${st.migration.to}: ${st.migration.state} ${st.migration.percent} %`,
    );
  }
  out.push(">>>Last MN-VM Start Record");
  if (st.history.length === 0) out.push("(none)");
  for (const h of [...st.history].reverse()) out.push(`${when(h.atMs)}  ${h.node}  ${h.kind}: ${h.reason}`);
  out.push(">>>ZStack HA Services Running On");
  for (const n of st.nodes) out.push(nodeLine(n));
  out.push(">>>Members");
  const w = Math.max(4, ...members.members.map((m) => (m.member?.name ?? "").length));
  for (const m of members.members) {
    const name = m.member?.name ?? "";
    const contact = m.lastContactMs < 0n ? "never" : `${m.lastContactMs} ms`;
    out.push(
      `${name.padEnd(w)}  ${(m.member?.peerAddress ?? "").padEnd(21)}  ${m.alive ? "alive " : "FAILED"}  ${m.role.padEnd(9)}  term ${members.term}  last contact ${contact}`,
    );
  }
  out.push(">>>Management Node IP");
  out.push(st.managementIp || "(unknown: no config stored)");
  out.push(">>>Public Network IP");
  out.push(st.publicIp || st.managementIp || "(unknown)");
  out.push(">>>Ceph Status");
  out.push(st.storageHealth ? `${st.storageHealth}${observed(st.storageAgeMs)}` : "(not reported)");
  for (const l of st.storageDetails) out.push(`  ${l}`);
  out.push(">>>Checking Host I/O");
  out.push(st.hostIo ? `${st.hostIo}${observed(st.hostIoAgeMs)}` : "(not checked)");
  return out;
}

/** `zsha status --json`: a stable shape (documented in the README). */
export function statusJson(st: GetStatusResponse, members: MemberListResponse) {
  return {
    mnvm: {
      owner: st.owner || null,
      state: st.mnvmState,
      desired: st.desired,
      epoch: Number(st.epoch),
      globalMaintenance: st.globalMaintenance,
      restartPending: st.restartPending,
      migration: st.migration
        ? {
            from: st.migration.from,
            to: st.migration.to,
            state: st.migration.state,
            percent: st.migration.percent,
            error: st.migration.error || null,
          }
        : null,
    },
    history: st.history.map((h) => ({
      atMs: Number(h.atMs),
      node: h.node,
      epoch: Number(h.epoch),
      kind: h.kind,
      reason: h.reason,
    })),
    nodes: st.nodes.map((n) => ({
      name: n.name,
      ip: n.ip,
      reporting: n.reporting,
      reportAgeMs: Number(n.reportAgeMs),
      hypervisor: n.hypervisor
        ? { ok: n.hypervisor.ok, ageMs: Number(n.hypervisor.ageMs), error: n.hypervisor.error || null }
        : null,
      image: n.image ? { ok: n.image.ok, ageMs: Number(n.image.ageMs), error: n.image.error || null } : null,
      maintenance: n.maintenance || null,
      recentStartFailures: n.recentStartFailures,
      mnvm: n.mnvm || null,
    })),
    members: members.members.map((m) => ({
      name: m.member?.name ?? "",
      address: m.member?.peerAddress ?? "",
      alive: m.alive,
      role: m.role,
      lastContactMs: Number(m.lastContactMs),
    })),
    leader: members.leader,
    term: Number(members.term),
    managementIp: st.managementIp || null,
    publicIp: st.publicIp || null,
    storage: {
      health: st.storageHealth || null,
      details: st.storageDetails,
      ageMs: st.storageHealth && st.storageAgeMs >= 0n ? Number(st.storageAgeMs) : null,
    },
    hostIo: st.hostIo || null,
    hostIoAgeMs: st.hostIo && st.hostIoAgeMs >= 0n ? Number(st.hostIoAgeMs) : null,
    answeredBy: st.answeredBy,
  };
}
