// Bad input through the real API of a running cluster: every request gets its gRPC code and one sentence
// naming what is wrong, and nothing is written (the store's revision and the membership are unchanged).
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { bytes, type KvClient } from "../../src/client/kv-client.js";
import { Code, codeName, RpcError } from "../../src/grpc/index.js";
import { TestCluster, testFailed } from "../support/cluster.js";

let cluster: TestCluster;
let follower: KvClient;
let leaderName: string;
let anyFailed = false;

beforeAll(async () => {
  cluster = await TestCluster.start({ size: 3, label: "badinput" });
  leaderName = await cluster.waitLeader();
  // Through a follower: validation must not depend on which member the client reached.
  follower = cluster.client([cluster.names().find((n) => n !== leaderName)!]);
  await follower.put("existing", "v");
});
afterEach((ctx) => {
  if (testFailed(ctx)) anyFailed = true;
});
afterAll(async () => {
  await cluster?.destroy(anyFailed);
});

/** The revision the leader's state machine is at (a linearizable read answers with it). */
async function revision(): Promise<bigint> {
  return (await follower.get("existing")).header!.revision;
}

async function refused(call: () => Promise<unknown>, code: Code, sentence: RegExp): Promise<void> {
  const before = await revision();
  const members = (await follower.memberList()).members.length;
  const err = await call().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, "the call should have been refused").toBeInstanceOf(RpcError);
  const e = err as RpcError;
  expect(codeName(e.code), e.message).toBe(codeName(code));
  expect(e.message).toMatch(sentence);
  // One sentence: no line breaks, no stack trace.
  expect(e.message).not.toMatch(/\n|\bat \S+ \(/);
  expect(await revision(), "nothing was written").toBe(before);
  expect((await follower.memberList()).members.length, "the membership is unchanged").toBe(members);
}

describe("bad input is refused with a code and one sentence, and nothing is written", () => {
  it("put: empty key", () => refused(() => follower.put("", "v"), Code.INVALID_ARGUMENT, /key.*empty/i));

  it("put: over-long key", () =>
    refused(() => follower.put("k".repeat(1025), "v"), Code.INVALID_ARGUMENT, /key.*1025.*1024/));

  it("put: value over the size limit", () =>
    refused(
      () => follower.put("big", new Uint8Array(1024 * 1024 + 1)),
      Code.INVALID_ARGUMENT,
      /value is 1048577 bytes, over the 1048576-byte limit/,
    ));

  it("lease grant: TTL below the minimum", () =>
    refused(() => follower.leaseGrant(1), Code.INVALID_ARGUMENT, /ttl 1 s is below the \d+-second minimum/));

  it("lease grant: TTL over the maximum", () =>
    refused(
      () => follower.leaseGrant(9_000_000_001),
      Code.INVALID_ARGUMENT,
      /ttl 9000000001 s is over the \d+-second maximum/,
    ));

  it("put: attached to a lease that does not exist", () =>
    refused(
      () => follower.put("leased", "v", { lease: 0x1234n }),
      Code.NOT_FOUND,
      /lease .*1234.* does not exist/,
    ));

  it("txn: a compare without a target", () =>
    refused(
      () =>
        follower.txn({
          compare: [{ key: bytes("existing") }],
          success: [{ request: { case: "put", value: { key: bytes("existing"), value: bytes("w") } } }],
        }),
      Code.INVALID_ARGUMENT,
      /has no target/,
    ));

  it("member remove / promote / transfer: an unknown member", async () => {
    await refused(() => follower.memberRemove("nobody"), Code.NOT_FOUND, /'nobody' is not a member/);
    await refused(() => follower.memberPromote("nobody"), Code.NOT_FOUND, /'nobody' is not a member/);
    await refused(() => follower.transferLeadership("nobody"), Code.NOT_FOUND, /'nobody' is not a member/);
  });

  it("member add-learner: a bad name or a bad address", async () => {
    await refused(
      () => follower.memberAddLearner("bad name!", "127.0.0.1:1"),
      Code.INVALID_ARGUMENT,
      /name 'bad name!' must be 1-63 letters/,
    );
    await refused(
      () => follower.memberAddLearner("n9", "no-port"),
      Code.INVALID_ARGUMENT,
      /peer_address 'no-port' must be host:port/,
    );
  });

  it("watch: an empty key", async () => {
    await refused(
      async () => {
        const w = follower.watch("");
        try {
          for await (const _ of w.responses) return "answered";
          return "ended";
        } finally {
          w.cancel();
        }
      },
      Code.INVALID_ARGUMENT,
      /watch: key must not be empty/,
    );
  });
});
