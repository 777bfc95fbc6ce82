// Calls only the leader can answer (lease keep-alives and time-to-live, membership changes) are forwarded
// from a follower to the leader's peer endpoint, over the same mutual TLS as Raft traffic.

import { KvClient } from "../client/kv-client.js";
import { Code, RpcError } from "../grpc/index.js";
import type { Member } from "../server/member.js";
import { clientChannelOptions, clientCredentials } from "../transport/tls.js";

export class LeaderForwarder {
  private clients = new Map<string, KvClient>();

  constructor(private readonly member: Member) {}

  /** A client to the current leader, or UNAVAILABLE when there is none known. */
  leader(): KvClient {
    const peer = this.member.leaderPeer();
    if (!peer) {
      throw new RpcError(
        Code.UNAVAILABLE,
        `member ${this.member.name} knows no leader right now (election in progress); retry`,
      );
    }
    const key = `${peer.name}@${peer.address}`;
    let c = this.clients.get(key);
    if (!c) {
      const tls = this.member.opts.tls;
      c = new KvClient({
        endpoints: [peer.address],
        credentials: clientCredentials(tls, peer.name),
        channelOptions: {
          ...clientChannelOptions(tls, peer.name),
          // grpc-js backs reconnects off up to two minutes: a member that was down a while and is now the
          // leader would stay unreachable from here that long (seen: a 40 s failover in the e2e run).
          "grpc.initial_reconnect_backoff_ms": 100,
          "grpc.max_reconnect_backoff_ms": 1000,
        },
        deadlineMs: this.member.opts.requestTimeoutMs,
      });
      this.clients.set(key, c);
    }
    return c;
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}
