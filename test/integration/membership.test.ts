// Catching up and replacing members, with real agent processes: a follower down for longer than the log
// the leader keeps catches up through InstallSnapshot; a member replaced by a new one on an empty disk
// (remove, add learner, join, promote) ends with every key and three voters.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { text } from "../../src/client/kv-client.js";
import { Code, RpcError } from "../../src/grpc/index.js";
import { TestCluster, testFailed, until } from "../support/cluster.js";

let cluster: TestCluster | undefined;
afterEach(async (ctx) => {
  await cluster?.destroy(testFailed(ctx));
  cluster = undefined;
});

/** Writes `n` keys `prefix/00000`.. through `client`, 16 at a time; returns key -> value. */
async function writeMany(
  put: (k: string, v: string) => Promise<unknown>,
  prefix: string,
  n: number,
): Promise<Map<string, string>> {
  const want = new Map<string, string>();
  for (let i = 0; i < n; i += 16) {
    await Promise.all(
      Array.from({ length: Math.min(16, n - i) }, async (_, j) => {
        const k = `${prefix}/${String(i + j).padStart(5, "0")}`;
        const v = `value-${i + j}`;
        await put(k, v);
        want.set(k, v);
      }),
    );
  }
  return want;
}

/** Waits until `name` applied everything the leader committed, then reads `prefix` from its own state. */
async function localCopy(c: TestCluster, name: string, prefix: string): Promise<Map<string, string>> {
  const leader = await c.waitLeader();
  const commit = (await c.status(leader)).commitIndex;
  await until(`${name} to apply up to ${commit}`, async () => (await c.status(name)).appliedIndex >= commit);
  const r = await c.client([name]).get(`${prefix}/`, { prefix: true, serializable: true });
  return new Map(r.kvs.map((kv) => [text(kv.key), text(kv.value)]));
}

/** The log lines of `name` since its last start. */
function sinceLastStart(c: TestCluster, name: string, msg: string): number {
  const log = c.agent(name).log();
  const tail = log.slice(log.lastIndexOf("--- start"));
  return tail.split("\n").filter((l) => l.includes(`"msg":"${msg}"`)).length;
}

describe("catching up", () => {
  it("a follower down past the leader's kept log catches up through InstallSnapshot", async () => {
    cluster = await TestCluster.start({
      size: 3,
      label: "snapshot",
      snapshotEntries: 40,
      catchUpEntries: 10,
    });
    const c = cluster;
    const leader = await c.waitLeader();
    const victim = c.names().find((n) => n !== leader)!;
    const before = await writeMany((k, v) => c.client([leader]).put(k, v), "early", 20);
    await c.agent(victim).kill();
    const victimApplied = (await c.status(leader)).commitIndex;

    const during = await writeMany((k, v) => c.client([leader]).put(k, v), "late", 300);
    // The leader compacted its log past where the victim stopped: only a snapshot can bring it back.
    await until(
      "the leader to take a snapshot",
      () => c.agent(leader).events("member.snapshot-taken").length > 0,
    );
    const compacted = Math.max(
      ...c
        .agent(leader)
        .events("member.snapshot-taken")
        .map((e) => Number(e.compactedTo)),
    );
    expect(compacted).toBeGreaterThan(Number(victimApplied));

    c.agent(victim).start();
    await until(
      `${victim} to install a snapshot`,
      () => sinceLastStart(c, victim, "member.snapshot-installed") > 0,
    );
    const installed = c.agent(victim).events("member.snapshot-installed").at(-1)!;
    expect(Number(installed.index)).toBeGreaterThan(compacted);
    const late = await localCopy(c, victim, "late");
    expect(late).toEqual(during);
    const early = await localCopy(c, victim, "early");
    expect(early).toEqual(before);
    // It goes on replicating normally after the snapshot.
    await c.client([leader]).put("after/snapshot", "yes");
    expect(await localCopy(c, victim, "after")).toEqual(new Map([["after/snapshot", "yes"]]));
  }, 90_000);
});

