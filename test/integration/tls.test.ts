// Mutual TLS between agent processes started from node files, with certificates the test makes (openssl):
// the cluster forms and forwards over TLS; a process reaching a peer port without a certificate from the
// cluster CA is refused, while one with a valid certificate is served (so the refusals mean something).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { KvClient, text } from "../../src/client/kv-client.js";
import { Code, codeName, RpcError } from "../../src/grpc/index.js";
import { type KeyPair, TestCa } from "../support/certs.js";
import { TestCluster, testFailed } from "../support/cluster.js";

let certDir: string;
let ca: TestCa;
let rogue: KeyPair;
let cluster: TestCluster;
let anyFailed = false;
const names = ["n1", "n2", "n3"];

beforeAll(async () => {
  certDir = mkdtempSync(join(tmpdir(), "zsha-it-certs-"));
  ca = TestCa.create(certDir, "cluster-ca");
  for (const n of names) {
    const pair = ca.issue(n, [n]);
    writeFileSync(join(certDir, `${n}.pem`), pair.cert);
    writeFileSync(join(certDir, `${n}.key.pem`), pair.key);
  }
  rogue = TestCa.create(certDir, "rogue-ca").issue("n1", ["n1"]);
  cluster = await TestCluster.start({
    size: 3,
    label: "tls",
    tls: (n) => ({
      ca: join(certDir, "cluster-ca.crt"),
      cert: join(certDir, `${n}.pem`),
      key: join(certDir, `${n}.key.pem`),
    }),
  });
});
afterEach((ctx) => {
  if (testFailed(ctx)) anyFailed = true;
});
afterAll(async () => {
  await cluster?.destroy(anyFailed);
  if (certDir) rmSync(certDir, { recursive: true, force: true });
});

/** A client of `member`'s peer port with the given credentials (the server is checked against the CA). */
function peerClient(member: string, credentials: grpc.ChannelCredentials): KvClient {
  return new KvClient({
    endpoints: [cluster.agent(member).peerAddress],
    credentials,
    channelOptions: { "grpc.ssl_target_name_override": member },
    deadlineMs: 3000,
  });
}

async function outcome(c: KvClient): Promise<string> {
  try {
    const s = await c.status();
    return `served by ${s.name}`;
  } catch (e) {
    return e instanceof RpcError ? codeName(e.code) : String(e);
  } finally {
    c.close();
  }
}

describe("mutual TLS between agents", () => {
  it("the cluster forms over TLS; writes and leases through a follower reach the leader", async () => {
    const leader = await cluster.waitLeader();
    const follower = names.find((n) => n !== leader)!;
    const c = cluster.client([follower]);
    await c.put("tls/k", "v");
    expect(text((await cluster.client([leader]).getValue("tls/k"))!.value)).toBe("v");
    // Keep-alive and time-to-live are forwarded to the leader's peer port, over mutual TLS.
    const { id } = await c.leaseGrant(10);
    expect(await c.leaseKeepAliveOnce(id)).toBeGreaterThan(0n);
    expect((await c.leaseTimeToLive(id)).grantedTtl).toBe(10n);
    const list = await c.memberList();
    expect(list.members.map((m) => m.member?.name).sort()).toEqual(names);
  });

  it("a peer port refuses callers without a certificate from the cluster CA", async () => {
    const target = "n2";
    const valid = ca.issue("operator", ["operator"]);
    const noCheck = { checkServerIdentity: () => undefined };
    // The control: a certificate from the cluster CA is served.
    expect(
      await outcome(peerClient(target, grpc.credentials.createSsl(ca.cert, valid.key, valid.cert, noCheck))),
    ).toBe(`served by ${target}`);
    // Plain TCP, TLS without a client certificate, and a certificate from another CA are all refused.
    expect(await outcome(peerClient(target, grpc.credentials.createInsecure()))).toBe(
      codeName(Code.UNAVAILABLE),
    );
    expect(await outcome(peerClient(target, grpc.credentials.createSsl(ca.cert, null, null, noCheck)))).toBe(
      codeName(Code.UNAVAILABLE),
    );
    expect(
      await outcome(peerClient(target, grpc.credentials.createSsl(ca.cert, rogue.key, rogue.cert, noCheck))),
    ).toBe(codeName(Code.UNAVAILABLE));
  });
});
