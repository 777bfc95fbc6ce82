/**
 * The config file schema (SPEC §2): one source of truth for validation, defaults and samples.
 *
 * Field names are exactly those of the earlier Consul-based suite, so operators' files keep working.
 * This schema checks each field on its own (types, formats, ranges, unknown fields); rules that relate
 * several fields (uniqueness, exactly one mgmt NIC, per-node coverage, …) live in `rules.ts`, so that a
 * file with a bad field still gets every other problem reported.
 *
 * Our own optional fields (not in the earlier suite), all with defaults:
 * - `ImageName`    the MN-VM image: RBD image in `PoolName` (CephConf) or file in `ImageFolder` (FileConf).
 * - `DomainName`   the libvirt domain name of the MN-VM.
 * - `DomainType`   `kvm` on real nodes; `qemu` (software emulation) where nested KVM is unavailable.
 * - `PeerPort`     port the agents use between themselves (TCP: Raft, forwarding; UDP: lease renewals), on the `Node` IPs.
 * - `TLSDir`       folder holding the agents' CA, certificate and key.
 * - `Timing`       Raft tick and the lease timings of DESIGN.md ("the MN-VM lease").
 */

import { z } from "zod";
import {
  hostnameProblem,
  ifnameProblem,
  ipPortProblem,
  ipv4Problem,
  isIPv4,
  macProblem,
  netmaskProblem,
} from "./net.js";
import { isPerNodeText } from "./per-node.js";

/** A string refined by a function that returns the reason it is wrong. */
function checked(check: (text: string) => string | undefined) {
  return z.string().superRefine((text, ctx) => {
    const problem = check(text);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  });
}

/** A string that is either one value checked by `check`, or the per-node format (checked in rules.ts). */
function perNodeOr(check: (text: string) => string | undefined) {
  return checked((text) => (isPerNodeText(text) ? undefined : check(text.trim())));
}

function nodeEntryProblem(text: string): string | undefined {
  const parts = text.trim().split(/\s+/);
  if (parts.length !== 2) return `"${text}" is not of the form "<ipv4> <hostname>"`;
  return ipv4Problem(parts[0]!) ?? hostnameProblem(parts[1]!);
}

function ipOrHostnameProblem(text: string): string | undefined {
  return isIPv4(text) ? undefined : hostnameProblem(text);
}

function absolutePathProblem(text: string): string | undefined {
  if (!text.startsWith("/")) return `"${text}" is not an absolute path`;
  if (text.split("/").includes("..")) return `"${text}" must not contain ".."`;
  return undefined;
}

function imageNameProblem(text: string): string | undefined {
  return /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(text)
    ? undefined
    : `"${text}" is not a valid image name (letters, digits, '.', '_', '-'; no '/')`;
}

function domainNameProblem(text: string): string | undefined {
  return /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(text)
    ? undefined
    : `"${text}" is not a valid domain name (letters, digits, '.', '_', '-')`;
}

function poolNameProblem(text: string): string | undefined {
  return /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(text)
    ? undefined
    : `"${text}" is not a valid pool name (letters, digits, '.', '_', '-')`;
}

const int = (min: number, max: number, what: string) =>
  z
    .number({ error: `must be a number (${what})` })
    .int({ error: `must be a whole number (${what})` })
    .min(min, { error: `must be at least ${min} (${what})` })
    .max(max, { error: `must be at most ${max} (${what})` });

export const NicSchema = z.strictObject({
  Bridge: checked(ifnameProblem).describe(
    "Host bridge the NIC is plugged into; must exist with link on every node.",
  ),
  MacAddress: checked(macProblem).describe("Fixed MAC of the NIC, unique on the L2 network."),
  /** One IPv4, or per-node (`ip@host, …`) on the IsMgmt NIC. */
  Ipaddr: perNodeOr(ipv4Problem).describe("MN-VM IPv4 address; per node (ip@host, …) on the IsMgmt NIC."),
  Netmask: perNodeOr(netmaskProblem).describe("Netmask (a.b.c.d); per node on the IsMgmt NIC."),
  /** Empty or absent: no gateway (allowed except on the IsDefRoute NIC). */
  Gateway: perNodeOr((text) => (text === "" ? undefined : ipv4Problem(text)))
    .optional()
    .describe("Gateway; required on the IsDefRoute NIC, per node on the IsMgmt NIC."),
  IsMgmt: z.boolean({ error: "must be true or false" }).describe("The management NIC; exactly one."),
  IsDefRoute: z
    .boolean({ error: "must be true or false" })
    .describe("Carries the default route; exactly one."),
});

