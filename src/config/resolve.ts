/**
 * Reading a checked config for one node: its nodes, the MN-VM's addresses where it runs, time sources.
 * These functions assume `parseConfig` accepted the config; a violated assumption throws (a bug, not input).
 */

import { netmaskToPrefix } from "./net.js";
import { isPerNodeText, parsePerNode, valueFor } from "./per-node.js";
import type { Config, Nic } from "./schema.js";
import type { ClusterNode, IPv4, NodeName } from "./types.js";

export function clusterNodes(config: Config): ClusterNode[] {
  return config.Node.map((entry) => {
    const [ip, name] = entry.trim().split(/\s+/) as [string, string];
    return { ip: ip as IPv4, name: name as NodeName };
  });
}

/** The node named by an IP or a host name (as operators type them, e.g. `zsha migrate ceph-2`). */
export function findNode(config: Config, ipOrName: string): ClusterNode | undefined {
  const key = ipOrName.trim().toLowerCase();
  return clusterNodes(config).find((n) => n.ip === key || n.name.toLowerCase() === key);
}

export function mgmtNicIndex(config: Config): number {
  const i = config.Network.findIndex((nic) => nic.IsMgmt);
  if (i < 0) throw new Error("config has no IsMgmt NIC (parseConfig should have refused it)");
  return i;
}

/** The MN-VM's management network settings when it runs on one node (SPEC §2, per-node format). */
export interface NodeNetwork {
  readonly node: NodeName;
  readonly Ipaddr: IPv4;
  readonly Netmask: IPv4;
  readonly prefixLength: number;
  /** Absent when the mgmt NIC has no gateway (another NIC carries the default route). */
  readonly Gateway?: IPv4;
  readonly ConsoleProxyOverriddenIP?: IPv4;
}

function resolve(text: string | undefined, config: Config, node: NodeName): string | undefined {
  if (text === undefined) return undefined;
  if (!isPerNodeText(text)) return text.trim() === "" ? undefined : text.trim();
  const names = clusterNodes(config).map((n) => n.name);
  const parsed = parsePerNode(text, names, () => undefined);
  if (!parsed.ok) throw new Error(`per-node value "${text}" does not parse: ${parsed.problems.join("; ")}`);
  const v = valueFor(parsed.value, node);
  return v === "" ? undefined : v;
}

/** A NIC's Ipaddr/Netmask/Gateway for the node the MN-VM runs on. */
export function resolveNic(config: Config, nic: Nic, node: NodeName) {
  const Ipaddr = resolve(nic.Ipaddr, config, node) as IPv4;
  const Netmask = resolve(nic.Netmask, config, node) as IPv4;
  const Gateway = resolve(nic.Gateway, config, node) as IPv4 | undefined;
  const prefixLength = netmaskToPrefix(Netmask);
  if (prefixLength === undefined) throw new Error(`netmask ${Netmask} is not contiguous`);
  return { Ipaddr, Netmask, prefixLength, ...(Gateway ? { Gateway } : {}) };
}

export function resolvePerNode(config: Config, node: NodeName): NodeNetwork {
  if (!clusterNodes(config).some((n) => n.name === node)) {
    throw new Error(`node ${node} is not in this cluster's Node list`);
  }
  const nic = config.Network[mgmtNicIndex(config)]!;
  const proxy = resolve(config.ConsoleProxyOverriddenIP, config, node) as IPv4 | undefined;
  return { node, ...resolveNic(config, nic, node), ...(proxy ? { ConsoleProxyOverriddenIP: proxy } : {}) };
}

/**
 * The time sources for one node: `ChronyServers` without the node itself (by IP or name), so a node that
 * serves time is never told to sync from itself. An empty list means: serve from the local clock.
 */
export function chronySourcesFor(config: Config, node: NodeName): string[] {
  const self = clusterNodes(config).find((n) => n.name === node);
  if (!self) throw new Error(`node ${node} is not in this cluster's Node list`);
  return config.ChronyServers.filter((s) => s !== self.ip && s.toLowerCase() !== self.name.toLowerCase());
}
