// Linearizability of the real store under faults: several clients, each talking to one member (and one
// talking to all with failover), run puts, gets, deletes and CAS txns on a few keys while a nemesis kills
// (-9), pauses (SIGSTOP/SIGCONT) and restarts members, the leader among them. Every history goes through
// the porcupine-style checker and must come out linearizable. Failed or timed-out operations are recorded
// as possibly applied; only a refused connection (the request never left) counts as not applied.
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { type KvClient, text } from "../../src/client/kv-client.js";
import { Compare_CompareResult } from "../../src/gen/zsha/kv/v1/kv_pb.js";
import { Code, RpcError } from "../../src/grpc/index.js";
import { Rng } from "../linearizability/rng.js";
import { type Agent, TestCluster, testFailed, until } from "../support/cluster.js";
import {
  checkOperations,
  HistoryRecorder,
  type KvInput,
  type KvOutput,
  kvModel,
} from "../support/linearizability/index.js";

const HISTORY_MS = 5_000;
const KEYS = 3;
const OP_DEADLINE_MS = 1_500;

let anyFailed = false;
afterEach((ctx) => {
  if (testFailed(ctx)) anyFailed = true;
});

interface Totals {
  histories: number;
  ops: number;
  unknown: number;
  kills: number;
  pauses: number;
  restarts: number;
  leaderFaults: number;
  ms: number;
  checkMs: number;
}
const totals: Totals = {
  histories: 0,
  ops: 0,
  unknown: 0,
  kills: 0,
  pauses: 0,
  restarts: 0,
  leaderFaults: 0,
  ms: 0,
  checkMs: 0,
};
afterAll(() => {
  const t = totals;
  console.info(
    `linearizability: ${t.histories} histories, ${t.ops} operations (${Math.round(t.ops / t.histories)} per history, ${t.unknown} with unknown outcome), ` +
      `${Math.round(t.ms / t.histories)} ms per history (checking ${Math.round(t.checkMs / t.histories)} ms); nemesis: ${t.kills} kill -9, ${t.pauses} SIGSTOP/SIGCONT, ${t.restarts} clean restarts, ${t.leaderFaults} of them on the leader`,
  );
});

