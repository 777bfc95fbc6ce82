// The shell run on the nodes over SSH: short POSIX sh, one job each, every path from layout.ts. Output meant
// for the installer is `key=value` lines; base64 carries file contents.
import { AUTHORIZED_KEY_TAG, LAYOUT as L } from "./layout.js";
import { sq } from "./ssh.js";

/** What a node has now: identity, an earlier zsha, the cluster secrets it holds. */
export const SURVEY = `
echo "hostname=$(hostname)"
echo "arch=$(uname -m)"
[ -d /run/systemd/system ] && echo systemd=1
command -v nft >/dev/null 2>&1 && echo nft=1
command -v virsh >/dev/null 2>&1 && echo virsh=1
command -v rbd >/dev/null 2>&1 && echo rbd=1
command -v chronyc >/dev/null 2>&1 && echo chrony=1
[ -f ${L.nodeFile} ] && echo "nodefile=$(base64 -w0 ${L.nodeFile})"
[ -f ${L.prefix}/PACKAGE.sha256 ] && echo "package=$(cat ${L.prefix}/PACKAGE.sha256)"
systemctl is-active --quiet zsha 2>/dev/null && echo active=1
[ -f ${L.tlsDir}/ca.key ] && echo "cakey=$(base64 -w0 ${L.tlsDir}/ca.key)" && echo "cacert=$(base64 -w0 ${L.tlsDir}/ca.crt)"
[ -f ${L.sshKey} ] && echo "sshkey=$(base64 -w0 ${L.sshKey})" && echo "sshpub=$(base64 -w0 ${L.sshKey}.pub)"
[ -n "$(ls -A ${L.dataDir} 2>/dev/null)" ] && echo data=1
true
`;

export function parseKv(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split("\n")) {
    const i = line.indexOf("=");
    if (i > 0) m.set(line.slice(0, i), line.slice(i + 1));
  }
  return m;
}

/** Each bridge: exists, is a bridge, has carrier. Prints `bridge=NAME:ok|missing|not-a-bridge|no-carrier`. */
export function bridgesScript(bridges: readonly string[]): string {
  return bridges
    .map(
      (b) => `if [ ! -e /sys/class/net/${b} ]; then echo "bridge=${b}:missing"
elif [ ! -d /sys/class/net/${b}/bridge ]; then echo "bridge=${b}:not-a-bridge"
elif [ "$(cat /sys/class/net/${b}/carrier 2>/dev/null)" != 1 ]; then echo "bridge=${b}:no-carrier"
else echo "bridge=${b}:ok"; fi`,
    )
    .join("\n");
}

export const LIBVIRT_VERSION = "timeout 90 virsh -c qemu:///system version --daemon";

/** Installs the uploaded package unless the node has this exact one; prints `package=same|installed`. */
export function installPackageScript(upload: string, sha: string): string {
  const p = L.prefix;
  return `set -e
if [ "$(cat ${p}/PACKAGE.sha256 2>/dev/null)" = ${sha} ]; then echo package=same; rm -f ${upload}; exit 0; fi
rm -rf ${p}.new ${p}.old; mkdir -p ${p}.new
tar -xzf ${upload} -C ${p}.new --strip-components=1
echo ${sha} > ${p}.new/PACKAGE.sha256
[ -d ${p} ] && mv ${p} ${p}.old
mv ${p}.new ${p}
rm -rf ${p}.old ${upload}
mkdir -p ${L.binLink.slice(0, L.binLink.lastIndexOf("/"))}
ln -sfn ${p}/bin/zsha ${L.binLink}
echo package=installed`;
}

/** Installs the units and completion shipped in the package, and loads the firewall rules. */
export const INSTALL_UNITS = `set -e
install -m 0644 ${L.prefix}/app/deploy/systemd/zsha.service ${L.unit}
install -m 0644 ${L.prefix}/app/deploy/systemd/zsha-firewall.service ${L.firewallUnit}
mkdir -p ${L.completion.slice(0, L.completion.lastIndexOf("/"))}
install -m 0644 ${L.prefix}/app/deploy/zsha.bash-completion ${L.completion}
nft -c -f ${L.firewallRules}
systemctl daemon-reload
systemctl enable --quiet zsha-firewall.service zsha.service
systemctl restart zsha-firewall.service`;

