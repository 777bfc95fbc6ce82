// The gRPC adapter over real sockets: a grpc-js server on 127.0.0.1, on a unix socket and behind mutual
// TLS, serving the EchoService of zsha.testing.v1 through addService and called through createClient.
import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EchoService } from "../../src/gen/zsha/testing/v1/echo_pb.js";
import {
  addService,
  type CallContext,
  type Client,
  Code,
  createClient,
  RpcError,
  type ServiceImpl,
} from "../../src/grpc/index.js";

type Echo = typeof EchoService extends { method: infer M } ? M : never;

const SERVER_MAX_RECEIVE = 64 * 1024;

/** What the handlers saw, for the tests to check the server side of a call. */
const seen = {
  unexpected: [] as string[],
  produced: 0,
  abortReason: undefined as Promise<unknown> | undefined,
};
let reportAbort: (reason: unknown) => void = () => {};

/** Arms the probe for the next call that waits for its signal; resolves with the signal's reason. */
function expectAbort(): Promise<unknown> {
  seen.abortReason = new Promise((resolve) => {
    reportAbort = resolve;
  });
  return seen.abortReason;
}

async function untilAborted(ctx: CallContext): Promise<never> {
  if (!ctx.signal.aborted) {
    await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve, { once: true }));
  }
  reportAbort(ctx.signal.reason);
  throw ctx.signal.reason;
}

const echoImpl: ServiceImpl<Echo> = {
  async echo(request, ctx) {
    if (request.failWithCode !== 0) {
      throw new RpcError(request.failWithCode, `asked to fail with code ${request.failWithCode}`);
    }
    switch (request.text) {
      case "crash":
        throw new Error("the handler crashed");
      case "wait":
        return untilAborted(ctx);
      case "whoami":
        return { text: String(ctx.peerCertificate?.subject?.CN ?? "anonymous") };
      case "metadata":
        return { text: String(ctx.metadata.get("x-zsha-test")[0]) };
      case "peer":
        return { text: ctx.peer };
      default:
        return { text: request.text };
    }
  },
  async *echoStream(request, ctx) {
    seen.produced = 0;
    for (let index = 0; index < request.repeat; index++) {
      yield { text: request.text, index };
      seen.produced++;
    }
    if (request.failWithCode !== 0) throw new RpcError(request.failWithCode, "failed after the last message");
    if (request.text === "wait") await untilAborted(ctx);
  },
  async *echoChat(requests, ctx) {
    let index = 0;
    for await (const request of requests) {
      if (request.text === "wait") await untilAborted(ctx);
      yield { text: request.text, index: index++ };
    }
  },
};

function listen(server: grpc.Server, address: string, credentials: grpc.ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) =>
    server.bindAsync(address, credentials, (err, port) => (err ? reject(err) : resolve(port))),
  );
}

async function shutdown(server: grpc.Server): Promise<void> {
  const graceful = new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  const late = sleep(2_000).then(() => "late" as const);
  if ((await Promise.race([graceful, late])) === "late") server.forceShutdown();
}

async function rpcError(promise: Promise<unknown>): Promise<RpcError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RpcError);
  return err as RpcError;
}

async function collect<T>(iterable: AsyncIterable<T>): Promise<{ items: T[]; error: unknown }> {
  const items: T[] = [];
  try {
    for await (const item of iterable) items.push(item);
    return { items, error: undefined };
  } catch (error) {
    return { items, error };
  }
}

let dir: string;
let server: grpc.Server;
let tcpAddress: string;
let unixAddress: string;
let client: Client<Echo>;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "zsha-grpc-"));
  server = new grpc.Server({ "grpc.max_receive_message_length": SERVER_MAX_RECEIVE });
  addService(server, EchoService, echoImpl, {
    onUnexpectedError: (err, method) => seen.unexpected.push(`${method}: ${(err as Error).message}`),
  });
  const port = await listen(server, "127.0.0.1:0", grpc.ServerCredentials.createInsecure());
  tcpAddress = `127.0.0.1:${port}`;
  unixAddress = `unix:${join(dir, "echo.sock")}`;
  await listen(server, unixAddress, grpc.ServerCredentials.createInsecure());
  client = createClient(EchoService, tcpAddress, grpc.credentials.createInsecure());
});

