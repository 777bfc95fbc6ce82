/**
 * Per-host services a zsha node expects: a real libvirtd (qemu driver, software emulation) running as the
 * host's own `libvirtd.service`, and Linux bridges with carrier for the MN-VM's NICs. Both are set up on
 * the host's disk as systemd units, so they come back when the host is powered on again, and are gone
 * when the host is wiped (a replaced node must be set up again, like a real one).
 */
import { randomUUID } from "node:crypto";
import type { Hosts } from "./hosts.js";
import { waitFor } from "./run.js";

export interface HostLibvirt {
  /** The URI on the host itself (the default one; the agent uses it). */
  readonly uri: "qemu:///system";
  /** How another host's libvirtd reaches this one (peer-to-peer migration). */
  readonly tcpUri: string;
}

/**
 * libvirt's distro unit (libvirt-daemon-system) is not installed on the test machine: we write our own
 * `libvirtd.service` on the host's disk, so units ordered `After=libvirtd.service` work as on a node.
 * Type=notify: `systemctl start` returns once libvirtd serves its sockets. KillMode=process: guests survive
 * a libvirtd restart, as with the distro unit.
 */
const UNIT = `[Unit]
Description=libvirt virtualization daemon (zsha e2e test host)
After=network.target

[Service]
Type=notify
ExecStart=/usr/sbin/libvirtd --listen
KillMode=process
Restart=on-failure
LimitNOFILE=8192

[Install]
WantedBy=multi-user.target
`;

/**
 * Configures and starts libvirtd on systemd-mode host `h`: a `libvirt-qemu` user on the host's disk (libvirt
 * 9 looks it up before reading qemu.conf), qemu as root without security driver, cgroups or virtlogd, a
 * distinct host UUID, TCP (no auth) on the host address and migration on that address. Resolves after the
 * first connection succeeded (the first one probes qemu's capabilities, ~9 s).
 */
export async function setupLibvirtd(hosts: Hosts, h: string): Promise<HostLibvirt> {
  if (hosts.init !== "systemd") throw new Error("libvirtd: needs hosts in systemd mode");
  const ip = hosts.ip(h);
  const libvirtdConf = [
    `host_uuid = "${randomUUID()}"`,
    "listen_tcp = 1",
    "listen_tls = 0",
    `listen_addr = "${ip}"`,
    `auth_tcp = "none"`,
    `auth_unix_rw = "none"`,
    `auth_unix_ro = "none"`,
    `log_outputs = "2:file:/var/log/libvirt/libvirtd.log"`,
    "",
  ].join("\n");
  const qemuConf = [
    `user = "root"`,
    `group = "root"`,
    `stdio_handler = "file"`,
    "cgroup_controllers = [ ]",
    `security_driver = "none"`,
    `migration_address = "${ip}"`,
    `migration_host = "${ip}"`,
    "",
  ].join("\n");
  await hosts.exec(h, [
    "sh",
    "-ec",
    "getent group libvirt-qemu >/dev/null || groupadd -r -g 64055 libvirt-qemu\n" +
      "getent passwd libvirt-qemu >/dev/null || " +
      "useradd -r -u 64055 -g libvirt-qemu -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu\n" +
      "mkdir -p /etc/libvirt /var/log/libvirt/qemu /var/lib/libvirt/qemu",
  ]);
  await hosts.exec(h, ["sh", "-ec", "cat > /etc/libvirt/libvirtd.conf"], { input: libvirtdConf });
  await hosts.exec(h, ["sh", "-ec", "cat > /etc/libvirt/qemu.conf"], { input: qemuConf });
  await hosts.exec(h, ["sh", "-ec", "cat > /etc/systemd/system/libvirtd.service"], { input: UNIT });
  await hosts.exec(h, ["systemctl", "daemon-reload"]);
  await hosts.exec(h, ["systemctl", "enable", "--now", "libvirtd.service"], { timeoutMs: 30_000 });
  await hosts.exec(h, ["virsh", "-c", "qemu:///system", "version"], { timeoutMs: 60_000 });
  return { uri: "qemu:///system", tcpUri: `qemu+tcp://${ip}/system` };
}

/**
 * A libvirt secret (usage ceph) on host `h` holding a Ceph key, for RBD disks with `<auth>`. Use the same
 * UUID on every host a guest may migrate to.
 */
export async function defineCephSecret(hosts: Hosts, h: string, uuid: string, key: string): Promise<void> {
  const xml = `<secret ephemeral='no' private='yes'><uuid>${uuid}</uuid><usage type='ceph'><name>zsha-e2e ${uuid}</name></usage></secret>`;
  await hosts.exec(h, ["sh", "-ec", 'f=$(mktemp); cat > "$f"; virsh -q secret-define "$f"; rm -f "$f"'], {
    input: xml,
  });
  await hosts.exec(h, ["virsh", "-q", "secret-set-value", uuid, "--base64", key]);
}

/**
 * A Linux bridge `name` with carrier on host `h` (a veth pair with one end enslaved: this kernel has no
 * dummy links), brought up by a oneshot unit on the host's disk so it is there again after a power cycle.
 */
export async function addBridge(hosts: Hosts, h: string, name: string): Promise<void> {
  if (!/^[a-zA-Z][a-zA-Z0-9_.-]{0,10}$/.test(name))
    throw new Error(
      `bridge: name must be 1–11 characters [A-Za-z0-9_.-] starting with a letter, got "${name}"`,
    );
  const [p, q] = [`${name}-zp`, `${name}-zq`];
  const up = [
    `ip link show ${name} >/dev/null 2>&1 || ip link add ${name} type bridge`,
    `ip link show ${p} >/dev/null 2>&1 || ip link add ${p} type veth peer name ${q}`,
    `ip link set ${p} master ${name} up`,
    `ip link set ${q} up`,
    `ip link set ${name} up`,
  ].join("; ");
  if (hosts.init === "systemd") {
    const unit = `[Unit]
Description=test bridge ${name} with carrier (zsha e2e)
Before=libvirtd.service network.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -ec '${up}'

[Install]
WantedBy=multi-user.target
`;
    await hosts.exec(h, ["sh", "-ec", `cat > /etc/systemd/system/zsha-e2e-bridge-${name}.service`], {
      input: unit,
    });
    await hosts.exec(h, ["systemctl", "daemon-reload"]);
    await hosts.exec(h, ["systemctl", "enable", "--now", `zsha-e2e-bridge-${name}.service`]);
  } else {
    await hosts.exec(h, ["sh", "-ec", up]);
  }
  await waitFor(
    `bridge ${name} on ${h} to get carrier`,
    async () => {
      const r = await hosts.exec(h, ["cat", `/sys/class/net/${name}/carrier`], { reject: false });
      return r.stdout.trim() === "1";
    },
    5_000,
  );
}
