// The client's failover between endpoints must never send a write twice: a write whose member failed after
// taking it may still commit, so retrying it elsewhere could apply it twice (a CAS would then report
// failure although it succeeded). Reproduced with real agents: the leader paused so the write waits, the
// member holding it stopped, the leader resumed: the client must report the outcome as unknown.
import { afterEach, describe, expect, it } from "vitest";
import { bytes, text } from "../../src/client/kv-client.js";
import { Compare_CompareResult } from "../../src/gen/zsha/kv/v1/kv_pb.js";
import { Code, type RpcError } from "../../src/grpc/index.js";
import { TestCluster, testFailed, until } from "../support/cluster.js";

let cluster: TestCluster | undefined;
afterEach(async (ctx) => {
  await cluster?.destroy(testFailed(ctx));
  cluster = undefined;
});

describe("client failover", () => {
  it("does not resend a CAS whose member stopped after taking it (it may have committed)", async () => {
    // Slow ticks: the paused leader must not be replaced while the write waits on it.
    cluster = await TestCluster.start({ size: 3, label: "clientretry", tickMs: 120 });
    const c = cluster;
    const leader = await c.waitLeader();
    const [first, second] = c.names().filter((n) => n !== leader) as [string, string];
    await c.client([leader]).put("lock", "free");

    const client = c.client([first, second], 10_000);
    // Connect to `first` before the test proper: on a busy machine a fresh channel may still be connecting
    // when `first` stops, and a request that never left may rightly be sent to `second` instead.
    expect(client.endpoint()).toBe(c.agent(first).clientAddress);
    await client.getValue("lock");
    c.agent(leader).pause();
    const cas = client.txn({
      compare: [
        {
          key: bytes("lock"),
          result: Compare_CompareResult.EQUAL,
          target: { case: "value", value: bytes("free") },
        },
      ],
      success: [{ request: { case: "put", value: { key: bytes("lock"), value: bytes("mine") } } }],
    });
    const outcome = cas.then(
      (r) => ({ succeeded: r.succeeded }),
      (e: unknown) => ({ error: e }),
    );
    // The proposal is on its way to the paused leader; the member that took it stops (SIGTERM).
    await new Promise((r) => setTimeout(r, 300));
    await c.agent(first).stop();
    await new Promise((r) => setTimeout(r, 100));
    c.agent(leader).resume();
    const got = await outcome;
    const value = await until("the lock to be readable", async () =>
      c.client([leader, second]).getValue("lock"),
    );
    // The client must not have tried the CAS again elsewhere: it reports that the outcome is unknown
    // (a resent CAS would fail its compare against its own first copy, or be applied twice).
    expect("error" in got ? (got.error as RpcError).code : got, `the lock is ${text(value.value)}`).toBe(
      Code.UNAVAILABLE,
    );
    expect(["free", "mine"]).toContain(text(value.value));
  }, 60_000);
});
