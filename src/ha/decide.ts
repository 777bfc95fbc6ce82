// The controller's policy as a pure function of one view of the cluster: what to do next, if anything.
// Every action it returns is carried out as a Txn on the owner epoch, so a controller acting on a stale
// view (or a stale controller on a deposed leader) changes nothing.

import type { HaTiming } from "./env.js";
import type { NodeReport } from "./records.js";
import type { ClusterView } from "./view.js";

export type Decision =
  | { readonly kind: "none"; readonly why: string }
  /** Hand the MN-VM to `node` (epoch + 1). */
  | {
      readonly kind: "assign";
      readonly node: string;
      readonly reason: string;
      readonly previous?: string;
      readonly historyKind: "initial" | "failover" | "operator";
    }
  /** Live-migrate the running MN-VM away from its owner (a node entering maintenance). */
  | { readonly kind: "migrate"; readonly to: string; readonly reason: string }
  /** The node entering maintenance no longer holds the MN-VM. */
  | { readonly kind: "maintenance-reached"; readonly node: string };

/** Why `node` may not receive the MN-VM now, or undefined when it may. */
export function ineligible(view: ClusterView, node: string, nowMs: number, t: HaTiming): string | undefined {
  const r = view.reports.get(node);
  if (!r) return "its agent is not reporting (node down or cut off)";
  if (view.maintenance.has(node)) return "it is in maintenance";
  if (!r.hypervisor.value)
    return `its hypervisor does not answer${r.hypervisor.error ? ` (${r.hypervisor.error})` : ""}`;
  if (!r.image.value) return `it cannot reach the MN-VM image${r.image.error ? ` (${r.image.error})` : ""}`;
  if (recentFailures(r, nowMs, t) >= t.startAttempts * 2) return "too many recent start failures";
  return undefined;
}

function recentFailures(r: NodeReport, nowMs: number, t: HaTiming): number {
  return r.startFailures.filter((f) => nowMs - f.atMs <= t.failureWindowMs).length;
}

/** Eligible nodes, best first: fewest recent start failures, then name (deterministic). */
export function rankNodes(
  view: ClusterView,
  nowMs: number,
  t: HaTiming,
  exclude: ReadonlySet<string> = new Set(),
): string[] {
  return [...view.reports.keys()]
    .filter((n) => !exclude.has(n) && ineligible(view, n, nowMs, t) === undefined)
    .sort((a, b) => {
      const fa = recentFailures(view.reports.get(a)!, nowMs, t);
      const fb = recentFailures(view.reports.get(b)!, nowMs, t);
      return fa - fb || (a < b ? -1 : a > b ? 1 : 0);
    });
}

export function decide(view: ClusterView, nowMs: number, t: HaTiming): Decision {
  if (view.globalMaintenance?.enabled) return { kind: "none", why: "global maintenance: HA is frozen" };
  if (!view.config) return { kind: "none", why: "no cluster config stored yet" };
  // A node entering maintenance has reached it once it neither owns the MN-VM nor is about to.
  const a0 = view.assignment;
  for (const [node, m] of view.maintenance) {
    if (m.state !== "entering" || view.owner?.node === node) continue;
    const pending = a0 && a0.node === node && a0.epoch === view.epoch && !a0.failed && !view.owner;
    if (!pending) return { kind: "maintenance-reached", node };
  }
  const desired = view.desired?.state ?? "running";
  if (desired === "stopped") return { kind: "none", why: "the MN-VM is stopped by the operator" };

  const owner = view.owner;
  const mig = view.migration;
  const migrating = mig && (mig.state === "requested" || mig.state === "running") && mig.epoch === view.epoch;

  if (owner) {
    if (migrating) return { kind: "none", why: `migration ${mig.from} -> ${mig.to} in progress` };
    const m = view.maintenance.get(owner.node);
    if (m) {
      const target = rankNodes(view, nowMs, t, new Set([owner.node]))[0];
      if (!target)
        return {
          kind: "none",
          why: `${owner.node} is entering maintenance but no other node can take the MN-VM`,
        };
      return { kind: "migrate", to: target, reason: `${owner.node} is entering maintenance` };
    }
    return { kind: "none", why: `the MN-VM is owned by ${owner.node}` };
  }

  const a = view.assignment;
  if (a && a.epoch === view.epoch && a.claimedAtMs === undefined && a.failed === undefined) {
    // Assigned but not (yet) claimed: wait for the claim while the node is alive and within its time.
    const age = nowMs - a.atMs;
    const why = ineligible(view, a.node, nowMs, t);
    if (!why && age < t.claimTimeoutMs)
      return { kind: "none", why: `waiting for ${a.node} to take the MN-VM` };
    const next = rankNodes(view, nowMs, t, new Set([a.node]))[0];
    if (!next) return { kind: "none", why: `${a.node} did not take the MN-VM and no other node is eligible` };
    return {
      kind: "assign",
      node: next,
      reason: why
        ? `${a.node} cannot take it: ${why}`
        : `${a.node} did not take it within ${t.claimTimeoutMs} ms`,
      ...(a.previous ? { previous: a.previous } : {}),
      historyKind: "failover",
    };
  }
  if (a?.failed !== undefined && a.epoch === view.epoch) {
    const next = rankNodes(view, nowMs, t, new Set([a.node]))[0];
    if (!next) return { kind: "none", why: `start failed on ${a.node} and no other node is eligible` };
    return {
      kind: "assign",
      node: next,
      reason: `start failed on ${a.node}: ${a.failed}`,
      ...(a.previous ? { previous: a.previous } : {}),
      historyKind: "failover",
    };
  }

  const best = rankNodes(view, nowMs, t)[0];
  if (!best) return { kind: "none", why: "no node is eligible to run the MN-VM" };
  if (!a) return { kind: "assign", node: best, reason: "initial start", historyKind: "initial" };
  // The previous owner's lease expired (node down, cut off, agent dead) or it released the MN-VM on stop.
  const prev = a.node;
  if (view.desired && view.desired.atMs > (a.claimedAtMs ?? a.atMs)) {
    return {
      kind: "assign",
      node: best,
      reason: `started by ${view.desired.by}`,
      previous: prev,
      historyKind: "operator",
    };
  }
  return {
    kind: "assign",
    node: best,
    reason: best === prev ? `${prev} lost its owner lease; starting it there again` : `failover from ${prev}`,
    previous: prev,
    historyKind: "failover",
  };
}
