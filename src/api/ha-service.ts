// The HA service (proto/zsha/ha/v1): status of the MN-VM and the nodes, desired state, live migration with
// streamed progress, maintenance, demote. Served by every member from the replicated HA state, so every
// node answers the same; writes are the same records the controller and the local managers act on.

import { create } from "@bufbuild/protobuf";
import { compareToProto, kvEntry, opToProto } from "../agent/ha-kv.js";
import { watchStore } from "../agent/ha-watch.js";
import { type Config, parseConfig, resolveNic, resolvePerNode } from "../config/index.js";
import type { NodeName } from "../config/types.js";
import * as hapb from "../gen/zsha/ha/v1/ha_pb.js";
import { RangeRequestSchema } from "../gen/zsha/kv/v1/kv_pb.js";
import { Code, RpcError, type ServiceImpl } from "../grpc/index.js";
import { ineligible, rankNodes } from "../ha/decide.js";
import { DEFAULT_TIMING, type HaKv, type KvEntry } from "../ha/env.js";
import {
  configHash,
  decodeRecord,
  encodeRecord,
  type HistoryRecord,
  HistorySchema,
  KEYS,
  type Migration,
  type PasswordReset,
  PasswordResetSchema,
} from "../ha/records.js";
import { type ClusterView, loadView } from "../ha/view.js";
import { nodeId } from "../raft/index.js";
import type { Member } from "../server/member.js";
import type { StorageFacts } from "./storage-facts.js";

const dec = new TextDecoder();
const enc = new TextEncoder();

/** The HA state read and written through this member itself (linearizable reads, proposals for writes). */
export function memberHaKv(member: Member): HaKv {
  const range = async (key: string, prefix: boolean) => {
    await member.linearizableRead();
    return member.kv.range(create(RangeRequestSchema, { key: enc.encode(key), prefix })).kvs.map(kvEntry);
  };
  const write = async (op: Parameters<Member["propose"]>[0], what: string) => {
    const r = await member.propose(op, what);
    if (!r.ok) throw r.error.toRpcError();
    return r;
  };
  const unsupported = () =>
    Promise.reject(new RpcError(Code.INTERNAL, "leases are not used by the HA service"));
  return {
    get: async (key) => (await range(key, false))[0],
    list: (prefix) => range(prefix, true),
    async txn(compare, success, failure = []) {
      const r = await write(
        {
          case: "txn",
          value: {
            compare: compare.map(compareToProto),
            success: success.map(opToProto),
            failure: failure.map(opToProto),
          },
        },
        "ha txn",
      );
      return r.response.case === "txn" && r.response.value.succeeded;
    },
    async put(key, value) {
      await write({ case: "put", value: { key: enc.encode(key), value } }, "ha put");
    },
    leaseGrant: unsupported,
    leaseKeepAlive: unsupported,
    leaseRevoke: unsupported,
    isLocalLeader: () => member.isLeader(),
    watch: (prefix, onChange) => watchStore(() => member.kv, prefix, onChange),
  };
}

/**
 * The status fields of the answering node's storage facts: each as last observed in the background, with its
 * age (StorageFacts); never a Ceph call of its own. No StorageFacts: an agent without HA (not reported).
 */
function storageFields(facts: StorageFacts | undefined) {
  if (!facts)
    return { storageHealth: "", storageDetails: [], storageAgeMs: -1n, hostIo: "", hostIoAgeMs: -1n };
  const notYet = "unknown (not observed yet: the first probe is under way)";
  const h = facts.latestHealth();
  const r = facts.latestRead();
  return {
    storageHealth: !h ? notYet : h.ok ? h.value.status : `unknown (${h.error})`,
    storageDetails: h?.ok ? [...h.value.summary, ...h.value.checks] : [],
    storageAgeMs: h ? BigInt(Math.round(h.ageMs)) : -1n,
    hostIo: !r
      ? notYet
      : r.ok
        ? `read ${r.value.bytes} bytes of ${r.value.target} in ${r.value.latencyMs.toFixed(1)} ms`
        : `FAILED: ${r.error}`,
    hostIoAgeMs: r ? BigInt(Math.round(r.ageMs)) : -1n,
  };
}

interface Ctx {
  view: ClusterView;
  config: Config | undefined;
  /** Node name → IP from the config. */
  ips: Map<string, string>;
}

async function context(kv: HaKv): Promise<Ctx> {
  const view = await loadView(kv);
  let config: Config | undefined;
  if (view.config) {
    const r = parseConfig(JSON.parse(dec.decode(view.config)), { allowSingleNode: true });
    if (r.ok) config = r.config;
  }
  const ips = new Map<string, string>();
  for (const n of config?.Node ?? []) {
    const [ip, name] = n.split(" ");
    if (ip && name) ips.set(name, ip);
  }
  return { view, config, ips };
}

