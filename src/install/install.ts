// `zsha install -p PASSWORD -c CONFIG` (SPEC §3): from one node, install or update zsha on every node of the
// config over SSH. Three phases, so a failure leaves something an operator can reason about:
//   1. look (no change anywhere): SSH, the node's identity, libvirtd, bridges, the MN-VM image;
//   2. change: Ceph key, program, secrets, config, units, firewall; then start the agents;
//   3. the cluster: Raft formed (or the replaced node re-joined), config stored, the MN-VM running.
// A first install that fails in phase 2 or 3 is rolled back on every node (no half-started cluster); an
// update that fails stops where it is, with the cluster whole, and says which nodes were updated.
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { type Config, checkConfigText, formatCheck } from "../config/index.js";
import { cephSecretUuid } from "../hypervisor/domain-xml.js";
import { createCa, createSshKey, issueNodeCert, type Pem } from "./certs.js";
import { cephUser, waitCluster, zshaOn } from "./cluster-ops.js";
import { HostKeys } from "./host-keys.js";
import { LAYOUT as L } from "./layout.js";
import { nodeFileFor } from "./node-file.js";
import { packageSelf } from "./package.js";
import {
  authorizeKeyScript,
  bridgesScript,
  chronyScript,
  firewallRules,
  INSTALL_UNITS,
  installPackageScript,
  LIBVIRT_VERSION,
  libvirtSecretScript,
  parseKv,
  removeScript,
  SURVEY,
} from "./remote.js";
import { Report, StepFailed } from "./report.js";
import { SshSession, sq } from "./ssh.js";

export interface InstallOptions {
  readonly password: string;
  readonly configPath: string;
  readonly json: boolean;
  /** Nodes the operator says were replaced: their new SSH host keys are accepted. */
  readonly replaced: readonly string[];
  readonly out: (line: string) => void;
  /** How long to wait for the MN-VM to run after a first install (0: do not wait). */
  readonly mnvmWaitMs?: number;
}

export interface NodeRef {
  readonly name: string;
  readonly ip: string;
}

interface Node extends NodeRef {
  ssh?: SshSession;
  survey: Map<string, string>;
  clusterId?: string;
  /** Installed and holding Raft data: a member of the cluster. */
  member: boolean;
}

export function nodesOf(config: Config): Node[] {
  return config.Node.map((entry) => {
    const [ip, name] = entry.trim().split(/\s+/) as [string, string];
    return { ip, name, survey: new Map(), member: false };
  });
}

type Plan = { kind: "fresh" } | { kind: "update"; clusterId: string; rejoin: Node[] };