describe("replacing a member", () => {
  it("an agent told to join without the current members' addresses refuses to start, saying why", async () => {
    const dir = mkdtempSync(join(tmpdir(), "zsha-join-"));
    try {
      const r = spawnSync(
        process.execPath,
        [
          "--import",
          "tsx",
          "cmd/agent.ts",
          "--name",
          "n9",
          "--peer-listen",
          "127.0.0.1:0",
          "--data-dir",
          dir,
          "--join",
        ],
        { encoding: "utf8", timeout: 20_000 },
      );
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/initialCluster is required/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("remove, wipe, add a learner on an empty disk, join, promote: it serves every key and the cluster keeps 3 voters", async () => {
    cluster = await TestCluster.start({
      size: 3,
      label: "replace",
      snapshotEntries: 50,
      catchUpEntries: 10,
    });
    const c = cluster;
    const leader = await c.waitLeader();
    const old = c.names().find((n) => n !== leader)!;
    const survivor = c.names().find((n) => n !== leader && n !== old)!;
    const want = await writeMany((k, v) => c.client([survivor]).put(k, v), "data", 120);

    // Removed through a follower (forwarded to the leader); the removed agent stops by itself.
    const removed = await c.client([survivor]).memberRemove(old);
    expect(removed.members.map((m) => m.name).sort()).toEqual([leader, survivor].sort());
    await until(`${old} to exit after its removal`, () => c.agent(old).state === "stopped", 3000).catch(
      async () => c.agent(old).kill(),
    );
    c.agent(old).wipe();

    const fresh = await c.defineJoiner("n4", [leader, survivor]);
    const added = await c.client([leader]).memberAddLearner("n4", fresh.peerAddress);
    expect(added.members.find((m) => m.name === "n4")?.isLearner).toBe(true);
    fresh.start();

    // Promotion is refused while the learner catches up, then accepted.
    await until(
      "n4 to be promoted",
      async () => {
        try {
          await c.client([survivor]).memberPromote("n4");
          return true;
        } catch (e) {
          if (e instanceof RpcError && e.code === Code.FAILED_PRECONDITION) return false;
          throw e;
        }
      },
      30_000,
      200,
    );
    const list = await c.client([leader]).memberList();
    const voters = list.members.filter((m) => !m.member?.isLearner).map((m) => m.member?.name);
    expect(voters.sort()).toEqual([leader, survivor, "n4"].sort());
    expect(list.members.some((m) => m.member?.isLearner)).toBe(false);

    expect(await localCopy(c, "n4", "data")).toEqual(want);
    // It is a full voter: writes through it commit, and it answers linearizable reads.
    await c.client(["n4"]).put("data/through-n4", "ok");
    const r = await c.client(["n4"]).get("data/", { prefix: true, countOnly: true });
    expect(Number(r.count)).toBe(want.size + 1);
    // With the old member gone and n4 voting, the cluster still has a quorum after losing one more.
    await c.agent(survivor).kill();
    const next = await c.waitLeader();
    expect([leader, "n4"]).toContain(next);
    await c.client([next]).put("data/after-loss", "ok");
  }, 90_000);

  it("a replaced machine re-joins under its old name: replaying its predecessor's removal does not stop it", async () => {
    // The default snapshot interval: the joiner gets the whole log, the old removal included.
    cluster = await TestCluster.start({ size: 3, label: "rejoin" });
    const c = cluster;
    const leader = await c.waitLeader();
    const old = c.names().find((n) => n !== leader)!;
    const survivor = c.names().find((n) => n !== leader && n !== old)!;
    const want = await writeMany((k, v) => c.client([survivor]).put(k, v), "data", 20);
    await c.agent(old).kill();
    c.agent(old).wipe();
    await c.client([leader]).memberRemove(old);

    const again = await c.defineJoiner(old, [leader, survivor]);
    await c.client([leader]).memberAddLearner(old, again.peerAddress);
    again.start();
    await until(
      `${old} to be promoted`,
      async () => {
        try {
          await c.client([survivor]).memberPromote(old);
          return true;
        } catch (e) {
          if (e instanceof RpcError && e.code === Code.FAILED_PRECONDITION) return false;
          throw e;
        }
      },
      30_000,
      200,
    );
    expect(again.state).toBe("running");
    expect(await localCopy(c, old, "data")).toEqual(want);
    await c.client([old]).put("data/through-new", "ok");
  }, 90_000);
});
