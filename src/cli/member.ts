// `zsha member list|add|promote|remove`: the Raft membership, as etcdctl's `member` commands. The installer
// uses them to re-join a replaced node; operators use them when a node leaves the cluster for good.
import type { Command } from "commander";
import type { KvClient } from "../client/kv-client.js";
import type { Io } from "./main.js";

type WithKv = (f: (c: { kv: KvClient }) => Promise<void>) => Promise<void>;

export function addMemberCommands(program: Command, withApi: WithKv, io: Io): void {
  const member = program.command("member").description("list or change the Raft members (advanced)");
  member
    .command("list")
    .description("the members with their role, progress and liveness")
    .option("--json", "machine-readable")
    .action(async (o: { json?: boolean }) =>
      withApi(async ({ kv }) => {
        const r = await kv.memberList();
        const rows = r.members.map((m) => ({
          name: m.member?.name ?? "",
          peerAddress: m.member?.peerAddress ?? "",
          learner: m.member?.isLearner ?? false,
          role: m.role,
          alive: m.alive,
          term: Number(m.term),
          matchIndex: Number(m.matchIndex),
          lastContactMs: Number(m.lastContactMs),
        }));
        if (o.json) {
          io.out(JSON.stringify({ leader: r.leader, term: Number(r.term), members: rows }, null, 2));
          return;
        }
        for (const m of rows) {
          const role = m.learner ? "learner" : m.role || "-";
          io.out(`${m.name.padEnd(12)} ${m.peerAddress.padEnd(22)} ${m.alive ? "alive " : "failed"} ${role}`);
        }
      }),
    );
  member
    .command("add")
    .description("add NODE as a learner (it catches up, then `member promote` makes it a voter)")
    .argument("<node>", "member name")
    .argument("<peer-address>", "ip:port of its agent")
    .action(async (name: string, peer: string) =>
      withApi(async ({ kv }) => {
        await kv.memberAddLearner(name, peer);
        io.out(`${name} added as a learner at ${peer}`);
      }),
    );
  member
    .command("promote")
    .description("make the learner NODE a voting member (refused until it has caught up)")
    .argument("<node>", "member name")
    .action(async (name: string) =>
      withApi(async ({ kv }) => {
        await kv.memberPromote(name);
        io.out(`${name} is a voting member`);
      }),
    );
  member
    .command("remove")
    .description("remove NODE from the Raft group")
    .argument("<node>", "member name")
    .action(async (name: string) =>
      withApi(async ({ kv }) => {
        await kv.memberRemove(name);
        io.out(`${name} removed`);
      }),
    );
}
