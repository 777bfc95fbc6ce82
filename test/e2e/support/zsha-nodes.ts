/**
 * The harness's hosts made into what `zsha install` expects of HCI nodes (SPEC §1): sshd with a root
 * password, libvirtd, the MN-VM's bridge with carrier, the Ceph client with the admin key; plus the
 * config for them and ways to run zsha on a host — the checkout's (to install from) or the installed one.
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { installCephClient, type SwitchCeph } from "./ceph.js";
import type { Hosts, RunResult } from "./hosts.js";
import { addBridge, setupLibvirtd } from "./libvirt.js";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
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

/** The checkout's zsha, run on host `h` (the repo is visible there: hosts overlay only system trees). */
export function zshaDev(
  hosts: Hosts,
  h: string,
  args: readonly string[],
  timeoutMs = 900_000,
): Promise<RunResult> {
  return hosts.exec(h, [join(ROOT, "node_modules/.bin/tsx"), join(ROOT, "cmd/zsha.ts"), ...args], {
    reject: false,
    timeoutMs,
  });
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
    paths.map((p) => `[ -e ${p} ] && echo ${p}`).join("; ") + "; true",
  ]);
  return r.stdout.split("\n").filter(Boolean);
}
