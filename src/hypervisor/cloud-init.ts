/**
 * The MN-VM's cloud-init NoCloud seed: how the guest learns the network of the node it runs on.
 *
 * The seed is regenerated before every start on the node that starts the MN-VM (SPEC §2 per-node format:
 * the mgmt NIC's Ipaddr/Netmask/Gateway may differ per node). cloud-init applies network-config once per
 * instance, so `instance-id` is derived from the network settings: a start on a node with other settings
 * (or after `import-config` changed them) is a new instance to cloud-init and the network is re-applied;
 * a restart with the same settings changes nothing in the guest.
 *
 * Files (cloud-init docs, "NoCloud" and "Networking config Version 2"):
 * - `meta-data`      instance-id
 * - `network-config` version 2, each NIC matched by its fixed MAC
 * - `user-data`      minimal #cloud-config that keeps the image's SSH host keys across instance changes
 * The volume label must be `cidata`.
 */

import { createHash } from "node:crypto";
import { type Config, type NodeName, resolveNic } from "../config/index.js";

export const SEED_LABEL = "cidata";

export interface SeedFiles {
  readonly "meta-data": string;
  readonly "network-config": string;
  readonly "user-data": string;
}

/** YAML scalar, double-quoted (JSON strings are valid YAML; quoting keeps MACs from being read as numbers). */
function q(value: string): string {
  return JSON.stringify(value);
}

/** network-config v2 for the MN-VM when it runs on `node`. */
export function networkConfig(config: Config, node: NodeName): string {
  const lines = ["version: 2", "ethernets:"];
  config.Network.forEach((nic, i) => {
    const net = resolveNic(config, nic, node);
    lines.push(
      `  nic${i}:`,
      "    match:",
      `      macaddress: ${q(nic.MacAddress.toLowerCase())}`,
      "    dhcp4: false",
      `    addresses: [${q(`${net.Ipaddr}/${net.prefixLength}`)}]`,
    );
    if (nic.IsDefRoute) {
      // gateway4 rather than `routes: [{to: default}]`: older cloud-init in long-lived MN-VM images knows only it.
      if (net.Gateway) lines.push(`    gateway4: ${q(net.Gateway)}`);
      if (config.DNS.length > 0) {
        lines.push("    nameservers:", `      addresses: [${config.DNS.map(q).join(", ")}]`);
      }
    }
  });
  return `${lines.join("\n")}\n`;
}

/** The seed for the MN-VM starting on `node`. Pure: the same config and node give the same bytes. */
export function seedFiles(config: Config, node: NodeName): SeedFiles {
  const network = networkConfig(config, node);
  const digest = createHash("sha256").update(network).digest("hex").slice(0, 16);
  return {
    "meta-data": `instance-id: ${config.DomainName}-${digest}\n`,
    "network-config": network,
    "user-data": [
      "#cloud-config",
      "# Written by zsha: only the network comes from the seed; the MN-VM image carries everything else.",
      "ssh_deletekeys: false",
      "",
    ].join("\n"),
  };
}
