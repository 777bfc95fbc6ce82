// Mutual TLS between members, with certificates made by the test: only members holding a certificate from
// the cluster CA that names them get their messages in.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { RaftService } from "../../src/gen/zsha/raft/v1/raft_pb.js";
import { Code, createClient, RpcError } from "../../src/grpc/index.js";
import { nodeId } from "../../src/raft/index.js";
import type { TlsConfig } from "../../src/transport/index.js";
import { type KeyPair, TestCa } from "../support/certs.js";
import { type Member, type MemberOptions, numbered, startMember, until } from "./harness.js";

let dir: string;
let ca: TestCa;
let rogue: TestCa;
const pairs: Record<string, KeyPair> = {};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "zsha-transport-tls-"));
  ca = TestCa.create(dir, "cluster-ca");
  rogue = TestCa.create(dir, "rogue-ca");
  pairs.a = ca.issue("a");
  pairs.b = ca.issue("member-b", ["b"]);
  pairs.c = ca.issue("c");
  pairs.rogueA = rogue.issue("a");
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const started: Member[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((m) => m.stop()));
});

const tlsOf = (pair: KeyPair | undefined, authority = ca): TlsConfig => {
  if (!pair) throw new Error("no such test certificate");
  return { ca: authority.cert, cert: pair.cert, key: pair.key.toString() };
};

async function member(id: string, options: MemberOptions = {}): Promise<Member> {
  const m = await startMember(id, { tls: tlsOf(pairs[id]), ...options });
  started.push(m);
  return m;
}

/**
 * Opens a raw stream to `server` with `credentials`, says hello as `from`, and returns how the call ended.
 * The client trusts the cluster CA and accepts any server name: only the server's checks are under test.
 */
async function attempt(server: Member, credentials: grpc.ChannelCredentials, from: string): Promise<unknown> {
  const client = createClient(RaftService, server.address, credentials, {
    channelOptions: { "grpc.ssl_target_name_override": "b" },
  });
  try {
    const call = client.stream({ deadlineMs: 5_000 });
    await call.send({ frame: { case: "hello", value: { from, to: server.id, clusterId: "test-cluster" } } });
    await call.send({ frame: { case: "message", value: { type: "Heartbeat", from, to: server.id } } });
    call.end();
    for await (const _ of call.responses) {
      // A refused stream answers nothing before its status.
    }
    return "accepted";
  } catch (err) {
    return err;
  } finally {
    client.close();
  }
}

const trustingClient = (pair?: KeyPair) =>
  grpc.credentials.createSsl(ca.cert, pair?.key ?? null, pair?.cert ?? null, {
    checkServerIdentity: () => undefined,
  });

describe("mutual TLS between members", () => {
  it("lets members with certificates from the cluster CA talk, named by CN or by DNS SAN", async () => {
    const a = await member("a");
    const b = await member("b");
    a.transport.addPeer("b", b.address);
    b.transport.addPeer("a", a.address);
    a.transport.send([numbered("a", "b", 1), numbered("a", "b", 2)]);
    b.transport.send([numbered("b", "a", 7)]);
    await until("both got their messages", () => b.received.length === 2 && a.received.length === 1);
    expect(b.received.map((m) => m.commit)).toEqual([1, 2]);
    expect(a.received.map((m) => m.commit)).toEqual([7]);
  });

  it("accepts a correctly certified raw caller (the control for the refusals below)", async () => {
    const b = await member("b");
    b.transport.addPeer("a", "127.0.0.1:1");
    expect(await attempt(b, trustingClient(pairs.a), "a")).toBe("accepted");
    expect(b.received).toHaveLength(1);
  });

  it("refuses a caller without a client certificate", async () => {
    const b = await member("b");
    b.transport.addPeer("a", "127.0.0.1:1");
    const err = await attempt(b, trustingClient(), "a");
    expect(err).toBeInstanceOf(RpcError);
    expect((err as RpcError).code).toBe(Code.UNAVAILABLE);
    const plain = await attempt(b, grpc.credentials.createInsecure(), "a");
    expect((plain as RpcError).code).toBe(Code.UNAVAILABLE);
    expect(b.received).toEqual([]);
  });

  it("refuses a caller whose certificate comes from another CA", async () => {
    const b = await member("b");
    b.transport.addPeer("a", "127.0.0.1:1");
    const err = await attempt(b, trustingClient(pairs.rogueA), "a");
    expect(err).toBeInstanceOf(RpcError);
    expect((err as RpcError).code).toBe(Code.UNAVAILABLE);
    expect(b.received).toEqual([]);
  });

  it("refuses with PERMISSION_DENIED a caller whose certificate names another member than its hello", async () => {
    const b = await member("b");
    b.transport.addPeer("a", "127.0.0.1:1");
    b.transport.addPeer("c", "127.0.0.1:1");
    const err = await attempt(b, trustingClient(pairs.c), "a");
    expect((err as RpcError).code).toBe(Code.PERMISSION_DENIED);
    expect((err as RpcError).message).toBe("the caller may not speak as 'a': the certificate names c, not a");
    expect(b.received).toEqual([]);

    // The same through a Transport: member a holding c's certificate never gets a message in.
    const a = await member("a", { tls: tlsOf(pairs.c) });
    a.transport.addPeer("b", b.address);
    a.transport.send([numbered("a", "b", 1)]);
    await until("b refused the stream", () =>
      b.logs.some(
        (l) => l.event === "transport.stream_refused" && (l.fields as { peer?: string }).peer === "a",
      ),
    );
    expect(b.received).toEqual([]);
  });

  it("does not send to a server whose certificate names another member than the peer dialed", async () => {
    const a = await member("a");
    const impostor = await member("c");
    impostor.transport.addPeer("a", "127.0.0.1:1");
    // a believes b lives where c listens; c's certificate is valid but does not name b.
    a.transport.addPeer("b", impostor.address);
    a.transport.send([numbered("a", "b", 1)]);
    await until("a reported b unreachable", () => a.unreachable.includes(nodeId("b")));
    expect(impostor.received).toEqual([]);
    expect(a.transport.stats().get(nodeId("b"))?.queued).toBe(1);
  });
});
