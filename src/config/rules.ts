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

/** Runs every cross-field rule on a JSON object (not yet validated) and returns what is wrong. */
export function crossFieldProblems(input: Record<string, unknown>, opts: CheckOptions = {}): Problem[] {
  const problems: Problem[] = [];
  const add = (path: string, message: string) => problems.push({ path, message });

  // Nodes: count, unique IPs and names (checked on the well-formed entries; bad ones report themselves).
  const rawNodes = Array.isArray(input.Node) ? (input.Node as unknown[]) : undefined;
  const nodeEntries = rawNodes ? validElements(rawNodes, ConfigSchema.shape.Node.element) : undefined;
  let nodeNames: NodeName[] | undefined;
  if (rawNodes && nodeEntries) {
    const n = rawNodes.length;
    if (!(n === 3 || n === 5 || (n === 1 && opts.allowSingleNode))) {
      add(
        "Node",
        n === 1
          ? "has 1 entry; a cluster needs 3 or 5 nodes (a single node is allowed only for the demo)"
          : `has ${n} entries; a cluster needs 3 or 5 nodes (2N+1 to tolerate N failures)`,
      );
    }
    const byIp = new Map<string, number>();
    const byName = new Map<string, number>();
    for (const [i, entry] of nodeEntries) {
      const [ip, name] = entry.trim().split(/\s+/) as [string, string];
      const sameIp = byIp.get(ip);
      if (sameIp !== undefined) add(`Node[${i}]`, `IP ${ip} is already used by Node[${sameIp}]`);
      else byIp.set(ip, i);
      const sameName = byName.get(name.toLowerCase());
      if (sameName !== undefined) add(`Node[${i}]`, `host name ${name} is already used by Node[${sameName}]`);
      else byName.set(name.toLowerCase(), i);
    }
    // Per-node values are checked against the names only when every entry is good and names are unique.
    if (byName.size === n) nodeNames = nodeEntries.map(([, e]) => e.trim().split(/\s+/)[1] as NodeName);
  }

  // Storage type requirements.
  const type = field(input, "Type");
  if (type === "CephConf") {
    if (input.PoolName === undefined)
      add("PoolName", "is required for CephConf (the RBD pool holding the image)");
    const mons = field(input, "MonAddrs");
    if (input.MonAddrs === undefined)
      add("MonAddrs", "is required for CephConf (the Ceph monitors, ip:port)");
    else if (mons && mons.length === 0) add("MonAddrs", "needs at least one Ceph monitor address (ip:port)");
  }
  if (type === "FileConf" && input.ImageFolder === undefined) {
    add("ImageFolder", "is required for FileConf (the shared folder holding the MN-VM image)");
  }

  // NICs: exactly one IsMgmt and one IsDefRoute, unique MACs, gateway on the default route, per-node values.
  const network = Array.isArray(input.Network) ? (input.Network as unknown[]) : undefined;
  const mgmtAddrs: string[] = [];
  if (network) {
    if (network.length === 0) add("Network", "needs at least one NIC (the IsMgmt one)");
    const flagged = (key: "IsMgmt" | "IsDefRoute") =>
      network.map((nic, i) => (nicField(nic, key) === true ? i : -1)).filter((i) => i >= 0);
    const allFlagsValid = network.every(
      (nic) => nicField(nic, "IsMgmt") !== undefined && nicField(nic, "IsDefRoute") !== undefined,
    );
    const mgmt = flagged("IsMgmt");
    const defRoute = flagged("IsDefRoute");
    if (allFlagsValid && network.length > 0) {
      if (mgmt.length !== 1) add("Network", `has ${mgmt.length} NICs with IsMgmt true; exactly one must be`);
      if (defRoute.length !== 1) {
        add("Network", `has ${defRoute.length} NICs with IsDefRoute true; exactly one must be`);
      }
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
          if (key === "Ipaddr") mgmtAddrs.push(text.trim());
          continue;
        }
        if (mgmt.length !== 1) continue; // which NIC is the mgmt one is unclear; that is reported above.
        if (!isMgmt) {
          add(path, "may be given per node (ip@host) only on the IsMgmt NIC");
          continue;
        }
        if (!nodeNames) continue; // Node is broken; its own problems are reported.
        const check =
          key === "Netmask" ? netmaskProblem : key === "Gateway" && !isDefRoute ? ipv4OrNone : ipv4Problem;
        const parsed = parsePerNode(text, nodeNames, check);
        if (!parsed.ok) for (const p of parsed.problems) add(path, p);
        else if (key === "Ipaddr" && parsed.value.kind === "per-node")
          mgmtAddrs.push(...parsed.value.values.values());
      }
    });
  }

  const proxy = field(input, "ConsoleProxyOverriddenIP");
  if (proxy !== undefined && isPerNodeText(proxy) && nodeNames) {
    const parsed = parsePerNode(proxy, nodeNames, ipv4OrNone);
    if (!parsed.ok) for (const p of parsed.problems) add("ConsoleProxyOverriddenIP", p);
  }

  // Chrony: nobody syncs from itself (see the header comment).
  const chrony = Array.isArray(input.ChronyServers)
    ? validElements(input.ChronyServers as unknown[], ConfigSchema.shape.ChronyServers.unwrap().element)
    : undefined;
  if (chrony) {
    const seen = new Map<string, number>();
    const nodeKey = new Map<string, string>();
    if (nodeEntries) {
      for (const [, entry] of nodeEntries) {
        const [ip, name] = entry.trim().split(/\s+/) as [string, string];
        nodeKey.set(ip, `node ${name}`);
        nodeKey.set(name.toLowerCase(), `node ${name}`);
      }
    }
    for (const [i, server] of chrony) {
      const key = nodeKey.get(server.toLowerCase()) ?? server.toLowerCase();
      const first = seen.get(key);
      if (first !== undefined) {
        add(
          `ChronyServers[${i}]`,
          key.startsWith("node ")
            ? `names the same ${key} as ChronyServers[${first}]; it would be told to sync from itself`
            : `"${server}" is listed twice`,
        );
      } else seen.set(key, i);
      if (isIPv4(server) && mgmtAddrs.includes(server)) {
        add(
          `ChronyServers[${i}]`,
          `${server} is an address of the MN-VM, which would be told to sync from itself`,
        );
      }
    }
  }

  const timing = field(input, "Timing");
  if (timing && timing.FenceMarginMs >= timing.OwnerLeaseMs) {
    add(
      "Timing.FenceMarginMs",
      "must be smaller than Timing.OwnerLeaseMs (the owner fences itself before its lease ends)",
    );
  }
  if (timing && timing.NodeLeaseMs < 3 * timing.TickMs) {
    add(
      "Timing.NodeLeaseMs",
      "must be at least 3 ticks (Timing.TickMs) so one late heartbeat does not expire it",
    );
  }
  return problems;
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
