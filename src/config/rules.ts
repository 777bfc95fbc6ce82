/**
 * Rules of SPEC §2 that relate several fields. Each rule runs on whatever fields are individually valid,
 * so one bad field never hides the problems of the others.
 *
 * ChronyServers and "a server may not be told to sync from itself" — what zsha does with the list:
 * every node and the MN-VM sync from `ChronyServers`; a node that is itself listed (by IP or host name)
 * serves time and syncs from the *other* entries only (`chronySourcesFor` in resolve.ts drops it), so no
 * node is ever told to sync from itself. What the check refuses, because it would break that:
 * - an entry listed twice, or a node listed both by IP and by host name (it would stay a source of itself);
 * - an entry that is an address of the MN-VM (any NIC's Ipaddr, on any node): the MN-VM would sync from
 *   itself.
 * A node that is the only entry syncs from nobody and serves its local clock: allowed (a common setup).
 */

import type { z } from "zod";
import { ipv4Problem, isIPv4, netmaskProblem, normalizeMac } from "./net.js";
import { isPerNodeText, parsePerNode } from "./per-node.js";
import { ConfigSchema, NicSchema } from "./schema.js";
import type { NodeName } from "./types.js";

export interface Problem {
  /** The field, e.g. `Network[1].MacAddress`; empty for the file as a whole. */
  readonly path: string;
  /** One sentence saying what is wrong. */
  readonly message: string;
}

export interface CheckOptions {
  /** Accept a one-node cluster (the demo only; it cannot survive any failure). */
  readonly allowSingleNode?: boolean;
}

type Shape = typeof ConfigSchema.shape;
type Field<K extends keyof Shape> = z.output<Shape[K]>;
type NicShape = typeof NicSchema.shape;

/** The value of a top-level field if it is present and valid on its own, else undefined. */
function field<K extends keyof Shape>(input: Record<string, unknown>, key: K): Field<K> | undefined {
  const r = ConfigSchema.shape[key].safeParse(input[key]);
  return r.success ? (r.data as Field<K>) : undefined;
}

function nicField<K extends keyof NicShape>(nic: unknown, key: K): z.output<NicShape[K]> | undefined {
  if (typeof nic !== "object" || nic === null) return undefined;
  const r = NicSchema.shape[key].safeParse((nic as Record<string, unknown>)[key]);
  return r.success ? (r.data as z.output<NicShape[K]>) : undefined;
}

/** What the rules share: the input, the problems found so far, and facts established by earlier rules. */
interface Ctx {
  readonly input: Record<string, unknown>;
  readonly opts: CheckOptions;
  readonly add: (path: string, message: string) => void;
  /** Well-formed `Node` entries, with their index. */
  nodes: { index: number; ip: string; name: string }[];
  /** All node names, when every entry is well formed and names are unique (per-node values need them). */
  nodeNames: NodeName[] | undefined;
  /** Every IPv4 address the MN-VM may have (all NICs, all nodes), with the field that gives it. */
  mnvmAddrs: { ip: string; path: string }[];
}

/** Runs every cross-field rule on a JSON object (not yet validated) and returns what is wrong. */
export function crossFieldProblems(input: Record<string, unknown>, opts: CheckOptions = {}): Problem[] {
  const problems: Problem[] = [];
  const ctx: Ctx = {
    input,
    opts,
    add: (path, message) => problems.push({ path, message }),
    nodes: [],
    nodeNames: undefined,
    mnvmAddrs: [],
  };
  nodeRules(ctx);
  storageRules(ctx);
  nicRules(ctx);
  consoleProxyRules(ctx);
  chronyRules(ctx);
  timingRules(ctx);
  return problems;
}