afterAll(async () => {
  client?.close();
  if (server) await shutdown(server);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("unary", () => {
  it("returns the response", async () => {
    const response = await client.echo({ text: "hello" });
    expect(response.text).toBe("hello");
  });

  it("maps a thrown RpcError to its status code and sentence", async () => {
    const err = await rpcError(client.echo({ failWithCode: Code.NOT_FOUND }));
    expect(err.code).toBe(Code.NOT_FOUND);
    expect(err.message).toBe(`asked to fail with code ${Code.NOT_FOUND}`);
    expect(String(err)).toBe(`NOT_FOUND: asked to fail with code ${Code.NOT_FOUND}`);
  });

  it("maps any other thrown error to INTERNAL with its message, and reports it on the server", async () => {
    seen.unexpected.length = 0;
    const err = await rpcError(client.echo({ text: "crash" }));
    expect(err.code).toBe(Code.INTERNAL);
    expect(err.message).toBe("the handler crashed");
    expect(seen.unexpected).toEqual(["/zsha.testing.v1.EchoService/Echo: the handler crashed"]);
  });

  it("passes metadata and the peer address to the handler", async () => {
    const metadata = new grpc.Metadata();
    metadata.set("x-zsha-test", "carried");
    expect((await client.echo({ text: "metadata" }, { metadata })).text).toBe("carried");
    expect((await client.echo({ text: "peer" })).text).toMatch(/^127\.0\.0\.1:\d+$/);
    expect((await client.echo({ text: "whoami" })).text).toBe("anonymous");
  });

  it("fails with DEADLINE_EXCEEDED when the deadline passes, and the server's signal fires", async () => {
    const aborted = expectAbort();
    const started = Date.now();
    const err = await rpcError(client.echo({ text: "wait" }, { deadlineMs: 150 }));
    expect(err.code).toBe(Code.DEADLINE_EXCEEDED);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    const reason = await aborted;
    expect(reason).toBeInstanceOf(RpcError);
    expect((reason as RpcError).code).toBe(Code.DEADLINE_EXCEEDED);
  });

  it("cancels when the caller's signal aborts, and the server's signal fires", async () => {
    const aborted = expectAbort();
    const controller = new AbortController();
    const call = client.echo({ text: "wait" }, { signal: controller.signal });
    await sleep(50);
    controller.abort();
    expect((await rpcError(call)).code).toBe(Code.CANCELLED);
    expect(((await aborted) as RpcError).code).toBe(Code.CANCELLED);
    const err = await rpcError(client.echo({ text: "late" }, { signal: controller.signal }));
    expect(err.code).toBe(Code.CANCELLED);
  });

  it("refuses a request over the server's size limit with RESOURCE_EXHAUSTED", async () => {
    const err = await rpcError(client.echo({ text: "x".repeat(SERVER_MAX_RECEIVE + 1) }));
    expect(err.code).toBe(Code.RESOURCE_EXHAUSTED);
    // The server is still fine afterwards.
    expect((await client.echo({ text: "x".repeat(SERVER_MAX_RECEIVE - 100) })).text).toHaveLength(
      SERVER_MAX_RECEIVE - 100,
    );
  });

  it("refuses a response over the client's size limit with RESOURCE_EXHAUSTED", async () => {
    const small = createClient(EchoService, tcpAddress, grpc.credentials.createInsecure(), {
      maxReceiveMessageBytes: 1024,
    });
    try {
      expect((await small.echo({ text: "x".repeat(900) })).text).toHaveLength(900);
      const err = await rpcError(small.echo({ text: "x".repeat(4096) }));
      expect(err.code).toBe(Code.RESOURCE_EXHAUSTED);
    } finally {
      small.close();
    }
  });
});

describe("server streaming", () => {
  it("delivers N messages in order", async () => {
    const { items, error } = await collect(client.echoStream({ text: "s", repeat: 500 }));
    expect(error).toBeUndefined();
    expect(items.map((m) => m.index)).toEqual(Array.from({ length: 500 }, (_, i) => i));
  });

  it("delivers the messages sent before a failure, then the failure's code", async () => {
    const { items, error } = await collect(
      client.echoStream({ text: "s", repeat: 7, failWithCode: Code.FAILED_PRECONDITION }),
    );
    expect(items).toHaveLength(7);
    expect(error).toBeInstanceOf(RpcError);
    expect((error as RpcError).code).toBe(Code.FAILED_PRECONDITION);
    expect((error as RpcError).message).toBe("failed after the last message");
  });

  it("keeps messages and failure for a consumer that starts iterating after the call ended", async () => {
    const stream = client.echoStream({ text: "s", repeat: 3, failWithCode: Code.ABORTED });
    await sleep(200);
    const { items, error } = await collect(stream);
    expect(items).toHaveLength(3);
    expect((error as RpcError).code).toBe(Code.ABORTED);
  });

  it("cancels the call when the consumer stops iterating early", async () => {
    const aborted = expectAbort();
    for await (const message of client.echoStream({ text: "wait", repeat: 1 })) {
      expect(message.index).toBe(0);
      break;
    }
    expect(((await aborted) as RpcError).code).toBe(Code.CANCELLED);
  });

  it("holds the handler back while the client does not read (backpressure)", async () => {
    const repeat = 20_000;
    const text = "b".repeat(1024);
    const stream = client.echoStream({ text, repeat })[Symbol.asyncIterator]();
    expect((await stream.next()).value?.index).toBe(0);
    await sleep(300);
    const producedWhilePaused = seen.produced;
    let count = 1;
    for (let r = await stream.next(); !r.done; r = await stream.next()) count++;
    expect(count).toBe(repeat);
    // 20 MB would have been produced without flow control; buffers and HTTP/2 windows hold a few MB.
    expect(producedWhilePaused).toBeLessThan(repeat / 2);
    console.log(`backpressure: ${producedWhilePaused} of ${repeat} 1 KiB messages produced while paused`);
  });
});

describe("bidi streaming", () => {
  it("echoes 10,000 messages in order while sending and receiving at once", async () => {
    const total = 10_000;
    const chat = client.echoChat();
    const sending = (async () => {
      for (let i = 0; i < total; i++) await chat.send({ text: `m${i}` });
      chat.end();
    })();
    const started = Date.now();
    const { items, error } = await collect(chat.responses);
    await sending;
    expect(error).toBeUndefined();
    expect(items).toHaveLength(total);
    items.forEach((item, i) => {
      expect(item.index).toBe(i);
      expect(item.text).toBe(`m${i}`);
    });
    console.log(`bidi: ${total} round trips in ${Date.now() - started} ms`);
  });

  it("cancel() fails the responses with CANCELLED and fires the server's signal", async () => {
    const aborted = expectAbort();
    const chat = client.echoChat();
    await chat.send({ text: "first" });
    await chat.send({ text: "wait" });
    const responses = chat.responses[Symbol.asyncIterator]();
    expect((await responses.next()).value?.text).toBe("first");
    chat.cancel();
    const err = await rpcError(responses.next());
    expect(err.code).toBe(Code.CANCELLED);
    expect(((await aborted) as RpcError).code).toBe(Code.CANCELLED);
    await expect(chat.send({ text: "after" })).rejects.toMatchObject({ code: Code.CANCELLED });
  });

  it("send() waits while the server does not read (backpressure)", async () => {
    const aborted = expectAbort();
    const chat = client.echoChat();
    await chat.send({ text: "wait" });
    const total = 20_000;
    let accepted = 0;
    const sending = (async () => {
      for (let i = 0; i < total; i++) {
        await chat.send({ text: "b".repeat(1024) });
        accepted++;
      }
    })();
    await sleep(300);
    expect(accepted).toBeLessThan(total / 2);
    chat.cancel();
    await expect(sending).rejects.toMatchObject({ code: Code.CANCELLED });
    expect(((await aborted) as RpcError).code).toBe(Code.CANCELLED);
    console.log(
      `send backpressure: ${accepted} of ${total} 1 KiB messages accepted while the server stalled`,
    );
  });

  it("refuses send() after end()", async () => {
    const chat = client.echoChat();
    chat.end();
    await expect(chat.send({ text: "x" })).rejects.toThrow("send() after end()");
    expect((await collect(chat.responses)).items).toEqual([]);
  });
});

describe("unix socket", () => {
  it("serves unary and bidi calls", async () => {
    const local = createClient(EchoService, unixAddress, grpc.credentials.createInsecure());
    try {
      expect((await local.echo({ text: "over unix" })).text).toBe("over unix");
      const chat = local.echoChat();
      await chat.send({ text: "a" });
      await chat.send({ text: "b" });
      chat.end();
      expect((await collect(chat.responses)).items.map((m) => m.text)).toEqual(["a", "b"]);
    } finally {
      local.close();
    }
  });

  it("lets several clients share one channel that outlives them", async () => {
    const channel = new grpc.Channel(unixAddress, grpc.credentials.createInsecure(), {});
    try {
      const a = createClient(EchoService, channel);
      const b = createClient(EchoService, channel);
      expect((await a.echo({ text: "a" })).text).toBe("a");
      a.close();
      expect((await b.echo({ text: "b" })).text).toBe("b");
    } finally {
      channel.close();
    }
  });
});

describe("mutual TLS", () => {
  let tlsServer: grpc.Server;
  let tlsAddress: string;
  let pem: Record<"ca" | "serverKey" | "serverCert" | "clientKey" | "clientCert", Buffer>;

  beforeAll(async () => {
    pem = await makeCertificates(dir);
    tlsServer = new grpc.Server();
    addService(tlsServer, EchoService, echoImpl);
    const credentials = grpc.ServerCredentials.createSsl(
      pem.ca,
      [{ private_key: pem.serverKey, cert_chain: pem.serverCert }],
      true,
    );
    tlsAddress = `127.0.0.1:${await listen(tlsServer, "127.0.0.1:0", credentials)}`;
  });

  afterAll(async () => {
    if (tlsServer) await shutdown(tlsServer);
  });

  it("gives the handler the client's certificate", async () => {
    const credentials = grpc.credentials.createSsl(pem.ca, pem.clientKey, pem.clientCert);
    // The server certificate names "localhost"; the override checks it while dialing the bare IP.
    const secure = createClient(EchoService, tlsAddress, credentials, {
      channelOptions: { "grpc.ssl_target_name_override": "localhost" },
    });
    try {
      expect((await secure.echo({ text: "whoami" })).text).toBe("zsha-test-client");
    } finally {
      secure.close();
    }
  });

  it("fails with UNAVAILABLE when the client does not trust the server", async () => {
    const insecure = createClient(EchoService, tlsAddress, grpc.credentials.createInsecure());
    try {
      expect((await rpcError(insecure.echo({ text: "x" }, { deadlineMs: 5_000 }))).code).toBe(
        Code.UNAVAILABLE,
      );
    } finally {
      insecure.close();
    }
  });
});

describe("addService", () => {
  it("names the missing handler", () => {
    const { echoChat: _, ...partial } = echoImpl;
    expect(() => addService(new grpc.Server(), EchoService, partial as ServiceImpl<Echo>)).toThrow(
      "addService: impl.echoChat must be the handler of /zsha.testing.v1.EchoService/EchoChat",
    );
  });

  it("infers request and response types from the descriptor", () => {
    // Compile-time checks: `npm run typecheck` fails if the adapter's types stop following the descriptor.
    const typed = (c: Client<Echo>) => {
      // @ts-expect-error: EchoRequest has no field `nope`.
      void c.echo({ nope: 1 });
      // @ts-expect-error: the bidi method takes options, not a request.
      void c.echoChat({ text: "x" });
      return c.echo({ text: "x" }).then((r) => r.text satisfies string);
    };
    expect(typeof typed).toBe("function");
  });
});

/** A throwaway CA with one server certificate (for localhost) and one client certificate, via openssl. */
async function makeCertificates(
  into: string,
): Promise<Record<"ca" | "serverKey" | "serverCert" | "clientKey" | "clientCert", Buffer>> {
  const at = (name: string) => join(into, name);
  const openssl = (...args: string[]) => execFileSync("openssl", args, { stdio: "pipe" });
  const key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  openssl(
    "req",
    "-x509",
    ...key,
    "-keyout",
    at("ca.key"),
    "-out",
    at("ca.crt"),
    "-days",
    "1",
    "-subj",
    "/CN=zsha-test-ca",
  );
  await writeFile(at("server.ext"), "subjectAltName=DNS:localhost\n");
  for (const [name, cn] of [
    ["server", "zsha-test-server"],
    ["client", "zsha-test-client"],
  ] as const) {
    openssl("req", ...key, "-keyout", at(`${name}.key`), "-out", at(`${name}.csr`), "-subj", `/CN=${cn}`);
    const ext = name === "server" ? ["-extfile", at("server.ext")] : [];
    openssl(
      "x509",
      "-req",
      "-in",
      at(`${name}.csr`),
      "-CA",
      at("ca.crt"),
      "-CAkey",
      at("ca.key"),
      "-CAcreateserial",
      "-out",
      at(`${name}.crt`),
      "-days",
      "1",
      ...ext,
    );
  }
  return {
    ca: await readFile(at("ca.crt")),
    serverKey: await readFile(at("server.key")),
    serverCert: await readFile(at("server.crt")),
    clientKey: await readFile(at("client.key")),
    clientCert: await readFile(at("client.crt")),
  };
}
