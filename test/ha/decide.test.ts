import { describe, expect, it } from "vitest";
import { decide, ineligible } from "../../src/ha/decide.js";
import { DEFAULT_TIMING } from "../../src/ha/env.js";
import type { NodeReport } from "../../src/ha/records.js";
import type { ClusterView } from "../../src/ha/view.js";

const NOW = 1_000_000;
const T = DEFAULT_TIMING;

function report(node: string, o: Partial<NodeReport> = {}): NodeReport {
  return {
    node,
    agentVersion: "t",
    reportedAtMs: NOW,
    hypervisor: { value: true, atMs: NOW },
    image: { value: true, atMs: NOW },
    peers: {},
    startFailures: [],
    ...o,
  };
}

function view(o: Partial<ClusterView> = {}): ClusterView {
  return {
    config: new Uint8Array([123, 125]),
    desired: undefined,
    epoch: 0,
    epochRevision: 0n,
    assignment: undefined,
    owner: undefined,
    migration: undefined,
    reports: new Map(["n1", "n2", "n3"].map((n) => [n, report(n)])),
    maintenance: new Map(),
    globalMaintenance: undefined,
    passwordReset: undefined,
    ...o,
  };
}

describe("controller policy (decide)", () => {
  it("does nothing in global maintenance, without a config, or when stopped by the operator", () => {
    expect(decide(view({ globalMaintenance: { enabled: true, atMs: 0, by: "op" } }), NOW, T)).toMatchObject({
      kind: "none",
    });
    expect(decide(view({ config: undefined }), NOW, T)).toMatchObject({
      kind: "none",
      why: "no cluster config stored yet",
    });
    expect(decide(view({ desired: { state: "stopped", by: "op", atMs: 0 } }), NOW, T)).toMatchObject({
      kind: "none",
    });
  });

  it("assigns the initial start to the best node: healthy, fewest recent failures, then by name", () => {
    expect(decide(view(), NOW, T)).toMatchObject({ kind: "assign", node: "n1", historyKind: "initial" });
    const reports = new Map([
      ["n1", report("n1", { startFailures: [{ atMs: NOW - 1000, reason: "x" }] })],
      ["n2", report("n2", { hypervisor: { value: false, atMs: NOW, error: "libvirtd down" } })],
      ["n3", report("n3")],
    ]);
    expect(decide(view({ reports }), NOW, T)).toMatchObject({ kind: "assign", node: "n3" });
    expect(ineligible(view({ reports }), "n2", NOW, T)).toMatch(
      /hypervisor does not answer \(libvirtd down\)/,
    );
  });

  it("keeps the MN-VM where it is while its owner holds the lease", () => {
    const v = view({ epoch: 3, owner: { node: "n2", epoch: 3, sinceMs: 0, lease: 7n } });
    expect(decide(v, NOW, T)).toMatchObject({ kind: "none", why: "the MN-VM is owned by n2" });
  });

  it("waits for an assigned node to claim, then passes it over after the claim timeout", () => {
    const a = { node: "n1", epoch: 1, kind: "start" as const, reason: "initial start", atMs: NOW - 1000 };
    expect(decide(view({ epoch: 1, assignment: a }), NOW, T)).toMatchObject({ kind: "none" });
    const late = { ...a, atMs: NOW - T.claimTimeoutMs - 1 };
    expect(decide(view({ epoch: 1, assignment: late }), NOW, T)).toMatchObject({
      kind: "assign",
      node: "n2",
    });
  });

  it("fails over from a lost owner to another node, and names it", () => {
    const a = {
      node: "n1",
      epoch: 1,
      kind: "start" as const,
      reason: "initial start",
      atMs: NOW - 60_000,
      claimedAtMs: NOW - 59_000,
    };
    const reports = new Map([
      ["n2", report("n2")],
      ["n3", report("n3")],
    ]);
    expect(decide(view({ epoch: 1, assignment: a, reports }), NOW, T)).toMatchObject({
      kind: "assign",
      node: "n2",
      reason: "failover from n1",
      previous: "n1",
    });
  });

  it("drains an owner entering maintenance by migration, or waits when no node can take it", () => {
    const owner = { node: "n1", epoch: 2, sinceMs: 0, lease: 1n };
    const maintenance = new Map([["n1", { state: "entering" as const, atMs: 0, by: "op" }]]);
    expect(decide(view({ epoch: 2, owner, maintenance }), NOW, T)).toMatchObject({
      kind: "migrate",
      to: "n2",
    });
    const alone = new Map([["n1", report("n1")]]);
    expect(decide(view({ epoch: 2, owner, maintenance, reports: alone }), NOW, T)).toMatchObject({
      kind: "none",
    });
  });

  it("does nothing when no node is eligible (all in maintenance or unhealthy)", () => {
    const maintenance = new Map(
      ["n1", "n2", "n3"].map((n) => [n, { state: "in" as const, atMs: 0, by: "op" }]),
    );
    expect(decide(view({ maintenance }), NOW, T)).toMatchObject({
      kind: "none",
      why: "no node is eligible to run the MN-VM",
    });
  });
});