/** 3 or 5 nodes (1 for the demo), unique IPs and names. Bad entries report themselves in the schema. */
function nodeRules(ctx: Ctx): void {
  const raw = ctx.input.Node;
  if (!Array.isArray(raw)) return;
  const n = raw.length;
  if (!(n === 3 || n === 5 || (n === 1 && ctx.opts.allowSingleNode))) {
    ctx.add(
      "Node",
      n === 1
        ? "has 1 entry; a cluster needs 3 or 5 nodes (a single node is allowed only for the demo)"
        : `has ${n} entries; a cluster needs 3 or 5 nodes (2N+1 to tolerate N failures)`,
    );
  }
  const byIp = new Map<string, number>();
  const byName = new Map<string, number>();
  for (const [index, entry] of validElements(raw, ConfigSchema.shape.Node.element)) {
    const [ip, name] = entry.trim().split(/\s+/) as [string, string];
    ctx.nodes.push({ index, ip, name });
    const sameIp = byIp.get(ip);
    if (sameIp !== undefined) ctx.add(`Node[${index}]`, `IP ${ip} is already used by Node[${sameIp}]`);
    else byIp.set(ip, index);
    // Host names compare without case, as DNS does.
    const sameName = byName.get(name.toLowerCase());
    if (sameName !== undefined)
      ctx.add(`Node[${index}]`, `host name ${name} is already used by Node[${sameName}]`);
    else byName.set(name.toLowerCase(), index);
  }
  if (byName.size === n) ctx.nodeNames = ctx.nodes.map((node) => node.name as NodeName);
}

/** CephConf needs its pool and monitors; FileConf its shared folder. */
function storageRules(ctx: Ctx): void {
  const { input, add } = ctx;
  const type = field(input, "Type");
  if (type === "CephConf") {
    if (input.PoolName === undefined)
      add("PoolName", "is required for CephConf (the RBD pool holding the image)");
    if (input.MonAddrs === undefined)
      add("MonAddrs", "is required for CephConf (the Ceph monitors, ip:port)");
    else if (field(input, "MonAddrs")?.length === 0) {
      add("MonAddrs", "needs at least one Ceph monitor address (ip:port)");
    }
  }
  if (type === "FileConf" && input.ImageFolder === undefined) {
    add("ImageFolder", "is required for FileConf (the shared folder holding the MN-VM image)");
  }
}

/**
 * Exactly one IsMgmt and one IsDefRoute NIC, unique MACs, a gateway on the default route, per-node values
 * only on the IsMgmt NIC and covering every node, and no MN-VM address equal to a node's own IP.
 */
function nicRules(ctx: Ctx): void {
  const { add } = ctx;
  const network = ctx.input.Network;
  if (!Array.isArray(network)) return;
  if (network.length === 0) {
    add("Network", "needs at least one NIC (the IsMgmt one)");
    return;
  }
  const flagged = (key: "IsMgmt" | "IsDefRoute") =>
    network.map((nic, i) => (nicField(nic, key) === true ? i : -1)).filter((i) => i >= 0);
  const mgmt = flagged("IsMgmt");
  const defRoute = flagged("IsDefRoute");
  // Count only when every flag is a boolean; a missing or mistyped flag is reported on its own.
  if (
    network.every((nic) => nicField(nic, "IsMgmt") !== undefined && nicField(nic, "IsDefRoute") !== undefined)
  ) {
    if (mgmt.length !== 1) add("Network", `has ${mgmt.length} NICs with IsMgmt true; exactly one must be`);
    if (defRoute.length !== 1)
      add("Network", `has ${defRoute.length} NICs with IsDefRoute true; exactly one must be`);
  }

  const macs = new Map<string, number>();
  network.forEach((nic, i) => {
    const mac = nicField(nic, "MacAddress");
    if (mac === undefined) return;
    const seen = macs.get(normalizeMac(mac));
    if (seen !== undefined) add(`Network[${i}].MacAddress`, `${mac} is already used by Network[${seen}]`);
    else macs.set(normalizeMac(mac), i);
  });

  network.forEach((nic, i) => {
    const isMgmt = mgmt.length === 1 && mgmt[0] === i;
    const isDefRoute = defRoute.length === 1 && defRoute[0] === i;
    const rawGateway =
      typeof nic === "object" && nic !== null ? (nic as Record<string, unknown>).Gateway : undefined;
    if (isDefRoute && (rawGateway === undefined || rawGateway === "")) {
      add(`Network[${i}].Gateway`, "is required on the IsDefRoute NIC");
    }
    for (const key of ["Ipaddr", "Netmask", "Gateway"] as const) {
      const text = nicField(nic, key);
      if (text === undefined) continue;
      const path = `Network[${i}].${key}`;
      if (!isPerNodeText(text)) {
        if (key === "Ipaddr") ctx.mnvmAddrs.push({ ip: text.trim(), path });
        continue;
      }
      if (mgmt.length !== 1) continue; // Which NIC is the mgmt one is unclear; reported above.
      if (!isMgmt) {
        add(path, "may be given per node (ip@host) only on the IsMgmt NIC");
        continue;
      }
      if (!ctx.nodeNames) continue; // Node is broken; its own problems are reported.
      const check =
        key === "Netmask" ? netmaskProblem : key === "Gateway" && !isDefRoute ? ipv4OrNone : ipv4Problem;
      const parsed = parsePerNode(text, ctx.nodeNames, check);
      if (!parsed.ok) for (const p of parsed.problems) add(path, p);
      else if (key === "Ipaddr" && parsed.value.kind === "per-node") {
        for (const ip of parsed.value.values.values()) ctx.mnvmAddrs.push({ ip, path });
      }
    }
  });

  // The MN-VM on a node's own IP would take that node off its own network (an address conflict).
  const nodeByIp = new Map(ctx.nodes.map((node) => [node.ip, node]));
  for (const { ip, path } of ctx.mnvmAddrs) {
    const node = nodeByIp.get(ip);
    if (node)
      add(
        path,
        `${ip} is the IP of node ${node.name} (Node[${node.index}]); the MN-VM needs its own address`,
      );
  }
}

