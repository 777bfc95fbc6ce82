// One member's side of the peer network: an outgoing stream per peer (outbound.ts) and the RaftService
// handler for the streams other members open to it (inbound.ts). Raft tolerates lost messages, so nothing
// here blocks or throws for a peer that is down: messages wait in a bounded queue or are dropped, and Raft
// hears about it through onUnreachable / onSnapshotStatus.
import type * as grpc from "@grpc/grpc-js";
import { RaftService } from "../gen/zsha/raft/v1/raft_pb.js";
import { addService, Code, RpcError } from "../grpc/index.js";
import { isLocalMessage, type Message, type NodeId, nodeId } from "../raft/index.js";
import { type InboundHost, serveStream } from "./inbound.js";
import { errorFields, type Log, toLog } from "./log.js";
import type { Settings, TransportOptions } from "./options.js";
import { settings as checkSettings, FRAME_OVERHEAD_BYTES } from "./options.js";
import { type OutboundHost, PeerLink, type PeerStats } from "./outbound.js";

export class Transport {
  readonly selfId: NodeId;
  readonly settings: Settings;
  private readonly log: Log;
  private readonly links = new Map<NodeId, PeerLink>();
  /** When each peer's full queue was last logged, and the sends dropped since (one line per 30 s). */
  private readonly fullLogged = new Map<NodeId, { at: number; calls: number }>();
  /** The open incoming stream of each peer, ended when a newer one arrives or the peer is removed. */
  private readonly inbound = new Map<NodeId, AbortController>();
  private readonly closing = new AbortController();
  private readonly outboundHost: OutboundHost;
  private readonly inboundHost: InboundHost;

  constructor(options: TransportOptions) {
    this.settings = checkSettings(options);
    this.selfId = nodeId(options.selfId);
    this.log = toLog(options.logger);
    const report = (what: string, call: () => void) => {
      try {
        call();
      } catch (err) {
        this.log("error", { callback: what, ...errorFields(err) }, "transport.callback_failed");
      }
    };
    this.outboundHost = {
      selfId: this.selfId,
      clusterId: options.clusterId,
      tls: options.tls,
      settings: this.settings,
      log: this.log,
      random: options.random ?? Math.random,
      unreachable: (peer) => report("onUnreachable", () => options.onUnreachable?.(peer)),
      snapshotStatus: (peer, ok) => report("onSnapshotStatus", () => options.onSnapshotStatus?.(peer, ok)),
    };
    this.inboundHost = {
      selfId: this.selfId,
      clusterId: options.clusterId,
      requireCertificate: options.tls !== undefined,
      maxSnapshotBytes: this.settings.maxSnapshotBytes,
      log: this.log,
      closing: this.closing.signal,
      isPeer: (id) => this.links.has(id),
      deliver: (m) => options.onMessage(m),
      attach: (from) => this.attachInbound(from),
    };
  }

  /**
   * Serves RaftService on `server`. The member binds the server (with serverCredentials(tls) when TLS is
   * on) and creates it with serverOptions(), so that the largest frames fit.
   */
  register(server: grpc.Server): void {
    addService(
      server,
      RaftService,
      { stream: (requests, ctx) => serveStream(requests, ctx, this.inboundHost) },
      {
        onUnexpectedError: (err) => this.log("error", errorFields(err), "transport.handler_failed"),
      },
    );
  }

  /**
   * grpc-js server options a member's server needs: room for this transport's largest frames, and
   * keepalive pings so that the stream of a vanished peer ends instead of lingering.
   */
  serverOptions(): grpc.ServerOptions {
    return {
      "grpc.max_receive_message_length": this.settings.maxMessageBytes + FRAME_OVERHEAD_BYTES,
      "grpc.keepalive_time_ms": this.settings.keepaliveMs,
      "grpc.keepalive_timeout_ms": Math.ceil(this.settings.keepaliveMs / 2),
    };
  }