/** Every HA key: what loadView reads, the start history included. */
const HA_PREFIX = "/zsha/";

/** `kv` with its reads answered from `entries`, one read of HA_PREFIX already made (keys sorted). */
function readFrom(kv: HaKv, entries: readonly KvEntry[]): HaKv {
  return {
    ...kv,
    get: async (key) => entries.find((e) => e.key === key),
    list: async (prefix) => entries.filter((e) => e.key.startsWith(prefix)),
  };
}

/** A node named by name or IP; NOT_FOUND naming the members otherwise. */
function resolveNode(ctx: Ctx, what: string, target: string): string {
  if (ctx.ips.has(target)) return target;
  for (const [name, ip] of ctx.ips) if (ip === target) return name;
  const members = [...ctx.ips.keys()].join(", ") || "(no config stored yet)";
  throw new RpcError(Code.NOT_FOUND, `${what}: '${target}' is not a node of this cluster; nodes: ${members}`);
}

/** The running MN-VM was started with another config than the stored one (import-config since). */
function restartPending(v: ClusterView, last: HistoryRecord | undefined): boolean {
  if (!v.owner || !v.config || !last?.configHash) return false;
  return last.configHash !== configHash(v.config);
}

function mnvmState(v: ClusterView): string {
  if (v.owner) {
    if (v.reports.get(v.owner.node)?.mnvm?.value === "running")
      return (v.desired?.state ?? "running") === "stopped" ? "stopping" : "running";
    return (v.desired?.state ?? "running") === "stopped" ? "stopping" : "starting";
  }
  if ((v.desired?.state ?? "running") === "stopped") return "stopped";
  return v.assignment && v.assignment.epoch === v.epoch && !v.assignment.failed ? "starting" : "stopped";
}

async function requestMigration(
  kv: HaKv,
  ctx: Ctx,
  to: string,
  reason: string,
  now: number,
): Promise<Migration> {
  const v = ctx.view;
  const owner = v.owner!;
  const m: Migration = {
    id: `${owner.epoch}-${now}`,
    from: owner.node,
    to,
    epoch: owner.epoch,
    state: "requested",
    percent: 0,
    reason,
    atMs: now,
  };
  const ok = await kv.txn(
    [
      { key: KEYS.epoch, target: "modRevision", op: "==", value: v.epochRevision },
      { key: KEYS.owner, target: "createRevision", op: "!=", value: 0n },
    ],
    [{ put: { key: KEYS.migration, value: encodeRecord(m) } }],
  );
  if (!ok)
    throw new RpcError(
      Code.ABORTED,
      "the MN-VM's ownership changed meanwhile; look at zsha status and retry",
    );
  return m;
}

function networkIps(ctx: Ctx): { managementIp: string; publicIp: string } {
  const c = ctx.config;
  if (!c) return { managementIp: "", publicIp: "" };
  const node = (ctx.view.owner?.node ?? [...ctx.ips.keys()][0] ?? "") as NodeName;
  try {
    const mgmt = resolvePerNode(c, node).Ipaddr ?? "";
    const def = c.Network.find((n) => n.IsDefRoute);
    const pub = def ? (resolveNic(c, def, node).Ipaddr ?? "") : "";
    return { managementIp: mgmt, publicIp: pub };
  } catch {
    return { managementIp: "", publicIp: "" };
  }
}

