// Where an installed zsha lives on a node: one place for every path the installer writes and the
// uninstaller removes, so the two cannot drift apart.

export const LAYOUT = {
  /** The program: bin/zsha, bin/node, app/ (see package.ts). */
  prefix: "/opt/zsha",
  /** `zsha` on root's PATH. */
  binLink: "/usr/local/bin/zsha",
  etc: "/etc/zsha",
  nodeFile: "/etc/zsha/node.json",
  tlsDir: "/etc/zsha/tls",
  /** The cluster's own SSH key: what zsha uses after install instead of the root password. */
  sshKey: "/etc/zsha/ssh/id_ed25519",
  /** Host key fingerprints of the nodes, recorded at the first install. */
  knownHosts: "/etc/zsha/known_hosts",
  firewallRules: "/etc/zsha/firewall.nft",
  /** The config file install stored in the KV (kept for the operator; the KV is the truth). */
  installedConfig: "/etc/zsha/install.config.json",
  dataDir: "/var/lib/zsha",
  logDir: "/var/log/z",
  unit: "/etc/systemd/system/zsha.service",
  firewallUnit: "/etc/systemd/system/zsha-firewall.service",
  completion: "/etc/bash_completion.d/zsha",
  cephKeyring: "/etc/ceph/ceph.client.zsha.keyring",
  chronySources: "/etc/chrony/sources.d/zsha.sources",
  authorizedKeys: "/root/.ssh/authorized_keys",
  clientSocket: "/run/zsha/zsha.sock",
  metricsListen: "127.0.0.1:9780",
} as const;

/** The comment that marks our line in root's authorized_keys, so uninstall removes exactly that line. */
export const AUTHORIZED_KEY_TAG = "zsha-cluster-key";