function consoleProxyRules(ctx: Ctx): void {
  const proxy = field(ctx.input, "ConsoleProxyOverriddenIP");
  if (proxy === undefined || !isPerNodeText(proxy) || !ctx.nodeNames) return;
  const parsed = parsePerNode(proxy, ctx.nodeNames, ipv4OrNone);
  if (!parsed.ok) for (const p of parsed.problems) ctx.add("ConsoleProxyOverriddenIP", p);
}

/** Nobody is told to sync from itself (see the header comment). */
function chronyRules(ctx: Ctx): void {
  const raw = ctx.input.ChronyServers;
  if (!Array.isArray(raw)) return;
  // A node listed by IP and by name is the same server: key both by the node.
  const nodeKey = new Map<string, string>();
  for (const { ip, name } of ctx.nodes) {
    nodeKey.set(ip, `node ${name}`);
    nodeKey.set(name.toLowerCase(), `node ${name}`);
  }
  const mnvm = new Set(ctx.mnvmAddrs.map((a) => a.ip));
  const seen = new Map<string, number>();
  for (const [i, server] of validElements(raw, ConfigSchema.shape.ChronyServers.unwrap().element)) {
    const path = `ChronyServers[${i}]`;
    const key = nodeKey.get(server.toLowerCase()) ?? server.toLowerCase();
    const first = seen.get(key);
    if (first === undefined) seen.set(key, i);
    else if (key.startsWith("node ")) {
      ctx.add(path, `names the same ${key} as ChronyServers[${first}]; it would be told to sync from itself`);
    } else ctx.add(path, `"${server}" is listed twice`);
    if (isIPv4(server) && mnvm.has(server)) {
      ctx.add(path, `${server} is an address of the MN-VM, which would be told to sync from itself`);
    }
  }
}

/** The owner must fence itself before its lease can expire elsewhere (DESIGN.md, the MN-VM lease). */
function timingRules(ctx: Ctx): void {
  const timing = field(ctx.input, "Timing");
  if (!timing) return;
  if (timing.FenceMarginMs >= timing.OwnerLeaseMs) {
    ctx.add(
      "Timing.FenceMarginMs",
      "must be smaller than Timing.OwnerLeaseMs (the owner fences itself before its lease ends)",
    );
  }
  if (timing.NodeLeaseMs < 3 * timing.TickMs) {
    ctx.add(
      "Timing.NodeLeaseMs",
      "must be at least 3 ticks (Timing.TickMs) so one late heartbeat does not expire it",
    );
  }
}

/** The elements of a list that are valid on their own, with their index. */
function validElements<T>(list: unknown[], schema: z.ZodType<T>): [number, T][] {
  const out: [number, T][] = [];
  list.forEach((item, i) => {
    const r = schema.safeParse(item);
    if (r.success) out.push([i, r.data]);
  });
  return out;
}

function ipv4OrNone(text: string): string | undefined {
  return text === "" || isIPv4(text) ? undefined : `"${text}" is not an IPv4 address (expected a.b.c.d)`;
}
