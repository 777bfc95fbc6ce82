// What the installer asks of a node's own zsha and Ceph over SSH: run a zsha command against the local
// agent, wait for the Raft group to form, create zsha's Ceph user.
import { LAYOUT as L } from "./layout.js";
import type { Report } from "./report.js";
import { type SshSession, sq } from "./ssh.js";

/** Runs `zsha ARGS` on the node (its agent over the local socket); the output, or its error sentence. */
export async function zshaOn(ssh: SshSession, args: string): Promise<string> {
  const r = await ssh.exec(`${L.binLink} ${args}`, { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`zsha ${args}: ${r.stderr.trim().split("\n").pop() ?? `exit ${r.code}`}`);
  return r.stdout;
}

interface MemberRow {
  name: string;
  alive: boolean;
  learner: boolean;
}

/** Waits until `from` sees a leader and every one of `nodes` as an alive voting member. */
export async function waitCluster(
  report: Report,
  from: { name: string; ip: string; ssh?: SshSession },
  nodes: readonly { name: string }[],
  timeoutMs: number,
): Promise<void> {
  await report.step(from, "raft", async () => {
    const deadline = Date.now() + timeoutMs;
    let last = "no answer yet";
    for (;;) {
      const r = await from
        .ssh!.exec(`${L.binLink} member list --json`, { timeoutMs: 15_000 })
        .catch((e: Error) => ({
          code: 1,
          stdout: "",
          stderr: e.message,
        }));
      if (r.code === 0) {
        const list = JSON.parse(r.stdout) as { leader: string; members: MemberRow[] };
        const missing = nodes.filter(
          (n) => !list.members.some((m) => m.name === n.name && m.alive && !m.learner),
        );
        if (list.leader && missing.length === 0)
          return `${nodes.length} members alive, leader ${list.leader}`;
        last = list.leader ? `waiting for ${missing.map((n) => n.name).join(", ")}` : "no leader elected yet";
      } else last = r.stderr.trim().split("\n").pop() ?? "";
      if (Date.now() > deadline)
        throw new Error(`the Raft group did not form within ${timeoutMs / 1000} s: ${last}`);
      await new Promise((res) => setTimeout(res, 500));
    }
  });
}

/**
 * client.zsha with `profile rbd` on the pool (and the monitor caps that fencing needs), created with the
 * node's admin key unless it exists. Returns its key and whether this call created it.
 */
export async function cephUser(
  ssh: SshSession,
  monAddrs: readonly string[],
  pool: string,
): Promise<{ key: string; created: boolean }> {
  const m = `-m ${sq(monAddrs.join(","))}`;
  const before = await ssh.exec(`timeout 60 ceph ${m} auth get-key client.zsha`, { timeoutMs: 90_000 });
  if (before.code === 0) return { key: before.stdout.trim(), created: false };
  const r = await ssh.exec(
    `timeout 60 ceph ${m} auth get-or-create client.zsha mon 'profile rbd' osd ${sq(`profile rbd pool=${pool}`)} mgr ${sq(`profile rbd pool=${pool}`)} >/dev/null && timeout 60 ceph ${m} auth get-key client.zsha`,
    { timeoutMs: 120_000 },
  );
  if (r.code !== 0)
    throw new Error(
      `cannot create Ceph user client.zsha with this node's admin key: ${r.stderr.trim().split("\n").pop()}`,
    );
  return { key: r.stdout.trim(), created: true };
}