  addPeer(id: string, address: string): void {
    const peer = this.checkPeer(id, address);
    const known = this.links.get(peer);
    if (known) {
      if (known.stats().address === address) return;
      throw new Error(`peer '${id}' is already added at ${known.stats().address}; use updatePeer to move it`);
    }
    this.links.set(peer, new PeerLink(peer, address, this.outboundHost));
    this.log("info", { peer, address }, "transport.peer_added");
  }

  updatePeer(id: string, address: string): void {
    const peer = this.checkPeer(id, address);
    const link = this.links.get(peer);
    if (!link) throw new Error(`peer '${id}' is not known; add it with addPeer first`);
    link.retarget(address);
  }

  /** Stops sending to `id` and ends its incoming stream; further streams from it are refused. */
  async removePeer(id: string): Promise<void> {
    const peer = nodeId(id);
    const link = this.links.get(peer);
    if (!link) return;
    this.links.delete(peer);
    this.inbound.get(peer)?.abort(new RpcError(Code.NOT_FOUND, `'${peer}' was removed from the peers`));
    await link.stop();
    this.log("info", { peer }, "transport.peer_removed");
  }

  /**
   * Queues each message for its peer and returns at once. A message for an unknown peer, a local message
   * or one over the size limit is dropped with a log line; a full queue drops the new message and reports
   * the peer unreachable (once per call), like etcd's rafthttp: the oldest queued messages are already in
   * order on their way, and Raft recovers from a gap by probing.
   */
  send(msgs: readonly Message[]): void {
    const full = new Set<NodeId>();
    for (const m of msgs) {
      const link = this.links.get(m.to);
      if (!link || isLocalMessage(m.type) || m.to === this.selfId) {
        this.log("debug", { peer: m.to, type: m.type }, "transport.message_unroutable");
        continue;
      }
      if (link.enqueue(m) === "full") full.add(m.to);
    }
    const now = performance.now();
    for (const peer of full) {
      // A peer that is down fills its queue on every heartbeat: one line per 30 s, not ten per second.
      const last = this.fullLogged.get(peer);
      if (!last || now - last.at >= 30_000) {
        const limit = this.settings.queueLimit;
        this.log("warn", { peer, limit, fullSinceLastLine: last?.calls ?? 0 }, "transport.queue_full");
        this.fullLogged.set(peer, { at: now, calls: 0 });
      } else {
        last.calls++;
      }
      this.outboundHost.unreachable(peer);
    }
  }

  stats(): Map<NodeId, PeerStats> {
    return new Map([...this.links].map(([id, link]) => [id, link.stats()]));
  }

  /** Ends every stream, both ways, so that the member's server can shut down without waiting on peers. */
  async close(): Promise<void> {
    if (this.closing.signal.aborted) return;
    this.closing.abort(new RpcError(Code.UNAVAILABLE, `member '${this.selfId}' is shutting down`));
    for (const controller of this.inbound.values()) controller.abort(this.closing.signal.reason);
    const links = [...this.links.values()];
    this.links.clear();
    await Promise.all(links.map((link) => link.stop()));
  }

  private checkPeer(id: string, address: string): NodeId {
    if (this.closing.signal.aborted) throw new Error("the transport is closed");
    if (typeof id !== "string" || id === "") throw new Error("peer id must be a non-empty member id");
    if (id === this.selfId) throw new Error(`peer id '${id}' is this member's own id`);
    if (typeof address !== "string" || address === "") {
      throw new Error(`address of peer '${id}' must be host:port`);
    }
    return nodeId(id);
  }

  private attachInbound(from: NodeId): { signal: AbortSignal; release(): void } {
    const controller = new AbortController();
    if (this.closing.signal.aborted) controller.abort(this.closing.signal.reason);
    const older = this.inbound.get(from);
    if (older) {
      // Normal after the peer reconnected; constant replacing means two members run under one id.
      this.log("info", { peer: from }, "transport.inbound_replaced");
      older.abort(new RpcError(Code.CANCELLED, `a newer stream from '${from}' replaced this one`));
    }
    this.inbound.set(from, controller);
    return {
      signal: controller.signal,
      release: () => {
        if (this.inbound.get(from) === controller) this.inbound.delete(from);
      },
    };
  }
}
