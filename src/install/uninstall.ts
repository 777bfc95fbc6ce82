// `zsha uninstall --yes-i-really-really-mean-it` (SPEC §3): stop the MN-VM and zsha on every node and remove
// zsha; the MN-VM's image stays in Ceph. Reaches the nodes with the cluster's own SSH key (install put it
// there), so no password is needed. This node goes last: it runs the uninstall.
import { readFileSync } from "node:fs";
import type { Config } from "../config/index.js";
import { cephSecretUuid } from "../hypervisor/domain-xml.js";
import { HostKeys } from "./host-keys.js";
import { LAYOUT as L } from "./layout.js";
import { removeScript } from "./remote.js";
import { Report, StepFailed } from "./report.js";
import { SshSession, sq } from "./ssh.js";

export const UNINSTALL_WARNING =
  "zsha uninstall stops the MN-VM, removes zsha from every node and DESTROYS the MN-VM's libvirt definition " +
  "(its image stays in Ceph). Run `zsha uninstall --yes-i-really-really-mean-it` to do it; nothing was changed.";

export interface UninstallOptions {
  readonly json: boolean;
  readonly out: (line: string) => void;
  /** The cluster's config (from the KV), or undefined when no agent answers: then defaults are used. */
  readonly config: Config | undefined;
  /** Asks the cluster to shut the MN-VM down (zsha stop) and resolves when it is down or time is up. */
  readonly stopMnvm: () => Promise<string>;
}

interface NodeFileLite {
  name: string;
  clusterId: string;
  initialCluster: Record<string, string>;
}

export async function runUninstall(o: UninstallOptions): Promise<number> {
  let nf: NodeFileLite;
  try {
    nf = JSON.parse(readFileSync(L.nodeFile, "utf8")) as NodeFileLite;
  } catch {
    o.out(`zsha: zsha is not installed on this node (no ${L.nodeFile}); run uninstall on a cluster node`);
    return 1;
  }
  const report = new Report(o.out, o.json);
  const key = readFileSync(L.sshKey);
  const hostKeys = HostKeys.load(L.knownHosts);
  const nodes = Object.entries(nf.initialCluster).map(([name, addr]) => ({
    name,
    ip: addr.slice(0, addr.lastIndexOf(":")),
  }));
  // This node last: removing zsha here ends what could report on the others.
  nodes.sort((a, b) => Number(a.name === nf.name) - Number(b.name === nf.name));
  const domain = o.config?.DomainName ?? "zsha-mnvm";
  const secret = cephSecretUuid(nf.clusterId);
  const failures: string[] = [];
  const self = nodes.find((n) => n.name === nf.name) ?? nodes[nodes.length - 1]!;
  await report
    .step(self, "stop MN-VM", async () => o.stopMnvm())
    .catch((e: StepFailed) => failures.push(e.message));
  for (const n of nodes) {
    let ssh: SshSession | undefined;
    try {
      ssh = await report.step(n, "ssh", async () => {
        const s = await SshSession.connect({ host: n.ip, privateKey: key }, (fp) =>
          hostKeys.check(n.ip, n.name, fp, false),
        );
        return { value: s, detail: `root@${n.ip} with the cluster key` };
      });
      await report.step(n, "MN-VM domain", async () => {
        const r = await ssh!.exec(
          `virsh -q -c qemu:///system destroy ${sq(domain)} >/dev/null 2>&1; virsh -q -c qemu:///system undefine ${sq(domain)} --nvram >/dev/null 2>&1 || virsh -q -c qemu:///system undefine ${sq(domain)} 2>&1`,
          { timeoutMs: 120_000 },
        );
        return r.code === 0 ? `${domain} undefined` : `no ${domain} defined here`;
      });
      if (n === nodes[0] && o.config?.Type === "CephConf") {
        await report.step(n, "ceph key", async () => {
          const r = await ssh!.exec(
            `timeout 60 ceph -m ${sq(o.config!.MonAddrs!.join(","))} auth del client.zsha`,
            { timeoutMs: 90_000 },
          );
          return r.code === 0
            ? "Ceph user client.zsha deleted (the image stays)"
            : { detail: `client.zsha left in Ceph: ${r.stderr.trim().split("\n").pop()}`, warning: true };
        });
      }
      await report.step(n, "remove", async () => {
        await ssh!.run(removeScript(secret), { timeoutMs: 120_000 });
        report.changed(`${n.name}: zsha removed`);
        return `zsha stopped and removed (logs stay in ${L.logDir})`;
      });
    } catch (e) {
      failures.push(e instanceof StepFailed ? e.message : (e as Error).message);
    } finally {
      ssh?.close();
    }
  }
  if (o.json) {
    o.out(report.toJson({ ok: failures.length === 0, errors: failures }));
  } else if (failures.length === 0) {
    o.out(`zsha uninstall: done on ${nodes.length} nodes; the MN-VM image is still in Ceph`);
  } else {
    o.out(`zsha uninstall: finished with errors: ${failures.join("; ")}`);
  }
  return failures.length === 0 ? 0 : 1;
}
