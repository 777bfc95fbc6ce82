// The member's gRPC servers: the peer endpoint (Raft streams plus the client API, mutual TLS when
// configured) and the local client endpoints (a root-only unix socket, an optional TCP address).

import { chmod, mkdir, rm } from "node:fs/promises";
import { dirname } from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as clusterpb from "../gen/zsha/cluster/v1/cluster_pb.js";
import * as hapb from "../gen/zsha/ha/v1/ha_pb.js";
import * as kvpb from "../gen/zsha/kv/v1/kv_pb.js";
import { addService } from "../grpc/index.js";
import { leaseId } from "../kv/index.js";
import { Member } from "../server/member.js";
import type { MemberOptions } from "../server/options.js";
import { serverCredentials } from "../transport/index.js";
import { clusterService } from "./cluster-service.js";
import { LeaderForwarder } from "./forward.js";
import { haService } from "./ha-service.js";
import { kvService, leaseService, watchService } from "./kv-service.js";
import { LeaseDatagramServer } from "./lease-datagrams.js";
import { StorageFacts, type StorageProbe } from "./storage-facts.js";

export interface RunningMember {
  readonly member: Member;
  /**
   * The HA agent hands its image store over, so that status can report storage health and host I/O: they
   * are observed in the background from then on (StorageFacts), never per status request.
   */
  setStorage(probe: StorageProbe): void;
  /** Hands the cluster's lease-renewal key to the datagram endpoint (src/client/lease-datagrams.ts). */
  setLeaseRenewalKey(key: Uint8Array): void;
  /** The bound peer address (useful with port 0). */
  readonly peerAddress: string;
  readonly clientAddress?: string;
  stop(): Promise<void>;
}

function bind(server: grpc.Server, address: string, creds: grpc.ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) =>
    server.bindAsync(address, creds, (err, port) =>
      err ? reject(new Error(`cannot listen on ${address}: ${err.message}`)) : resolve(port),
    ),
  );
}

function addApi(
  server: grpc.Server,
  member: Member,
  fwd: LeaderForwarder,
  storage: () => StorageFacts | undefined,
): void {
  const onUnexpectedError = (err: unknown, method: string) =>
    member.log.error({ err: (err as Error).message, method }, "api.unexpected-error");
  addService(server, kvpb.KVService, kvService(member), { onUnexpectedError });
  addService(server, kvpb.WatchService, watchService(member), { onUnexpectedError });
  addService(server, kvpb.LeaseService, leaseService(member, fwd), { onUnexpectedError });
  addService(server, clusterpb.ClusterService, clusterService(member, fwd), { onUnexpectedError });
  addService(server, hapb.HaService, haService(member, storage), { onUnexpectedError });
}

/** Starts a member with its servers. */
export async function runMember(opts: MemberOptions): Promise<RunningMember> {
  const member = await Member.start(opts);
  const fwd = new LeaderForwarder(member);
  let facts: StorageFacts | undefined;
  const storage = () => facts;
  const grpcOpts: grpc.ServerOptions = {
    "grpc.max_receive_message_length": 8 << 20,
    "grpc.max_send_message_length": 64 << 20,
    ...member.transport.serverOptions(),
  };
  const peer = new grpc.Server(grpcOpts);
  member.transport.register(peer);
  addApi(peer, member, fwd, storage);
  const peerPort = await bind(peer, member.opts.peerListen, serverCredentials(member.opts.tls));
  const servers = [peer];
  let clientAddress: string | undefined;
  if (member.opts.clientListen || member.opts.clientSocket) {
    const client = new grpc.Server(grpcOpts);
    addApi(client, member, fwd, storage);
    if (member.opts.clientListen) {
      const port = await bind(client, member.opts.clientListen, grpc.ServerCredentials.createInsecure());
      clientAddress = member.opts.clientListen.replace(/:0$/, `:${port}`);
    }
    if (member.opts.clientSocket) {
      const path = member.opts.clientSocket;
      // Only root may talk to the agent: the socket lives in a 0700 folder and is itself 0600.
      await mkdir(dirname(path), { recursive: true, mode: 0o700 });
      await rm(path, { force: true });
      await bind(client, `unix:${path}`, grpc.ServerCredentials.createInsecure());
      await chmod(path, 0o600);
    }
    servers.push(client);
  }
  const peerAddress = member.opts.peerListen.replace(/:0$/, `:${peerPort}`);
  const datagrams = await leaseDatagrams(member, fwd, peerAddress);
  member.log.info(
    { peer: peerAddress, client: clientAddress, socket: member.opts.clientSocket },
    "member.listening",
  );
  return {
    member,
    setStorage(p) {
      void facts?.stop();
      facts = StorageFacts.start(p);
    },
    setLeaseRenewalKey(key) {
      datagrams?.setKey(key);
    },
    peerAddress,
    ...(clientAddress ? { clientAddress } : {}),
    async stop() {
      await facts?.stop();
      await member.stop();
      await datagrams?.close();
      fwd.close();
      await Promise.all(servers.map((s) => new Promise<void>((r) => s.tryShutdown(() => r()))));
      for (const s of servers) s.forceShutdown();
    },
  };
}

/**
 * Lease renewals by datagram on the peer port's number (UDP): answered from the leader's lessor here or
 * forwarded to the leader. Without it renewals still work over the gRPC paths, so a port taken is a warning.
 */
async function leaseDatagrams(
  member: Member,
  fwd: LeaderForwarder,
  listen: string,
): Promise<LeaseDatagramServer | undefined> {
  try {
    return await LeaseDatagramServer.listen({
      listen,
      async renew(id) {
        if (id <= 0n || id >= 1n << 63n) return undefined;
        if (member.isLeader()) return member.lessor.keepAlive(leaseId(id), performance.now()) ?? 0;
        if (!member.leaderPeer()) return undefined;
        return Number(await fwd.leader().leaseKeepAliveOnce(id, { deadlineMs: 1500 }));
      },
      onError: (err) => member.log.warn({ err: err.message }, "member.lease-datagram-error"),
    });
  } catch (e) {
    member.log.warn({ listen, err: (e as Error).message }, "member.lease-datagrams-unavailable");
    return undefined;
  }
}