/** The agent port (TCP and UDP) open to the cluster's nodes (and this node's own loopback), closed to everyone else. */
export function firewallRules(peerPort: number, nodeIps: readonly string[]): string {
  return `# zsha (written by zsha install): the agent port ${peerPort} (TCP: gRPC; UDP: lease renewals)
# answers the cluster's nodes only.
table inet zsha {
  set nodes {
    type ipv4_addr
    elements = { ${nodeIps.join(", ")} }
  }
  chain input {
    type filter hook input priority -10; policy accept;
    meta l4proto { tcp, udp } th dport ${peerPort} iifname "lo" accept
    meta l4proto { tcp, udp } th dport ${peerPort} ip saddr @nodes accept
    meta l4proto { tcp, udp } th dport ${peerPort} counter drop
  }
}
`;
}

/** Root's authorized_keys with our one line (restricted to the nodes' addresses) replacing any earlier one. */
export function authorizeKeyScript(publicKey: string, nodeIps: readonly string[]): string {
  const line = `from="${nodeIps.join(",")}" ${publicKey.split(" ").slice(0, 2).join(" ")} ${AUTHORIZED_KEY_TAG}`;
  return `set -e; umask 077; mkdir -p /root/.ssh; touch ${L.authorizedKeys}
grep -v ' ${AUTHORIZED_KEY_TAG}$' ${L.authorizedKeys} > ${L.authorizedKeys}.zsha-tmp || true
echo ${sq(line)} >> ${L.authorizedKeys}.zsha-tmp
mv -f ${L.authorizedKeys}.zsha-tmp ${L.authorizedKeys}`;
}

/** libvirt's copy of client.zsha's key, under the UUID the MN-VM's disk XML names. */
export function libvirtSecretScript(uuid: string, keyBase64: string): string {
  const xml = `<secret ephemeral='no' private='yes'><uuid>${uuid}</uuid><usage type='ceph'><name>client.zsha secret</name></usage></secret>`;
  return `set -e; f=$(mktemp); echo ${sq(xml)} > $f
virsh -q -c qemu:///system secret-define $f >/dev/null; rm -f $f
virsh -q -c qemu:///system secret-set-value ${uuid} --base64 ${sq(keyBase64)} >/dev/null 2>&1 ||
  { k=$(mktemp); printf %s ${sq(keyBase64)} | base64 -d > $k; virsh -q -c qemu:///system secret-set-value ${uuid} --file $k --plain >/dev/null; rm -f $k; }`;
}

/** Chrony told to use the config's servers (never this node itself); prints `chrony=configured|absent`. */
export function chronyScript(servers: readonly string[]): string {
  const lines = servers.map((s) => `server ${s} iburst`).join("\\n");
  return `if ! command -v chronyc >/dev/null 2>&1; then echo chrony=absent; exit 0; fi
mkdir -p ${L.chronySources.slice(0, L.chronySources.lastIndexOf("/"))}
printf '${lines}\\n' > ${L.chronySources}
chronyc reload sources >/dev/null 2>&1 || systemctl try-restart chrony >/dev/null 2>&1 || true
echo chrony=configured`;
}

/** Everything install put on a node, gone (data included); the MN-VM's image in Ceph is not touched. */
export function removeScript(secretUuid: string | undefined): string {
  return `systemctl disable --now --quiet zsha.service zsha-firewall.service 2>/dev/null
nft delete table inet zsha 2>/dev/null
rm -f ${L.unit} ${L.firewallUnit}; systemctl daemon-reload 2>/dev/null
${secretUuid ? `virsh -q -c qemu:///system secret-undefine ${secretUuid} >/dev/null 2>&1` : ""}
rm -rf ${L.prefix} ${L.prefix}.new ${L.prefix}.old ${L.etc} ${L.dataDir} ${L.binLink} ${L.completion} ${L.cephKeyring} ${L.chronySources}
[ -f ${L.authorizedKeys} ] && sed -i '/ ${AUTHORIZED_KEY_TAG}$/d' ${L.authorizedKeys}
true`;
}
