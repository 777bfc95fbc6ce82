/**
 * The harness's hosts made into what `zsha install` expects of HCI nodes (SPEC §1): sshd with a root
 * password, libvirtd, the MN-VM's bridge with carrier, the Ceph client with the admin key; plus the
 * config for them and ways to run zsha on a host — the checkout's (to install from) or the installed one.
 */
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type PackageInfo, packageSelf } from "../../../src/install/package.js";
import { installCephClient, type SwitchCeph } from "./ceph.js";
import type { Hosts, RunResult } from "./hosts.js";
import { addBridge, setupLibvirtd } from "./libvirt.js";

export const PASSWORD = "zsha-e2e-root";
export const BRIDGE = "br-mgmt";
export const CONFIG_PATH = "/root/zsha.config.json";

/** Makes host `h` an HCI node as the operator would before `zsha install` (also after a wipe). */
export async function prepareNode(hosts: Hosts, ceph: SwitchCeph, h: string): Promise<void> {
  await hosts.sshd(h, PASSWORD);
  await addBridge(hosts, h, BRIDGE);
  await installCephClient(hosts, h, ceph);
  await setupLibvirtd(hosts, h);
}

/** A CephConf config for the harness's hosts; the MN-VM is the tiny TCG guest's image. */
export function e2eConfig(hosts: Hosts, ceph: SwitchCeph, over: Record<string, unknown> = {}): string {
  const config = {
    Node: hosts.names().map((h) => `${hosts.ip(h)} ${h}`),
    MemorySizeInGB: 8,
    CPU: 4,
    Type: "CephConf",
    MonAddrs: [ceph.monAddr],
    ChronyServers: [hosts.switchIp],
    PoolName: "zstack",
    DNS: [hosts.switchIp],
    Network: [
      {
        Bridge: BRIDGE,
        MacAddress: "52:54:00:7a:00:01",
        Ipaddr: "10.78.0.10",
        Netmask: "255.255.255.0",
        Gateway: "10.78.0.1",
        IsMgmt: true,
        IsDefRoute: true,
      },
    ],
    DomainType: "qemu",
    ...over,
  };
  return `${JSON.stringify(config, null, 2)}\n`;
}

export async function writeConfig(hosts: Hosts, h: string, text: string, path = CONFIG_PATH): Promise<void> {
  await hosts.exec(h, ["sh", "-ec", `cat > ${path}`], { input: text });
}

/**
 * zsha as an operator brings it to the first node: the package (`packageSelf`, built once per run from this
 * checkout) unpacked in /root/zsha-pkg on host `h`, then run from there. The checkout itself may not be
 * visible inside a host (a clone under /tmp is hidden by the host's own /tmp), and should not need to be.
 */
export async function zshaDev(
  hosts: Hosts,
  h: string,
  args: readonly string[],
  timeoutMs = 900_000,
): Promise<RunResult> {
  await stagePackage(hosts, h);
  return hosts.exec(h, [`${PKG_DIR}/bin/zsha`, ...args], { reject: false, timeoutMs });
}

const PKG_DIR = "/root/zsha-pkg";
let built: Promise<PackageInfo> | undefined;

async function stagePackage(hosts: Hosts, h: string): Promise<void> {
  const there = await hosts.exec(h, ["test", "-x", `${PKG_DIR}/bin/zsha`], { reject: false });
  if (there.exitCode === 0) return;
  built ??= packageSelf({ outDir: join(tmpdir(), "zsha-e2e-packages") });
  const pkg = await built;
  await hosts.exec(
    h,
    [
      "sh",
      "-ec",
      `rm -rf ${PKG_DIR}; mkdir -p ${PKG_DIR}; base64 -d | tar -xz -C ${PKG_DIR} --strip-components=1`,
    ],
    { input: (await readFile(pkg.tarball)).toString("base64"), timeoutMs: 300_000 },
  );
}

/** The installed zsha on host `h`. */
export function zsha(
  hosts: Hosts,
  h: string,
  args: readonly string[],
  timeoutMs = 120_000,
): Promise<RunResult> {
  return hosts.exec(h, ["/usr/local/bin/zsha", ...args], { reject: false, timeoutMs });
}

export interface StatusJson {
  mnvm: { owner: string | null; state: string; epoch: number; restartPending: boolean };
  members: { name: string; alive: boolean; role: string }[];
  nodes: {
    name: string;
    mnvm: string;
    maintenance: string | null;
    reporting: boolean;
    hypervisor: { ok: boolean } | null;
    image: { ok: boolean } | null;
  }[];
  leader: string;
  history: { atMs: number; node: string; epoch: number; kind: string; reason: string }[];
}

export async function statusOn(hosts: Hosts, h: string): Promise<StatusJson> {
  const r = await zsha(hosts, h, ["status", "--json"]);
  if (r.exitCode !== 0) throw new Error(`zsha status on ${h}: ${r.stderr.trim()}`);
  return JSON.parse(r.stdout) as StatusJson;
}

/** What zsha left on host `h`: the paths of an installed zsha that exist there. */
export async function zshaTraces(hosts: Hosts, h: string): Promise<string[]> {
  const paths = [
    "/opt/zsha",
    "/etc/zsha",
    "/var/lib/zsha",
    "/usr/local/bin/zsha",
    "/etc/systemd/system/zsha.service",
    "/etc/ceph/ceph.client.zsha.keyring",
  ];
  const r = await hosts.exec(h, [
    "sh",
    "-c",
    `${paths.map((p) => `[ -e ${p} ] && echo ${p}`).join("; ")}; true`,
  ]);
  return r.stdout.split("\n").filter(Boolean);
}
