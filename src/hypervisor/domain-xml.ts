/**
 * The MN-VM's libvirt domain XML, built from the config (libvirt "Domain XML format" docs).
 *
 * Choices, and why:
 * - q35 machine, virtio disk and NICs: the modern defaults; the seed cdrom sits on SATA (q35 has no IDE).
 * - `kvm` uses `<cpu mode='host-model'/>`, which libvirt expands to a named model it can carry across a
 *   live migration; `qemu` (TCG, where nested KVM is broken) gets no `<cpu>` element.
 * - Disk `cache='none'`: no host page cache, so a live migration or a fence never leaves writes behind in
 *   the old host's cache (libvirt refuses live migration with unsafe caching of shared disks).
 * - on_poweroff/on_crash `destroy`: zsha, not libvirt, decides where the MN-VM starts again.
 * - The guest-agent channel has no source path: libvirt picks one per domain (needed for
 *   `set-user-password` and `agentCommand`).
 * - The UUID is derived from the cluster id and domain name: the same on every node, so a definition
 *   left on a node is recognised as the same domain (libvirt refuses a name with another UUID).
 */

import { createHash } from "node:crypto";
import { basename, join } from "node:path";
import type { Config, NodeName } from "../config/index.js";

/** The cephx user zsha's RBD disks authenticate as (`client.zsha`, created by `zsha install`). */
export const CEPH_USER = "zsha";

export interface DomainXmlInput {
  readonly config: Config;
  /** The node the MN-VM is being started on: its seed (built for it) holds its network; the XML records it. */
  readonly node: NodeName;
  /** Stable cluster identity (from the KV); names the domain's UUID and the cephx secret's UUID. */
  readonly clusterId: string;
  /** Path of the cloud-init seed ISO on this node (see seed-iso.ts). */
  readonly seedIsoPath: string;
}