/** A connection that was never established: the request did not leave this process. */
function neverSent(e: unknown): boolean {
  return (
    e instanceof RpcError &&
    e.code === Code.UNAVAILABLE &&
    /ECONNREFUSED|No connection established/.test(e.message)
  );
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function runClient(
  id: string,
  client: KvClient,
  rec: HistoryRecorder<KvInput, KvOutput>,
  keys: string[],
  rng: Rng,
  until: () => boolean,
): Promise<void> {
  let n = 0;
  const lastSeen = new Map<string, string | null>();
  while (!until()) {
    const key = keys[rng.int(keys.length)]!;
    const roll = rng.next();
    const value = `${id}-${n++}`;
    const o = { deadlineMs: OP_DEADLINE_MS };
    try {
      if (roll < 0.4) {
        await rec.record(
          id,
          { op: "get", key },
          async () => {
            const kv = (await client.get(key, o)).kvs[0];
            const out = {
              op: "get" as const,
              value: kv ? text(kv.value) : null,
              version: kv ? Number(kv.version) : 0,
            };
            lastSeen.set(key, out.value);
            return out;
          },
          neverSent,
        );
      } else if (roll < 0.7) {
        await rec.record(
          id,
          { op: "put", key, value },
          async () => {
            const r = await client.put(key, value, { ...o, prevKv: true });
            return { op: "put" as const, prev: r.prevKv ? text(r.prevKv.value) : null };
          },
          neverSent,
        );
      } else if (roll < 0.95) {
        const expect = lastSeen.get(key) ?? null;
        const compare =
          expect === null
            ? { key: new TextEncoder().encode(key), target: { case: "version" as const, value: 0n } }
            : {
                key: new TextEncoder().encode(key),
                target: { case: "value" as const, value: new TextEncoder().encode(expect) },
              };
        await rec.record(
          id,
          { op: "cas", key, expect: { value: expect }, value },
          async () => {
            const r = await client.txn(
              {
                compare: [{ ...compare, result: Compare_CompareResult.EQUAL }],
                success: [
                  {
                    request: {
                      case: "put",
                      value: { key: new TextEncoder().encode(key), value: new TextEncoder().encode(value) },
                    },
                  },
                ],
              },
              o,
            );
            if (r.succeeded) lastSeen.set(key, value);
            return { op: "cas" as const, ok: r.succeeded };
          },
          neverSent,
        );
      } else {
        await rec.record(
          id,
          { op: "delete", key },
          async () => {
            const r = await client.delete(key, o);
            lastSeen.set(key, null);
            return { op: "delete" as const, deleted: Number(r.deleted) };
          },
          neverSent,
        );
      }
      await sleep(rng.int(10));
    } catch {
      // Recorded as failed (possibly applied) or refused; back off a little so a dead member does not
      // fill the history with unknown operations.
      await sleep(100 + rng.int(100));
    }
  }
}

/** Faults during one history, each over before the history ends; leaves every member running. */
async function nemesis(c: TestCluster, rng: Rng, endAt: number): Promise<void> {
  const left = () => endAt - performance.now();
  const nap = (ms: number) => sleep(Math.max(0, Math.min(ms, left())));
  await nap(300 + rng.int(400));
  while (left() > 1200) {
    const leader = await c.waitLeader(Math.max(500, left())).catch(() => undefined);
    if (left() < 800) break;
    const running = c.running();
    const target: Agent = leader && rng.next() < 0.5 ? c.agent(leader) : running[rng.int(running.length)]!;
    if (target.name === leader) totals.leaderFaults++;
    const kind = rng.next();
    if (kind < 0.4) {
      totals.kills++;
      await target.kill();
      await nap(300 + rng.int(900));
      target.start();
    } else if (kind < 0.8) {
      totals.pauses++;
      target.pause();
      await nap(300 + rng.int(1500));
      target.resume();
    } else {
      totals.restarts++;
      await target.stop();
      target.start();
    }
    await nap(400 + rng.int(600));
  }
}

async function history(c: TestCluster, n: number, seed: number): Promise<void> {
  const rng = new Rng(seed);
  const started = performance.now();
  const endAt = started + HISTORY_MS;
  const keys = Array.from({ length: KEYS }, (_, i) => `h${n}/k${i}`);
  const rec = new HistoryRecorder<KvInput, KvOutput>();
  const names = c.names();
  // One client per member, plus one that fails over between all of them.
  const clients: Array<[string, KvClient]> = names.map((m) => [`c-${m}`, c.client([m], OP_DEADLINE_MS)]);
  const k = rng.int(names.length);
  clients.push(["c-any", c.client([...names.slice(k), ...names.slice(0, k)], OP_DEADLINE_MS)]);
  const done = () => performance.now() >= endAt;
  await Promise.all([
    ...clients.map(([id, cl], i) => runClient(id, cl, rec, keys, new Rng(seed * 31 + i), done)),
    nemesis(c, rng, endAt),
  ]);
  for (const [, cl] of clients) cl.close();
  const ops = rec.history();
  const t0 = performance.now();
  const result = checkOperations(kvModel, ops, { timeoutMs: 60_000 });
  totals.checkMs += performance.now() - t0;
  totals.histories++;
  totals.ops += ops.length;
  totals.unknown += ops.filter((o) => o.returnAt === Number.POSITIVE_INFINITY).length;
  totals.ms += performance.now() - started;
  expect(result.result, `history ${n} (seed ${seed}):\n${result.info.explanation}`).toBe("ok");
  // The same history with one answered read changed to a value nobody wrote must be refused: the
  // recording and the check can tell a bad store from a good one.
  const read = ops.findIndex((o) => o.input.op === "get" && o.returnAt !== Number.POSITIVE_INFINITY);
  if (read >= 0) {
    const bad = ops.map((o, i) =>
      i === read ? { ...o, output: { op: "get" as const, value: "never-written" } } : o,
    );
    expect(checkOperations(kvModel, bad, { timeoutMs: 60_000 }).result).toBe("illegal");
  }
  // The cluster is whole again before the next history.
  for (const a of c.agents.values()) if (a.state === "stopped") a.start();
  await c.waitLeader();
  await until("every member to answer", async () => {
    await Promise.all(names.map((m) => c.status(m)));
    return true;
  });
}

const GROUPS: Array<{ size: number; histories: number }> = [
  { size: 3, histories: 8 },
  { size: 3, histories: 7 },
  { size: 5, histories: 6 },
];
const BASE_SEED = Number(process.env.ZSHA_LIN_SEED ?? Date.now() % 100_000);

describe.each(GROUPS.map((g, i) => ({ ...g, group: i })))(
  "linearizable histories under kill -9, SIGSTOP and restarts ($size members, $histories histories)",
  ({ size, histories, group }) => {
    let c: TestCluster | undefined;
    afterAll(async () => {
      await c?.destroy(anyFailed);
    });
    it.each(Array.from({ length: histories }, (_, i) => i))(
      "history %i",
      async (i) => {
        c ??= await TestCluster.start({ size, label: `lin${size}` });
        const n = group * 100 + i;
        await history(c, n, BASE_SEED + n);
      },
      60_000,
    );
  },
);
