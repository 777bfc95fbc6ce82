// Members for transport tests: a real grpc-js server on 127.0.0.1 with a Transport registered on it, and
// what that transport reported, recorded for the assertions.
import * as grpc from "@grpc/grpc-js";
import { type Message, MessageType, message, type NodeId, nodeId, term } from "../../src/raft/index.js";
import { serverCredentials, Transport, type TransportOptions } from "../../src/transport/index.js";

export interface Member {
  readonly id: NodeId;
  readonly transport: Transport;
  readonly server: grpc.Server;
  readonly address: string;
  readonly received: Message[];
  readonly unreachable: NodeId[];
  readonly snapshotStatus: { peer: NodeId; ok: boolean }[];
  readonly logs: { level: string; event: string; fields: object }[];
  stop(): Promise<void>;
}

export type MemberOptions = Partial<Omit<TransportOptions, "selfId" | "onMessage">> & {
  /** Port to listen on (0: any free port). */
  readonly port?: number;
};

export async function startMember(id: string, options: MemberOptions = {}): Promise<Member> {
  const received: Message[] = [];
  const unreachable: NodeId[] = [];
  const snapshotStatus: { peer: NodeId; ok: boolean }[] = [];
  const logs: { level: string; event: string; fields: object }[] = [];
  const { port = 0, ...rest } = options;
  const transport = new Transport({
    clusterId: "test-cluster",
    backoff: { initialMs: 20, maxMs: 200 },
    ...rest,
    selfId: id,
    onMessage: (m) => received.push(m),
    onUnreachable: (peer) => unreachable.push(peer),
    onSnapshotStatus: (peer, ok) => snapshotStatus.push({ peer, ok }),
    logger: (level, fields, event) => logs.push({ level, event, fields }),
  });
  const server = new grpc.Server(transport.serverOptions());
  transport.register(server);
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, serverCredentials(options.tls), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  let stopped = false;
  return {
    id: nodeId(id),
    transport,
    server,
    address: `127.0.0.1:${bound}`,
    received,
    unreachable,
    snapshotStatus,
    logs,
    async stop() {
      if (stopped) return;
      stopped = true;
      await transport.close();
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    },
  };
}

/** Each member learns every other one as a peer. */
export function connectAll(members: readonly Member[]): void {
  for (const a of members) for (const b of members) if (a !== b) a.transport.addPeer(b.id, b.address);
}

/** A heartbeat-sized message numbered by `commit`, so that order and loss are visible. */
export function numbered(from: string, to: string, n: number, data?: Uint8Array): Message {
  return message({
    type: data ? MessageType.App : MessageType.Heartbeat,
    from: nodeId(from),
    to: nodeId(to),
    term: term(1),
    commit: n as Message["commit"],
    ...(data ? { entries: [{ term: term(1), index: n as Message["index"], type: 0, data }] } : {}),
  });
}

/** Polls `condition` until it holds, or fails after `ms` saying what was awaited. */
export async function until(what: string, condition: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