export async function runInstall(o: InstallOptions): Promise<number> {
  let text: string;
  try {
    text = readFileSync(o.configPath, "utf8");
  } catch (e) {
    o.out(`zsha: cannot read ${o.configPath}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    return 1;
  }
  const checked = checkConfigText(text);
  if (!checked.ok) {
    for (const l of formatCheck(checked).split("\n")) o.out(l);
    o.out(`zsha: install: ${o.configPath} is not valid; nothing was changed`);
    return 1;
  }
  const config = checked.config;
  const nodes = nodesOf(config);
  const unknown = o.replaced.filter((r) => !nodes.some((n) => n.name === r || n.ip === r));
  if (unknown.length > 0) {
    o.out(
      `zsha: install: --replaced ${unknown.join(", ")}: not a node of ${o.configPath}; nothing was changed`,
    );
    return 1;
  }
  const report = new Report(o.out, o.json);
  const installer = new Installer(config, text, nodes, o, report);
  let ok = false;
  let error: string | undefined;
  try {
    await installer.run();
    ok = true;
  } catch (e) {
    error = e instanceof StepFailed ? e.message : (e as Error).message;
  } finally {
    for (const n of nodes) n.ssh?.close();
  }
  if (o.json) {
    o.out(report.toJson({ ok, error: error ?? null, clusterId: installer.clusterId ?? null }));
  } else if (ok) {
    o.out(
      `zsha install: done in ${(report.elapsedMs() / 1000).toFixed(1)} s; the root password is no longer needed`,
    );
  } else {
    o.out(`zsha install failed: ${error}`);
    o.out(
      report.changes.length === 0
        ? "nothing was changed on any node"
        : `changes made: ${report.changes.join("; ")}`,
    );
  }
  return ok ? 0 : 1;
}

class Installer {
  clusterId: string | undefined;
  private ca: Pem | undefined;
  private sshKey: { privateKey: string; publicKey: string } | undefined;
  private cephKey: string | undefined;
  private createdCephUser = false;
  /** Nodes where phase 2 began (for rollback of a first install). */
  private readonly touched = new Set<Node>();

  constructor(
    private readonly config: Config,
    private readonly configText: string,
    private readonly nodes: Node[],
    private readonly o: InstallOptions,
    private readonly report: Report,
  ) {}

  async run(): Promise<void> {
    const plan = await this.look();
    const first = plan.kind === "fresh";
    try {
      await this.change(plan);
      await this.form(plan);
    } catch (e) {
      if (first && this.touched.size > 0) await this.rollback();
      throw e;
    }
  }

  // ---- phase 1: look, change nothing ----

  private async look(): Promise<Plan> {
    const hostKeys = HostKeys.load(L.knownHosts);
    const replaced = (n: Node) => this.o.replaced.includes(n.name) || this.o.replaced.includes(n.ip);
    await this.each(this.nodes, async (n) => {
      await this.report.step(n, "ssh", async () => {
        n.ssh = await SshSession.connect({ host: n.ip, password: this.o.password }, (fp) =>
          hostKeys.check(n.ip, n.name, fp, replaced(n)),
        );
        return `root@${n.ip}, host key ${n.ssh.hostKey.slice(0, 19)}…`;
      });
    });
    this.hostKeysText = hostKeys.text();
    await this.each(this.nodes, (n) => this.checkHost(n));
    const plan = this.plan();
    await this.each(this.nodes, (n) => this.checkLibvirtAndBridges(n));
    await this.checkImage();
    this.report.say(
      plan.kind === "fresh"
        ? `plan: first install of a ${this.nodes.length}-node cluster`
        : `plan: update cluster ${plan.clusterId} in place${
            plan.rejoin.length ? `; re-join ${plan.rejoin.map((n) => n.name).join(", ")}` : ""
          }`,
    );
    return plan;
  }

  hostKeysText = "";

  private async checkHost(n: Node): Promise<void> {
    await this.report.step(n, "host", async () => {
      n.survey = parseKv(await n.ssh!.run(SURVEY));
      const s = n.survey;
      const problems: string[] = [];
      if (s.get("hostname") !== n.name)
        problems.push(`its hostname is '${s.get("hostname")}', the config names it '${n.name}'`);
      const arch = process.arch === "x64" ? "x86_64" : process.arch === "arm64" ? "aarch64" : process.arch;
      if (s.get("arch") !== arch) problems.push(`it is ${s.get("arch")}, this program is built for ${arch}`);
      if (!s.has("systemd")) problems.push("systemd is not running (zsha runs as a systemd service)");
      if (!s.has("nft")) problems.push("nft is missing (apt-get install nftables)");
      if (!s.has("virsh")) problems.push("virsh is missing (apt-get install libvirt-clients)");
      if (this.config.Type === "CephConf" && !s.has("rbd"))
        problems.push("rbd is missing (apt-get install ceph-common)");
      if (problems.length > 0) throw new Error(problems.join("; "));
      const nf = s.get("nodefile");
      if (nf) {
        const parsed = JSON.parse(Buffer.from(nf, "base64").toString("utf8")) as { clusterId?: string };
        n.clusterId = parsed.clusterId;
        n.member = s.has("data");
      }
      return n.clusterId
        ? `${s.get("arch")}, zsha installed (cluster ${n.clusterId}${n.member ? "" : ", no data"})`
        : `${s.get("arch")}, systemd, no zsha yet`;
    });
  }

  private plan(): Plan {
    const ids = new Set(this.nodes.flatMap((n) => (n.clusterId && n.member ? [n.clusterId] : [])));
    if (ids.size > 1) {
      throw new Error(
        `the nodes belong to different zsha clusters (${[...ids].join(", ")}): uninstall the stray ones first`,
      );
    }
    const [clusterId] = [...ids];
    if (clusterId === undefined) return { kind: "fresh" };
    const members = this.nodes.filter((n) => n.member && n.clusterId === clusterId);
    const rejoin = this.nodes.filter((n) => !members.includes(n));
    if (members.length * 2 <= this.nodes.length) {
      throw new Error(
        `only ${members.map((n) => n.name).join(", ") || "no node"} of ${this.nodes.length} still hold cluster ` +
          `${clusterId}'s data: a majority is needed to re-join the others (uninstall and install afresh)`,
      );
    }
    const nf = JSON.parse(Buffer.from(members[0]!.survey.get("nodefile")!, "base64").toString("utf8")) as {
      initialCluster?: Record<string, string>;
    };
    const installed = Object.keys(nf.initialCluster ?? {}).sort();
    const wanted = this.nodes.map((n) => n.name).sort();
    if (installed.join(",") !== wanted.join(",")) {
      throw new Error(
        `the config's Node list (${wanted.join(", ")}) differs from the installed cluster's ` +
          `(${installed.join(", ")}): install keeps the members; replace a node under the same name and IP`,
      );
    }
    this.clusterId = clusterId;
    return { kind: "update", clusterId, rejoin };
  }

  private async checkLibvirtAndBridges(n: Node): Promise<void> {
    await this.report.step(n, "libvirtd", async () => {
      const r = await n.ssh!.exec(LIBVIRT_VERSION, { timeoutMs: 120_000 });
      if (r.code !== 0) throw new Error(`libvirtd does not answer at qemu:///system: ${lastLine(r.stderr)}`);
      return lastLine(r.stdout.split("\n").find((l) => /daemon/i.test(l)) ?? r.stdout);
    });
    const bridges = [...new Set(this.config.Network.map((nic) => nic.Bridge))];
    await this.report.step(n, "bridges", async () => {
      const lines = (await n.ssh!.run(bridgesScript(bridges))).trim().split("\n");
      const bad = lines.map((l) => l.slice("bridge=".length)).filter((l) => !l.endsWith(":ok"));
      if (bad.length > 0) {
        throw new Error(
          bad
            .map((b) => {
              const [name, why] = b.split(":");
              return why === "missing"
                ? `bridge ${name} does not exist`
                : why === "no-carrier"
                  ? `bridge ${name} has no link (carrier)`
                  : `${name} is not a bridge`;
            })
            .join("; "),
        );
      }
      return `${bridges.join(", ")} up with carrier`;
    });
  }

  private async checkImage(): Promise<void> {
    const c = this.config;
    if (c.Type === "FileConf") {
      await this.each(this.nodes, (n) =>
        this.report.step(n, "image", async () => {
          const path = `${c.ImageFolder}/${c.ImageName}`;
          const r = await n.ssh!.exec(`test -r ${sq(path)} && stat -c %s ${sq(path)}`);
          if (r.code !== 0) throw new Error(`the MN-VM image ${path} is missing or unreadable here`);
          return `${path}, ${r.stdout.trim()} bytes`;
        }),
      );
      return;
    }
    const n = this.nodes[0]!;
    await this.report.step(n, "image", async () => {
      const spec = `${c.PoolName}/${c.ImageName}`;
      const r = await n.ssh!.exec(
        `timeout 60 rbd -m ${sq(c.MonAddrs!.join(","))} info ${sq(spec)} --format json`,
        { timeoutMs: 90_000 },
      );
      if (r.code !== 0) {
        const why = lastLine(r.stderr);
        throw new Error(
          /No such file|error opening image|\(2\)/.test(why)
            ? `the MN-VM image ${spec} does not exist in Ceph (import it first: qemu-img convert -O raw … rbd:${spec})`
            : `cannot read the MN-VM image ${spec} with this node's Ceph admin key: ${why}`,
        );
      }
      const info = JSON.parse(r.stdout) as { size: number };
      return `rbd ${spec}, ${(info.size / 2 ** 30).toFixed(info.size < 2 ** 30 ? 3 : 1)} GiB`;
    });
  }

  // ---- phase 2: change ----

  private async change(plan: Plan): Promise<void> {
    this.clusterId ??= randomUUID();
    const donor = this.nodes.find((n) => n.survey.has("cakey") && n.clusterId === this.clusterId);
    if (plan.kind === "update" && donor) {
      this.ca = {
        key: b64(donor.survey.get("cakey")!),
        cert: b64(donor.survey.get("cacert")!),
      };
      if (donor.survey.has("sshkey"))
        this.sshKey = {
          privateKey: b64(donor.survey.get("sshkey")!),
          publicKey: b64(donor.survey.get("sshpub")!),
        };
    }
    this.ca ??= await createCa(this.clusterId);
    this.sshKey ??= await createSshKey(`zsha-${this.clusterId}`);
    const first = this.nodes[0]!;
    const pkg = await this.report.step(first, "package", async () => {
      const p = await packageSelf({ outDir: "/var/tmp/zsha-packages" });
      return {
        value: p,
        detail: `zsha ${p.version} (${p.commit.slice(0, 8)}), ${(p.bytes / 2 ** 20).toFixed(1)} MiB`,
      };
    });
    if (this.config.Type === "CephConf") await this.cephKeyOn(first);
    if (plan.kind === "fresh") {
      await this.each(this.nodes, (n) => this.installNode(n, pkg!, false));
      await this.each(this.nodes, (n) => this.startNode(n));
      return;
    }
    // An update: global maintenance freezes HA while the agents restart one by one (SPEC §3), so a
    // restarting owner is neither failed over nor fenced.
    const live = this.nodes.find((n) => n.member)!;
    await this.report.step(live, "freeze HA", async () => {
      await zshaOn(live.ssh!, "maintenance global enable");
      return "global maintenance on while agents restart";
    });
    for (const n of this.nodes.filter((m) => m.member)) {
      await this.installNode(n, pkg!, false);
      await this.startNode(n);
      await waitCluster(
        this.report,
        n,
        this.nodes.filter((m) => m.member),
        60_000,
      );
    }
    for (const n of plan.rejoin) await this.rejoin(n, live, pkg!);
  }

  private async cephKeyOn(n: Node): Promise<void> {
    const pool = this.config.PoolName!;
    const key = await this.report.step(n, "ceph key", async () => {
      const r = await cephUser(n.ssh!, this.config.MonAddrs!, pool);
      this.createdCephUser = r.created;
      if (r.created) this.report.changed("created Ceph user client.zsha");
      return {
        value: r.key,
        detail: `client.zsha ${r.created ? "created" : "exists"}, profile rbd on ${pool}`,
      };
    });
    this.cephKey = key;
  }

  private async installNode(n: Node, pkg: { tarball: string; sha256: string }, join: boolean): Promise<void> {
    const ssh = n.ssh!;
    this.touched.add(n);
    const all = this.nodes.map((m) => m.ip);
    await this.report.step(n, "stop old", async () => {
      await ssh.run("systemctl stop zsha.service 2>/dev/null; true");
      if (!n.member && n.survey.has("data")) {
        await ssh.run(`rm -rf ${L.dataDir}`);
        return "stale data removed";
      }
      return n.survey.has("active") ? "agent stopped" : "nothing running";
    });
    await this.report.step(n, "program", async () => {
      if (n.survey.get("package") === pkg.sha256) return "up to date";
      const upload = `/var/tmp/zsha-package-${pkg.sha256.slice(0, 12)}.tar.gz`;
      await ssh.writeFile(upload, readFileSync(pkg.tarball), 0o600);
      const r = parseKv(await ssh.run(installPackageScript(upload, pkg.sha256)));
      this.report.changed(`${n.name}: program in ${L.prefix}`);
      return r.get("package") === "same" ? "up to date" : `installed in ${L.prefix}`;
    });
    await this.report.step(n, "secrets", async () => {
      const cert = await issueNodeCert(this.ca!, n.name, n.ip);
      await ssh.writeFile(`${L.tlsDir}/ca.crt`, this.ca!.cert);
      await ssh.writeFile(`${L.tlsDir}/ca.key`, this.ca!.key);
      await ssh.writeFile(`${L.tlsDir}/node.crt`, cert.cert);
      await ssh.writeFile(`${L.tlsDir}/node.key`, cert.key);
      await ssh.writeFile(L.sshKey, this.sshKey!.privateKey);
      await ssh.writeFile(`${L.sshKey}.pub`, `${this.sshKey!.publicKey}\n`, 0o644);
      await ssh.writeFile(L.knownHosts, this.hostKeysText);
      await ssh.run(authorizeKeyScript(this.sshKey!.publicKey, all));
      if (this.cephKey) {
        await ssh.writeFile(L.cephKeyring, `[client.zsha]\n\tkey = ${this.cephKey}\n`);
        await ssh.run(libvirtSecret(this.clusterId!, this.cephKey));
      }
      this.report.changed(`${n.name}: certificates, keys and keyring`);
      return `TLS cert for ${n.name}, cluster SSH key${this.cephKey ? ", client.zsha keyring + libvirt secret" : ""}`;
    });
    await this.report.step(n, "config", async () => {
      const nf = nodeFileFor(this.config, this.clusterId!, n, join);
      await ssh.writeFile(L.nodeFile, `${JSON.stringify(nf, null, 2)}\n`);
      await ssh.writeFile(L.firewallRules, firewallRules(this.config.PeerPort, all));
      await ssh.writeFile(L.installedConfig, this.configText);
      await ssh.run(INSTALL_UNITS);
      this.report.changed(`${n.name}: node file, systemd units, firewall`);
      return `node file, zsha.service, firewall (port ${this.config.PeerPort} from ${all.length} nodes only)`;
    });
    await this.report.step(n, "clock", async () => {
      const r = parseKv(
        await ssh.run(chronyScript(this.config.ChronyServers.filter((s) => s !== n.ip && s !== n.name))),
      );
      return r.get("chrony") === "configured"
        ? { detail: `chrony uses ${this.config.ChronyServers.join(", ")}` }
        : { detail: "chrony is not installed: clock sync not configured", warning: true };
    });
    if (this.config.Type === "CephConf") {
      await this.report.step(n, "image read", async () => {
        const c = this.config;
        const spec = `${c.PoolName}/${c.ImageName}`;
        const common = `--id zsha --keyring ${L.cephKeyring} -m ${sq(c.MonAddrs!.join(","))}`;
        const info = await ssh.exec(`timeout 60 rbd ${common} info ${sq(spec)} --format json`, {
          timeoutMs: 90_000,
        });
        if (info.code !== 0) throw new Error(`client.zsha cannot open ${spec}: ${lastLine(info.stderr)}`);
        const prefix = (JSON.parse(info.stdout) as { block_name_prefix: string }).block_name_prefix;
        const t = performance.now();
        const r = await ssh.exec(
          `timeout 60 rados ${common} -p ${sq(c.PoolName!)} get ${prefix}.0000000000000000 - | wc -c`,
          { timeoutMs: 90_000 },
        );
        if (r.code !== 0) throw new Error(`client.zsha cannot read ${spec}: ${lastLine(r.stderr)}`);
        return `read ${r.stdout.trim()} bytes of ${spec} with client.zsha in ${Math.round(performance.now() - t)} ms`;
      });
    }
  }

  private async startNode(n: Node): Promise<void> {
    await this.report.step(n, "start", async () => {
      await n.ssh!.run("systemctl restart zsha.service && systemctl is-active zsha.service");
      this.report.changed(`${n.name}: agent started`);
      return "zsha.service active";
    });
  }

  private async rejoin(n: Node, live: Node, pkg: { tarball: string; sha256: string }): Promise<void> {
    await this.report.step(n, "membership", async () => {
      const list = JSON.parse(await zshaOn(live.ssh!, "member list --json")) as {
        members: { name: string }[];
      };
      if (list.members.some((m) => m.name === n.name)) await zshaOn(live.ssh!, `member remove ${n.name}`);
      await zshaOn(live.ssh!, `member add ${n.name} ${n.ip}:${this.config.PeerPort}`);
      return `old ${n.name} removed, new one added as a learner`;
    });
    await this.installNode(n, pkg, true);
    await this.startNode(n);
    await this.report.step(n, "promote", async () => {
      const deadline = Date.now() + 120_000;
      for (;;) {
        const r = await live.ssh!.exec(`${L.binLink} member promote ${n.name}`);
        if (r.code === 0) return `${n.name} caught up and votes again`;
        if (Date.now() > deadline) throw new Error(`still not promoted after 120 s: ${lastLine(r.stderr)}`);
        await sleep(1000);
      }
    });
  }

  // ---- phase 3: the cluster ----

  private async form(plan: Plan): Promise<void> {
    const first = this.nodes[0]!;
    await waitCluster(this.report, first, this.nodes, 90_000);
    await this.report.step(first, "store config", async () => {
      await zshaOn(first.ssh!, `import-config ${L.installedConfig}`);
      return "config stored in the replicated KV";
    });
    if (plan.kind === "update") {
      await this.report.step(first, "unfreeze HA", async () => {
        await zshaOn(first.ssh!, "maintenance global disable");
        return "global maintenance off";
      });
    }
    const waitMs = this.o.mnvmWaitMs ?? 300_000;
    if (waitMs > 0) {
      await this.report.step(first, "MN-VM", async () => {
        const deadline = Date.now() + waitMs;
        let last = "";
        for (;;) {
          const r = await first.ssh!.exec(`${L.binLink} status --json`);
          if (r.code === 0) {
            const st = JSON.parse(r.stdout) as { mnvm: { owner: string | null; state: string } };
            last = `${st.mnvm.state}${st.mnvm.owner ? ` on ${st.mnvm.owner}` : ""}`;
            if (st.mnvm.state === "running" && st.mnvm.owner) return `running on ${st.mnvm.owner}`;
          } else last = lastLine(r.stderr);
          if (Date.now() > deadline)
            throw new Error(`the MN-VM is not running after ${waitMs / 1000} s (${last})`);
          await sleep(1000);
        }
      });
    }
  }

  private async rollback(): Promise<void> {
    this.report.say("rolling back: removing what this install put on the nodes");
    const uuid = this.clusterId ? cephSecretUuid(this.clusterId) : undefined;
    await Promise.all(
      [...this.touched].map((n) =>
        this.report
          .step(n, "rollback", async () => {
            await n.ssh!.run(removeScript(uuid));
            return "zsha removed";
          })
          .catch(() => undefined),
      ),
    );
    if (this.createdCephUser) {
      const n = this.nodes[0]!;
      await this.report
        .step(n, "rollback", async () => {
          await n.ssh!.run(`timeout 60 ceph -m ${sq(this.config.MonAddrs!.join(","))} auth del client.zsha`);
          return "Ceph user client.zsha deleted";
        })
        .catch(() => undefined);
    }
    this.report.changes.push("rolled back");
  }

  private async each(nodes: Node[], f: (n: Node) => Promise<unknown>): Promise<void> {
    const r = await Promise.allSettled(nodes.map(f));
    const failed = r.find((x): x is PromiseRejectedResult => x.status === "rejected");
    if (failed) throw failed.reason;
  }
}

function libvirtSecret(clusterId: string, key: string): string {
  return libvirtSecretScript(cephSecretUuid(clusterId), key);
}

const b64 = (s: string) => Buffer.from(s, "base64").toString("utf8");
const lastLine = (s: string) => s.trim().split("\n").pop()?.trim() ?? "";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