/** A name-based UUID (RFC 4122 version 5 layout over SHA-1), the same everywhere for the same inputs. */
export function stableUuid(...parts: string[]): string {
  const h = createHash("sha1").update(parts.join("\0")).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const hex = h.subarray(0, 16).toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export function domainUuid(clusterId: string, domainName: string): string {
  return stableUuid("zsha-mnvm-domain", clusterId, domainName);
}

/** UUID of the libvirt secret holding the zsha cephx key (the disk's `<secret uuid=…/>`). */
export function cephSecretUuid(clusterId: string): string {
  return stableUuid("zsha-ceph-secret", clusterId, CEPH_USER);
}

/** libvirt's usage name for that secret. */
export const CEPH_SECRET_USAGE = `client.${CEPH_USER} secret`;

/** Escapes text for XML element content and single- or double-quoted attributes. */
export function xmlEscape(value: string | number): string {
  return String(value)
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;");
}

/** The FileConf image path: `ImageFolder/ImageName`. */
export function fileImagePath(config: Config): string {
  if (!config.ImageFolder) throw new Error("FileConf config without ImageFolder (parseConfig refuses it)");
  return join(config.ImageFolder, config.ImageName);
}

/** qcow2 when the image file says so by its name, raw otherwise (what `qemu-img convert -O raw` makes). */
function fileImageFormat(path: string): "qcow2" | "raw" {
  return basename(path).toLowerCase().endsWith(".qcow2") ? "qcow2" : "raw";
}

function rootDisk(config: Config, clusterId: string): string[] {
  const e = xmlEscape;
  if (config.Type === "CephConf") {
    const hosts = (config.MonAddrs ?? []).map((addr) => {
      const [ip, port] = addr.split(":") as [string, string];
      return `        <host name='${e(ip)}' port='${e(port)}'/>`;
    });
    return [
      "    <disk type='network' device='disk'>",
      "      <driver name='qemu' type='raw' cache='none' discard='unmap'/>",
      `      <auth username='${e(CEPH_USER)}'>`,
      `        <secret type='ceph' uuid='${e(cephSecretUuid(clusterId))}'/>`,
      "      </auth>",
      `      <source protocol='rbd' name='${e(`${config.PoolName}/${config.ImageName}`)}'>`,
      ...hosts,
      "      </source>",
      "      <target dev='vda' bus='virtio'/>",
      "    </disk>",
    ];
  }
  const path = fileImagePath(config);
  return [
    "    <disk type='file' device='disk'>",
    `      <driver name='qemu' type='${fileImageFormat(path)}' cache='none' discard='unmap'/>`,
    `      <source file='${e(path)}'/>`,
    "      <target dev='vda' bus='virtio'/>",
    "    </disk>",
  ];
}

/** Where the node running the MN-VM keeps its serial console output. */
export function serialLogPath(domainName: string): string {
  return `/var/log/libvirt/qemu/${domainName}-serial.log`;
}

/** The complete domain XML for the MN-VM starting on `input.node`. */
export function buildDomainXml(input: DomainXmlInput): string {
  const { config, clusterId } = input;
  const e = xmlEscape;
  const nics = config.Network.flatMap((nic) => [
    "    <interface type='bridge'>",
    `      <mac address='${e(nic.MacAddress.toLowerCase())}'/>`,
    `      <source bridge='${e(nic.Bridge)}'/>`,
    "      <model type='virtio'/>",
    "    </interface>",
  ]);
  const lines = [
    `<domain type='${e(config.DomainType)}'>`,
    `  <name>${e(config.DomainName)}</name>`,
    `  <uuid>${e(domainUuid(clusterId, config.DomainName))}</uuid>`,
    "  <title>zsha MN-VM</title>",
    "  <metadata>",
    "    <zsha:mnvm xmlns:zsha='urn:zsha:mnvm:1'>",
    `      <zsha:cluster>${e(clusterId)}</zsha:cluster>`,
    // Whose per-node network the seed carries; still true after a live migration (the guest keeps it).
    `      <zsha:seed-node>${e(input.node)}</zsha:seed-node>`,
    "    </zsha:mnvm>",
    "  </metadata>",
    `  <memory unit='GiB'>${e(config.MemorySizeInGB)}</memory>`,
    `  <currentMemory unit='GiB'>${e(config.MemorySizeInGB)}</currentMemory>`,
    `  <vcpu placement='static'>${e(config.CPU)}</vcpu>`,
    "  <os>",
    "    <type arch='x86_64' machine='q35'>hvm</type>",
    "    <boot dev='hd'/>",
    "  </os>",
    "  <features>",
    "    <acpi/>",
    "    <apic/>",
    "  </features>",
    ...(config.DomainType === "kvm" ? ["  <cpu mode='host-model'/>"] : []),
    "  <clock offset='utc'/>",
    "  <on_poweroff>destroy</on_poweroff>",
    "  <on_reboot>restart</on_reboot>",
    "  <on_crash>destroy</on_crash>",
    "  <devices>",
    ...rootDisk(config, clusterId),
    "    <disk type='file' device='cdrom'>",
    "      <driver name='qemu' type='raw'/>",
    `      <source file='${e(input.seedIsoPath)}'/>`,
    "      <target dev='sda' bus='sata'/>",
    "      <readonly/>",
    "    </disk>",
    ...nics,
    "    <channel type='unix'>",
    "      <target type='virtio' name='org.qemu.guest_agent.0'/>",
    "    </channel>",
    "    <serial type='pty'>",
    // The MN-VM's console, also kept in a file on the node it runs on (post-mortem; collect-log).
    `      <log file='${e(serialLogPath(config.DomainName))}' append='on'/>`,
    "      <target port='0'/>",
    "    </serial>",
    "    <console type='pty'>",
    "      <target type='serial' port='0'/>",
    "    </console>",
    "    <rng model='virtio'>",
    "      <backend model='random'>/dev/urandom</backend>",
    "    </rng>",
    "  </devices>",
    "</domain>",
  ];
  return `${lines.join("\n")}\n`;
}
