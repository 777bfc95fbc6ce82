// Watch and leases against real agent processes: a watch from a past revision replays history, a compacted
// start revision is refused with compact_revision; a lease's keys go when it expires, keep-alives through a
// follower keep it, and a kept-alive lease outlives the leader being killed (its TTL restarts).
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { text } from "../../src/client/kv-client.js";
import type { WatchResponse } from "../../src/gen/zsha/kv/v1/kv_pb.js";
import { TestCluster, testFailed, until } from "../support/cluster.js";

let cluster: TestCluster;
let anyFailed = false;
beforeAll(async () => {
  cluster = await TestCluster.start({ size: 3, label: "watchlease" });
});
afterEach((ctx) => {
  if (testFailed(ctx)) anyFailed = true;
});
afterAll(async () => {
  await cluster?.destroy(anyFailed);
});

async function aFollower(): Promise<string> {
  const leader = await cluster.waitLeader();
  return cluster.names().find((n) => n !== leader && cluster.agent(n).state === "running")!;
}

/** Reads watch responses until `enough` says stop (or `timeoutMs` passes). */
async function collect(
  it: AsyncIterator<WatchResponse>,
  enough: (got: WatchResponse[]) => boolean,
  timeoutMs = 10_000,
): Promise<WatchResponse[]> {
  const got: WatchResponse[] = [];
  const deadline = performance.now() + timeoutMs;
  while (!enough(got)) {
    const left = deadline - performance.now();
    if (left <= 0) throw new Error(`watch: only ${got.length} responses within ${timeoutMs} ms`);
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([
      it.next(),
      new Promise<never>((_, rej) => {
        timer = setTimeout(() => rej(new Error(`watch: no response within ${timeoutMs} ms`)), left);
      }),
    ]).finally(() => clearTimeout(timer));
    if (r.done) break;
    got.push(r.value);
  }
  return got;
}

describe("watch", () => {
  it("replays events from a past revision, then delivers new ones; a compacted start revision is refused with compact_revision", async () => {
    const c = cluster.client([await aFollower()]);
    const r1 = (await c.put("w/a", "1")).header!.revision;
    const r2 = (await c.put("w/a", "2")).header!.revision;
    const r3 = (await c.put("w/b", "3")).header!.revision;
    await c.delete("w/a");

    const w = c.watch("w/", { prefix: true, startRevision: r1 });
    const wit = w.responses[Symbol.asyncIterator]();
    const events = () => (got: WatchResponse[]) => got.flatMap((g) => g.events).length;
    try {
      const got = await collect(wit, (g) => events()(g) >= 4);
      // The watch is created first; replayed events follow under its id.
      expect(got[0]?.created).toBe(true);
      for (const g of got.slice(1)) expect(g.watchId).toBe(got[0]!.watchId);
      const evs = got.flatMap((g) => g.events);
      expect(evs.map((e) => [text(e.kv!.key), text(e.kv!.value), e.kv!.modRevision])).toEqual([
        ["w/a", "1", r1],
        ["w/a", "2", r2],
        ["w/b", "3", r3],
        ["w/a", "", r3 + 1n],
      ]);
      // And it goes on live.
      const r5 = (await c.put("w/c", "5")).header!.revision;
      const live = await collect(wit, (g) => events()(g) >= 1);
      expect(live.flatMap((g) => g.events).map((e) => e.kv!.modRevision)).toEqual([r5]);
    } finally {
      w.cancel();
    }

    await c.compact(r3);
    const old = c.watch("w/", { prefix: true, startRevision: r1 });
    try {
      const got = await collect(old.responses[Symbol.asyncIterator](), (g) => g.some((x) => x.canceled));
      const refusedBy = got.find((x) => x.canceled)!;
      expect(refusedBy.compactRevision).toBeGreaterThanOrEqual(r3);
      expect(refusedBy.events).toEqual([]);
      expect(refusedBy.cancelReason).toMatch(/compact/i);
    } finally {
      old.cancel();
    }
  });
});

describe("leases", () => {
  it("a lease's keys are deleted when it expires (TTL 3 s, no keep-alive)", async () => {
    const c = cluster.client([await aFollower()]);
    const granted = performance.now();
    const { id } = await c.leaseGrant(3);
    await c.put("leased/expiring", "v", { lease: id });
    expect(await c.getValue("leased/expiring")).toBeDefined();
    await until(
      "the lease to expire and take its key",
      async () => !(await c.getValue("leased/expiring")),
      15_000,
    );
    expect(performance.now() - granted).toBeGreaterThanOrEqual(2_500);
    expect((await c.leaseTimeToLive(id)).ttl).toBe(-1n);
  });

  it("keep-alives through a follower keep a lease, also across the leader being killed (its TTL restarts)", async () => {
    const leader = await cluster.waitLeader();
    const via = await aFollower();
    const c = cluster.client([via]);
    const { id } = await c.leaseGrant(3);
    await c.put("leased/kept", "v", { lease: id });

    let renewing = true;
    let renewals = 0;
    const keeper = (async () => {
      const k = cluster.client([via], 1000);
      while (renewing) {
        try {
          if ((await k.leaseKeepAliveOnce(id)) > 0n) renewals++;
        } catch {
          // The leader is being replaced: keep trying.
        }
        await new Promise((r) => setTimeout(r, 500));
      }
    })();
    try {
      // Twice the TTL with keep-alives: still there.
      await new Promise((r) => setTimeout(r, 6_000));
      expect(await c.getValue("leased/kept")).toBeDefined();

      await cluster.agent(leader).kill();
      const next = await cluster.waitLeader(20_000, [leader]);
      expect(next).not.toBe(leader);
      const before = renewals;
      await until("keep-alives to reach the new leader", () => renewals >= before + 2, 10_000);
      await new Promise((r) => setTimeout(r, 4_000));
      expect(await cluster.client([via]).getValue("leased/kept")).toBeDefined();
      expect((await c.leaseTimeToLive(id)).ttl).toBeGreaterThan(0n);
    } finally {
      renewing = false;
      await keeper;
    }
    // Without keep-alives it now expires: the lease was kept alive, not immortal.
    await until(
      "the lease to expire once keep-alives stop",
      async () => !(await c.getValue("leased/kept")),
      15_000,
    );
    cluster.agent(leader).start();
  }, 60_000);
});
