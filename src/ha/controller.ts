// The controller: runs on the Raft leader's agent only, decides (decide.ts) and carries the decision out as
// one Txn that compares the owner epoch it decided on — so a stale view, or a stale controller on a
// deposed leader, changes nothing (DESIGN.md "The MN-VM lease").

import { type Decision, decide } from "./decide.js";
import type { HaEnv, TxnCompare } from "./env.js";
import { type Assignment, encodeRecord, KEYS, type Migration, type NodeMaintenance } from "./records.js";
import { type ClusterView, loadView } from "./view.js";

const OWNER_ABSENT: TxnCompare = { key: KEYS.owner, target: "createRevision", op: "==", value: 0n };

function epochUnchanged(view: ClusterView): TxnCompare {
  return { key: KEYS.epoch, target: "modRevision", op: "==", value: view.epochRevision };
}

export class Controller {
  private lastWhy = "";

  constructor(private readonly env: HaEnv) {}

  /** One round: nothing unless this node's member leads. Returns what was decided (for logs and tests). */
  async step(): Promise<Decision> {
    const env = this.env;
    if (!env.kv.isLocalLeader()) return { kind: "none", why: "not the Raft leader" };
    const view = await loadView(env.kv);
    const d = decide(view, env.clock.wallMs(), env.timing);
    if (d.kind === "none") {
      if (d.why !== this.lastWhy) env.log("debug", { why: d.why }, "ha.controller-idle");
      this.lastWhy = d.why;
      return d;
    }
    this.lastWhy = "";
    const ok = await this.execute(view, d);
    env.log(ok ? "info" : "warn", { decision: d, epoch: view.epoch, applied: ok }, "ha.controller-decision");
    return d;
  }

  private async execute(view: ClusterView, d: Exclude<Decision, { kind: "none" }>): Promise<boolean> {
    const env = this.env;
    const now = env.clock.wallMs();
    switch (d.kind) {
      case "assign": {
        const epoch = view.epoch + 1;
        const a: Assignment = {
          node: d.node,
          epoch,
          kind: "start",
          reason: d.reason,
          ...(d.previous ? { previous: d.previous } : {}),
          atMs: now,
        };
        return env.kv.txn(
          [epochUnchanged(view), OWNER_ABSENT],
          [
            { put: { key: KEYS.epoch, value: encodeRecord({ epoch }) } },
            { put: { key: KEYS.assignment, value: encodeRecord(a) } },
          ],
        );
      }
      case "migrate": {
        const owner = view.owner!;
        const m: Migration = {
          id: `${owner.epoch}-${now}`,
          from: owner.node,
          to: d.to,
          epoch: owner.epoch,
          state: "requested",
          percent: 0,
          reason: d.reason,
          atMs: now,
        };
        return env.kv.txn(
          [epochUnchanged(view), { key: KEYS.owner, target: "createRevision", op: "!=", value: 0n }],
          [{ put: { key: KEYS.migration, value: encodeRecord(m) } }],
        );
      }
      case "maintenance-reached": {
        const cur = view.maintenance.get(d.node)!;
        const m: NodeMaintenance = { ...cur, state: "in", atMs: now };
        return env.kv.txn(
          [epochUnchanged(view)],
          [{ put: { key: KEYS.maintenance(d.node), value: encodeRecord(m) } }],
        );
      }
    }
  }
}
