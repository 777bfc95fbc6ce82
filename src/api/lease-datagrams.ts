// The member's side of lease renewals by datagram (see src/client/lease-datagrams.ts for why they exist):
// checks each request's MAC, freshness and sequence, renews through `renew` (the leader's lessor, or a
// forward to the leader) and answers the sender. A request it cannot serve (no key yet, no leader known, the
// forward failed) gets no answer: the owner's re-sends and the other members cover it.

import { createSocket, type Socket } from "node:dgram";
import { decodeRequest, encodeReply, splitHostPort } from "../client/lease-datagrams.js";

/** How far a request's sender clock may be from ours (the installer sets up chrony on every node). */
const MAX_CLOCK_SKEW_MS = 30_000;
const SESSION_IDLE_MS = 120_000;

export interface LeaseDatagramServerOptions {
  /** "host:port" to listen on (the peer endpoint's address: same host, same port number, UDP). */
  readonly listen: string;
  /** Renews lease `id`: its TTL in seconds (0: gone), or undefined when it cannot tell now. */
  readonly renew: (id: bigint) => Promise<number | undefined>;
  readonly onError?: (err: Error) => void;
}

export class LeaseDatagramServer {
  private key: Uint8Array | undefined;
  /** Highest sequence number seen per sender session (hex), and when: replays and reorders are dropped. */
  private readonly sessions = new Map<string, { seq: number; atMs: number }>();

  private constructor(
    private readonly socket: Socket,
    private readonly opts: LeaseDatagramServerOptions,
  ) {
    socket.on("message", (msg, rinfo) => void this.onRequest(msg, rinfo.address, rinfo.port));
    socket.on("error", (e) => opts.onError?.(e));
  }

  static async listen(opts: LeaseDatagramServerOptions): Promise<LeaseDatagramServer> {
    const { host, port } = splitHostPort(opts.listen);
    const socket = createSocket({ type: host.includes(":") ? "udp6" : "udp4" });
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.bind(port, host, () => {
        socket.off("error", reject);
        resolve();
      });
    });
    return new LeaseDatagramServer(socket, opts);
  }

  /** The cluster's renewal key (from the replicated store); until it is set, requests are ignored. */
  setKey(key: Uint8Array): void {
    this.key = key;
  }

  get port(): number {
    return this.socket.address().port;
  }

  private async onRequest(msg: Buffer, address: string, port: number): Promise<void> {
    const key = this.key;
    if (!key) return;
    const r = decodeRequest(key, msg);
    if (!r) return;
    const now = Date.now();
    if (Math.abs(now - r.sentAtWallMs) > MAX_CLOCK_SKEW_MS) return;
    const session = r.session.toString("hex");
    const seen = this.sessions.get(session);
    if (seen && r.seq <= seen.seq) return;
    this.sessions.set(session, { seq: r.seq, atMs: now });
    if (this.sessions.size > 64) this.forgetIdle(now);
    let ttl: number | undefined;
    try {
      ttl = await this.opts.renew(r.leaseId);
    } catch {
      return;
    }
    if (ttl === undefined) return;
    this.socket.send(encodeReply(key, { session: r.session, seq: r.seq, ttl }), port, address);
  }

  private forgetIdle(now: number): void {
    for (const [s, v] of this.sessions) if (now - v.atMs > SESSION_IDLE_MS) this.sessions.delete(s);
  }

  close(): Promise<void> {
    return new Promise((r) => this.socket.close(() => r()));
  }
}
