// 3 and 5 real agent processes: writes and linearizable reads through every member (followers forward to
// the leader), the leader killed with SIGKILL while a writer keeps going, a new leader answering, and the
// old leader restarted on its data catching up with every acknowledged write.
import { afterEach, describe, expect, it } from "vitest";
import { text } from "../../src/client/kv-client.js";
import { TestCluster, testFailed, until } from "../support/cluster.js";

let cluster: TestCluster | undefined;
afterEach(async (ctx) => {
  await cluster?.destroy(testFailed(ctx));
  cluster = undefined;
});

describe.each([3, 5])("a %i-member cluster of agent processes", (size) => {
  it("serves writes and linearizable reads through any member, survives kill -9 of the leader, and the restarted leader has every acknowledged write", async () => {
    cluster = await TestCluster.start({ size, label: `failover${size}` });
    const c = cluster;
    const names = c.names();

    // Every member takes writes; a read through every member sees every write at once (linearizable).
    for (const [i, n] of names.entries()) {
      const r = await c.client([n]).put(`through/${n}`, `v${i}`);
      expect(r.header?.member).toBe(n);
    }
    for (const n of names) {
      const got = await c.client([n]).get("through/", { prefix: true });
      expect(got.kvs.map((kv) => text(kv.value))).toEqual(names.map((_, i) => `v${i}`));
    }

    // A writer through every member keeps going while the leader is killed.
    const acked = new Map<string, string>();
    let stop = false;
    let seq = 0;
    const writer = (async () => {
      const cl = c.client(names, 2000);
      while (!stop) {
        const key = `w/${String(seq).padStart(5, "0")}`;
        const value = `x${seq++}`;
        try {
          await cl.put(key, value);
          acked.set(key, value);
        } catch {
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    })();
    await until("some writes before the kill", () => acked.size >= 20);
    const old = await c.waitLeader();
    const killedAt = performance.now();
    await c.agent(old).kill();
    const next = await c.waitLeader();
    expect(next).not.toBe(old);
    const before = acked.size;
    await until("writes after the new leader", () => acked.size >= before + 20);
    const failoverMs = performance.now() - killedAt;

    // The old leader comes back on its data, rejoins as a follower and catches up.
    c.agent(old).start();
    await until(
      `${old} to rejoin`,
      async () => (await c.status(old)).leader === (await c.waitLeader(5000)),
      20_000,
    );
    stop = true;
    await writer;
    const leader = await c.waitLeader();
    const commit = (await c.status(leader)).commitIndex;
    await until(`${old} to apply up to ${commit}`, async () => (await c.status(old)).appliedIndex >= commit);
    const local = await c.client([old]).get("w/", { prefix: true, serializable: true });
    const have = new Map(local.kvs.map((kv) => [text(kv.key), text(kv.value)]));
    for (const [k, v] of acked) expect(have.get(k), `acknowledged write ${k} on ${old}`).toBe(v);
    // And a linearizable read through the restarted member agrees with the leader.
    const lin = await c.client([old]).get("w/", { prefix: true, countOnly: true });
    expect(Number(lin.count)).toBeGreaterThanOrEqual(acked.size);
    console.info(
      `${size} members: ${acked.size} acknowledged writes; leader ${old} killed, ${next} took over; writes resumed ${Math.round(failoverMs)} ms after the kill`,
    );
  }, 90_000);
});