export function haService(
  member: Member,
  storage: () => StorageFacts | undefined = () => undefined,
): ServiceImpl<typeof hapb.HaService.method> {
  const kv = memberHaKv(member);
  const domain = (ctx: Ctx) => ctx.config?.DomainName ?? "zsha-mnvm";
  return {
    async getStatus(req) {
      // One linearizable read for the whole answer, the view and the start history alike. Each read is a
      // ReadIndex round, one in flight per member (a reader arriving meanwhile waits for the next): with
      // the agents' own reads and writes under way, the second round that the history used to take cost
      // 20–80 ms on loopback, most of this handler's time.
      const all = await kv.list(HA_PREFIX);
      const ctx = await context(readFrom(kv, all));
      const v = ctx.view;
      const now = Date.now();
      const names = new Set([...ctx.ips.keys(), ...v.reports.keys()]);
      const nodes = [...names].sort().map((name) => {
        const r = v.reports.get(name);
        const fact = (f: { value: boolean; atMs: number; error?: string } | undefined) =>
          f ? { ok: f.value, ageMs: BigInt(Math.max(0, now - f.atMs)), error: f.error ?? "" } : undefined;
        return create(hapb.NodeStatusSchema, {
          name,
          ip: ctx.ips.get(name) ?? "",
          reporting: r !== undefined,
          reportAgeMs: r ? BigInt(Math.max(0, now - r.reportedAtMs)) : -1n,
          ...(r ? { hypervisor: fact(r.hypervisor), image: fact(r.image) } : {}),
          maintenance: v.maintenance.get(name)?.state ?? "",
          recentStartFailures: r?.startFailures.length ?? 0,
          mnvm: r?.mnvm?.value ?? "",
          agentVersion: r?.agentVersion ?? "",
        });
      });
      const limit = req.history > 0 ? req.history : 5;
      const records = all
        .filter((e) => e.key.startsWith(KEYS.historyPrefix))
        .map((e) => decodeRecord(HistorySchema, e.key, e.value));
      const lastStart = records.at(-1);
      const history = records.slice(-limit).map((h) => ({
        atMs: BigInt(h.atMs),
        node: h.node,
        epoch: BigInt(h.epoch),
        kind: h.kind,
        reason: h.reason,
      }));
      const m = v.migration;
      return {
        answeredBy: member.opts.name,
        desired: v.desired?.state ?? "running",
        owner: v.owner?.node ?? "",
        epoch: BigInt(v.epoch),
        mnvmState: mnvmState(v),
        globalMaintenance: v.globalMaintenance?.enabled ?? false,
        nodes,
        history,
        ...(m
          ? {
              migration: {
                from: m.from,
                to: m.to,
                state: m.state,
                percent: m.percent,
                error: m.error ?? "",
                ageMs: BigInt(Math.max(0, now - m.atMs)),
              },
            }
          : {}),
        configStored: v.config !== undefined,
        domainName: domain(ctx),
        ...networkIps(ctx),
        restartPending: restartPending(v, lastStart),
        ...storageFields(storage()),
      };
    },

    async setDesired(req) {
      if (req.state !== "running" && req.state !== "stopped") {
        throw new RpcError(
          Code.INVALID_ARGUMENT,
          `set_desired: state must be 'running' or 'stopped', not '${req.state}'`,
        );
      }
      await kv.put(
        KEYS.desired,
        encodeRecord({ state: req.state, by: req.by || "operator", atMs: Date.now() }),
      );
      return {};
    },

    async *migrate(req, call) {
      const ctx = await context(kv);
      const v = ctx.view;
      const to = resolveNode(ctx, "migrate", req.target);
      if (!v.owner)
        throw new RpcError(
          Code.FAILED_PRECONDITION,
          "migrate: the MN-VM is not running; start it first (zsha start)",
        );
      if (v.owner.node === to) {
        throw new RpcError(
          Code.ALREADY_EXISTS,
          `migrate: domain '${domain(ctx)}' is already active on ${to}`,
        );
      }
      const why = ineligible(v, to, Date.now(), DEFAULT_TIMING);
      if (why) throw new RpcError(Code.FAILED_PRECONDITION, `migrate: ${to} cannot take the MN-VM: ${why}`);
      const active =
        v.migration &&
        (v.migration.state === "requested" || v.migration.state === "running") &&
        v.migration.epoch === v.epoch;
      if (active)
        throw new RpcError(
          Code.FAILED_PRECONDITION,
          `migrate: a migration ${v.migration!.from} -> ${v.migration!.to} is already in progress`,
        );
      // The migration record is read again as soon as this member applies a change of it (a watch on the
      // local store: progress, then the hand-over that says done), and at least every second.
      let changed = false;
      let wake: (() => void) | undefined;
      const poke = () => {
        changed = true;
        wake?.();
      };
      const unwatch = kv.watch(KEYS.migration, (c) => {
        if (c === undefined || c.key === KEYS.migration) poke();
      });
      call.signal.addEventListener("abort", poke);
      try {
        const m = await requestMigration(kv, ctx, to, "operator", Date.now());
        yield { from: m.from, to: m.to, state: m.state, percent: 0 };
        let last = `${m.state}/${m.percent}`;
        const deadline = performance.now() + 15 * 60_000;
        while (performance.now() < deadline && !call.signal.aborted) {
          if (!changed) {
            let t: NodeJS.Timeout | undefined;
            await new Promise<void>((r) => {
              wake = r;
              t = setTimeout(r, 1000);
            });
            clearTimeout(t);
            wake = undefined;
          }
          changed = false;
          const e = await kv.get(KEYS.migration);
          if (!e) continue;
          const cur = JSON.parse(dec.decode(e.value)) as Migration;
          if (cur.id !== m.id)
            throw new RpcError(Code.ABORTED, "migrate: another migration replaced this one");
          const key = `${cur.state}/${cur.percent}`;
          if (key !== last) {
            last = key;
            yield {
              from: cur.from,
              to: cur.to,
              state: cur.state,
              percent: cur.percent,
              error: cur.error ?? "",
            };
          }
          if (cur.state === "done") return;
          if (cur.state === "failed") {
            throw new RpcError(
              Code.ABORTED,
              `migrate: the migration failed and the MN-VM keeps running on ${cur.from}: ${cur.error ?? "unknown error"}`,
            );
          }
        }
        throw new RpcError(
          Code.DEADLINE_EXCEEDED,
          "migrate: no result within 15 minutes; look at zsha status",
        );
      } finally {
        unwatch();
        call.signal.removeEventListener("abort", poke);
      }
    },

    async setMaintenance(req) {
      const ctx = await context(kv);
      const node = resolveNode(ctx, "maintenance", req.node);
      if (req.enable) {
        if (ctx.view.maintenance.has(node)) return {};
        await kv.put(
          KEYS.maintenance(node),
          encodeRecord({ state: "entering", atMs: Date.now(), by: "operator" }),
        );
      } else {
        await kv.txn([], [{ delete: { key: KEYS.maintenance(node) } }]);
      }
      return {};
    },

    async setGlobalMaintenance(req) {
      await kv.put(
        KEYS.globalMaintenance,
        encodeRecord({ enabled: req.enable, atMs: Date.now(), by: "operator" }),
      );
      return {};
    },

    async demote(req) {
      const ctx = await context(kv);
      const node = req.node === "" ? member.opts.name : resolveNode(ctx, "demote", req.node);
      const actions: string[] = [];
      if (ctx.view.owner?.node === node) {
        const to = rankNodes(ctx.view, Date.now(), DEFAULT_TIMING, new Set([node]))[0];
        if (!to)
          throw new RpcError(
            Code.FAILED_PRECONDITION,
            `demote: no other node can take the MN-VM from ${node}`,
          );
        await requestMigration(kv, ctx, to, `${node} demoted`, Date.now());
        actions.push(`MN-VM migration ${node} -> ${to} requested`);
      }
      if (node === member.opts.name && member.isLeader()) {
        const st = member.status();
        let best = "";
        let bestMatch = -1;
        for (const v of st.config.voters) {
          const m = st.progress?.get(v)?.match ?? 0;
          if (v !== node && m > bestMatch) {
            best = v;
            bestMatch = m;
          }
        }
        if (best) actions.push(`Raft leadership handed to ${await member.transferLeadership(nodeId(best))}`);
      }
      if (actions.length === 0)
        actions.push(`${node} neither leads the cluster nor runs the MN-VM: nothing to do`);
      return { actions };
    },

    async resetMnvmPassword() {
      const ctx = await context(kv);
      if (!ctx.config?.AllowResetRootPassword) {
        throw new RpcError(
          Code.FAILED_PRECONDITION,
          "reset-MNVM-password is refused: AllowResetRootPassword is false in the cluster config; set it to true with zsha import-config first",
        );
      }
      if (!ctx.view.owner)
        throw new RpcError(
          Code.FAILED_PRECONDITION,
          "reset-MNVM-password: the MN-VM is not running; start it first",
        );
      const req: PasswordReset = {
        id: `${Date.now()}-${Math.random().toString(36).slice(2, 8)}`,
        state: "requested",
        atMs: Date.now(),
      };
      await kv.put(KEYS.passwordReset, encodeRecord(req));
      const deadline = performance.now() + 60_000;
      while (performance.now() < deadline) {
        await new Promise((r) => setTimeout(r, 300));
        const e = await kv.get(KEYS.passwordReset);
        if (!e) continue;
        const cur = decodeRecord(PasswordResetSchema, KEYS.passwordReset, e.value);
        if (cur.id !== req.id)
          throw new RpcError(Code.ABORTED, "reset-MNVM-password: another reset replaced this one; retry");
        if (cur.state === "done") return { node: cur.node ?? "" };
        if (cur.state === "failed") {
          throw new RpcError(
            Code.ABORTED,
            `reset-MNVM-password failed on ${cur.node ?? "the owner"}: ${cur.error ?? "unknown error"}`,
          );
        }
      }
      throw new RpcError(
        Code.DEADLINE_EXCEEDED,
        "reset-MNVM-password: the owner did not answer within 60 s (is the qemu guest agent running in the MN-VM?)",
      );
    },
  };
}
