// Lease renewals as UDP datagrams, sent to every other member at once and re-sent every few hundred
// milliseconds until one answers (SPEC §3a: 250 ms each way with 30 % loss on the owner's storage network must
// not cost it the MN-VM). A TCP stream on such a link sits in retransmission back-off for seconds, and every
// request queued behind the lost segment waits with it; independent datagrams do not: each has its own ~50 %
// chance, and a dozen of them within the owner's four seconds practically always get one through.
//
// Datagrams carry an HMAC (SHA-256, truncated to 16 bytes) under a cluster key kept in the replicated store:
// a forged answer could make an owner believe it still holds its lease (two running copies), a forged request
// could keep a dead owner's lease alive. Requests also carry the sender's wall clock and a sequence number per
// sender session, so a captured request cannot be replayed later to hold a lease.

import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { createSocket, type Socket } from "node:dgram";

const MAGIC = 0x5a4b4131; // "ZKA1"
const REQUEST = 1;
const REPLY = 2;
const MAC_BYTES = 16;
/** magic, type, session, seq, sent-at wall clock (ms), lease id. */
const REQUEST_BODY = 4 + 1 + 8 + 4 + 8 + 8;
/** magic, type, session, seq, ttl (seconds; 0: the lease is gone). */
const REPLY_BODY = 4 + 1 + 8 + 4 + 4;

export interface RenewalRequest {
  readonly session: Buffer;
  readonly seq: number;
  readonly sentAtWallMs: number;
  readonly leaseId: bigint;
}

export interface RenewalReply {
  readonly session: Buffer;
  readonly seq: number;
  readonly ttl: number;
}

function mac(key: Uint8Array, body: Buffer): Buffer {
  return createHmac("sha256", key).update(body).digest().subarray(0, MAC_BYTES);
}

function sealed(key: Uint8Array, body: Buffer): Buffer {
  return Buffer.concat([body, mac(key, body)]);
}

/** The body of a datagram of `type` and `size` whose MAC checks out under `key`, else undefined. */
function opened(key: Uint8Array, msg: Buffer, type: number, size: number): Buffer | undefined {
  if (msg.length !== size + MAC_BYTES || msg.readUInt32BE(0) !== MAGIC || msg[4] !== type) return undefined;
  const body = msg.subarray(0, size);
  return timingSafeEqual(mac(key, body), msg.subarray(size)) ? body : undefined;
}

export function encodeRequest(key: Uint8Array, r: RenewalRequest): Buffer {
  const b = Buffer.alloc(REQUEST_BODY);
  b.writeUInt32BE(MAGIC, 0);
  b[4] = REQUEST;
  r.session.copy(b, 5, 0, 8);
  b.writeUInt32BE(r.seq >>> 0, 13);
  b.writeDoubleBE(r.sentAtWallMs, 17);
  b.writeBigUInt64BE(r.leaseId, 25);
  return sealed(key, b);
}

export function decodeRequest(key: Uint8Array, msg: Buffer): RenewalRequest | undefined {
  const b = opened(key, msg, REQUEST, REQUEST_BODY);
  if (!b) return undefined;
  return {
    session: Buffer.from(b.subarray(5, 13)),
    seq: b.readUInt32BE(13),
    sentAtWallMs: b.readDoubleBE(17),
    leaseId: b.readBigUInt64BE(25),
  };
}

export function encodeReply(key: Uint8Array, r: RenewalReply): Buffer {
  const b = Buffer.alloc(REPLY_BODY);
  b.writeUInt32BE(MAGIC, 0);
  b[4] = REPLY;
  r.session.copy(b, 5, 0, 8);
  b.writeUInt32BE(r.seq >>> 0, 13);
  b.writeUInt32BE(Math.max(0, Math.min(0xffffffff, Math.floor(r.ttl))), 17);
  return sealed(key, b);
}

export function decodeReply(key: Uint8Array, msg: Buffer): RenewalReply | undefined {
  const b = opened(key, msg, REPLY, REPLY_BODY);
  if (!b) return undefined;
  return { session: Buffer.from(b.subarray(5, 13)), seq: b.readUInt32BE(13), ttl: b.readUInt32BE(17) };
}

/** "host:port" or "[v6]:port" → its parts. */
export function splitHostPort(address: string): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(address);
  if (!m) throw new Error(`not a host:port address: '${address}'`);
  return { host: m[1]!, port: Number(m[2]) };
}

export interface LeaseDatagramClientOptions {
  /** The members to send to ("host:port" of their peer endpoints; the UDP port is the same number). */
  readonly targets: () => readonly string[];
  /** The cluster's renewal key, undefined until it is known. */
  readonly key: () => Uint8Array | undefined;
  /** How often a renewal is sent again while no member answered (ms). */
  readonly resendMs?: number;
}

interface Pending {
  readonly seqs: Set<number>;
  resolve(ttl: bigint): void;
}

/** The owner's side: one socket, one session; `keepAlive` resolves with the first answer any member gives. */
export class LeaseDatagramClient {
  private readonly session = randomBytes(8);
  private seq = 0;
  private readonly pending = new Map<number, Pending>();
  private sockets = new Map<"udp4" | "udp6", Socket>();
  private closed = false;

  constructor(private readonly opts: LeaseDatagramClientOptions) {}

  private socket(family: "udp4" | "udp6"): Socket {
    let s = this.sockets.get(family);
    if (!s) {
      s = createSocket(family);
      s.on("message", (msg) => this.onMessage(msg));
      // A send to an unreachable member errors on some systems: the other members and the re-sends cover it.
      s.on("error", () => {});
      s.unref();
      this.sockets.set(family, s);
    }
    return s;
  }

  private onMessage(msg: Buffer): void {
    const key = this.opts.key();
    if (!key) return;
    const r = decodeReply(key, msg);
    if (!r?.session.equals(this.session)) return;
    const p = this.pending.get(r.seq);
    if (p) p.resolve(BigInt(r.ttl));
  }

  /**
   * Renews lease `id` through the other members; resolves with the TTL the leader granted (0: the lease is
   * gone), rejects when no member answered within `deadlineMs`.
   */
  keepAlive(id: bigint, o: { deadlineMs: number }): Promise<bigint> {
    const key = this.opts.key();
    if (this.closed) return Promise.reject(new Error("lease datagram client closed"));
    if (!key) return Promise.reject(new Error("no lease renewal key known yet"));
    const resendMs = this.opts.resendMs ?? 150;
    return new Promise<bigint>((resolve, reject) => {
      const seqs = new Set<number>();
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        clearTimeout(deadline);
        clearTimeout(timer);
        for (const s of seqs) this.pending.delete(s);
      };
      const p: Pending = {
        seqs,
        resolve: (ttl) => {
          done();
          resolve(ttl);
        },
      };
      const deadline = setTimeout(() => {
        done();
        reject(new Error(`no member answered the lease renewal within ${o.deadlineMs} ms`));
      }, o.deadlineMs);
      const send = () => {
        if (this.closed) return;
        this.seq = (this.seq + 1) >>> 0;
        const seq = this.seq;
        seqs.add(seq);
        this.pending.set(seq, p);
        const msg = encodeRequest(key, { session: this.session, seq, sentAtWallMs: Date.now(), leaseId: id });
        for (const t of this.opts.targets()) {
          const { host, port } = splitHostPort(t);
          this.socket(host.includes(":") ? "udp6" : "udp4").send(msg, port, host);
        }
        timer = setTimeout(send, resendMs);
      };
      send();
    });
  }

  close(): void {
    this.closed = true;
    for (const s of this.sockets.values()) s.close();
    this.sockets.clear();
  }
}