export const TimingSchema = z.strictObject({
  TickMs: int(10, 10_000, "Raft tick in milliseconds").default(100).describe("Raft tick."),
  NodeLeaseMs: int(500, 600_000, "node lease in milliseconds")
    .default(3000)
    .describe("A node not heard from this long is failed."),
  OwnerLeaseMs: int(500, 600_000, "MN-VM owner lease in milliseconds")
    .default(5000)
    .describe("The MN-VM owner's lease."),
  FenceMarginMs: int(100, 600_000, "self-fencing margin before the owner lease ends")
    .default(1000)
    .describe("The owner destroys its MN-VM this long before its lease could expire."),
  ShutdownTimeoutMs: int(1000, 3_600_000, "clean MN-VM shutdown wait in milliseconds")
    .default(60_000)
    .describe("zsha stop asks the MN-VM to shut down (ACPI) and destroys it after this long."),
});

export const ConfigSchema = z.strictObject({
  Node: z
    .array(checked(nodeEntryProblem), { error: 'must be a list of "<ipv4> <hostname>" strings' })
    .describe('Cluster nodes as "<ipv4> <hostname>": 3 or 5 (1 for the demo), unique IPs and names.'),
  MemorySizeInGB: int(8, 4096, "MN-VM memory in GiB, at least 8").describe("MN-VM memory in GiB (≥ 8)."),
  CPU: int(4, 512, "MN-VM vCPUs, at least 4").describe("MN-VM vCPUs (≥ 4)."),
  Type: z
    .enum(["CephConf", "FileConf"], { error: 'must be "CephConf" or "FileConf"' })
    .describe("Storage of the MN-VM image: an RBD image (CephConf) or a file in a shared folder (FileConf)."),
  MonAddrs: z
    .array(checked(ipPortProblem), { error: 'must be a list of "ip:port" strings' })
    .optional()
    .describe("Ceph monitors as ip:port (CephConf, required); may differ from the nodes."),
  ChronyServers: z
    .array(checked(ipOrHostnameProblem), { error: "must be a list of IPv4 addresses or host names" })
    .default([])
    .describe("Time sources (IPs or host names); a listed node syncs from the others, never from itself."),
  PoolName: checked(poolNameProblem)
    .optional()
    .describe("RBD pool holding the MN-VM image (CephConf, required)."),
  ImageFolder: checked(absolutePathProblem)
    .optional()
    .describe(
      "Absolute path: the shared folder holding the image (FileConf, required); local folder for image material otherwise.",
    ),
  DNS: z
    .array(checked(ipv4Problem), { error: "must be a list of IPv4 addresses" })
    .default([])
    .describe("DNS servers handed to the MN-VM."),
  Network: z.array(NicSchema, { error: "must be a list of NICs" }).describe("The MN-VM's NICs."),
  /** Empty or absent: not overridden. */
  ConsoleProxyOverriddenIP: perNodeOr((text) => (text === "" ? undefined : ipv4Problem(text)))
    .optional()
    .describe("Console proxy IPv4 for the management service; empty: not overridden; may be per node."),
  AllowResetRootPassword: z
    .boolean({ error: "must be true or false" })
    .default(false)
    .describe("Allows `zsha reset-MNVM-password`."),

  // Our own fields (see the header comment).
  ImageName: checked(imageNameProblem)
    .default("mnvm.img")
    .describe("(zsha) The image: RBD image in PoolName, or file in ImageFolder (.qcow2 names mean qcow2)."),
  DomainName: checked(domainNameProblem)
    .default("zsha-mnvm")
    .describe("(zsha) libvirt domain name of the MN-VM."),
  DomainType: z
    .enum(["kvm", "qemu"], { error: 'must be "kvm" or "qemu"' })
    .default("kvm")
    .describe("(zsha) kvm on real nodes; qemu (software emulation) where KVM is unavailable."),
  PeerPort: int(1, 65535, "agent peer port")
    .default(7780)
    .describe("(zsha) TCP port the agents use between themselves."),
  TLSDir: checked(absolutePathProblem)
    .default("/etc/zsha/tls")
    .describe("(zsha) Folder holding the agents' CA, certificate and key."),
  Timing: TimingSchema.prefault({}).describe("(zsha) Raft tick and lease timings in milliseconds."),
});

/** A config file as written (fields with defaults may be absent). */
export type ConfigInput = z.input<typeof ConfigSchema>;
/** A checked config, defaults applied: what the cluster stores in its KV and what `export-config` writes. */
export type Config = z.output<typeof ConfigSchema>;
export type Nic = z.output<typeof NicSchema>;
export type Timing = z.output<typeof TimingSchema>;

/** Top-level field names in the order of SPEC §2 then ours: the order samples and exports are written in. */
export const FIELD_ORDER = Object.keys(ConfigSchema.shape) as (keyof Config)[];
