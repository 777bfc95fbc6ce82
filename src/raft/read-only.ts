// ReadIndex bookkeeping on the leader (Raft thesis §6.4): each read records the commit index when it
// arrived; it may be served once a heartbeat round that began after it was acknowledged by a quorum.
// Reads are batched: one quorum round releases every read queued before it.

import type { Index, Message, NodeId } from "./types.js";

export interface ReadIndexStatus {
  readonly req: Message;
  readonly index: Index;
  readonly acks: Set<NodeId>;
  /** The context the heartbeats of this read carry: its sender and request id, unique on this leader. */
  readonly heartbeatCtx: Uint8Array;
}

const enc = new TextEncoder();

/**
 * Request ids are chosen by each caller, so two members may use the same one: the heartbeat context names
 * the sender too (sender bytes, a zero byte, the request id).
 */
export function heartbeatCtx(m: Message): Uint8Array {
  const from = enc.encode(m.from);
  const out = new Uint8Array(from.length + 1 + m.context.length);
  out.set(from, 0);
  out.set(m.context, from.length + 1);
  return out;
}

export function ctxKey(ctx: Uint8Array): string {
  let s = "";
  for (const b of ctx) s += b.toString(16).padStart(2, "0");
  return s;
}

export class ReadOnly {
  private pending = new Map<string, ReadIndexStatus>();
  private queue: string[] = [];

  /** Queues a read; returns the context its heartbeats carry (an existing one for a duplicate). */
  addRequest(index: Index, m: Message): Uint8Array {
    const hb = heartbeatCtx(m);
    const key = ctxKey(hb);
    const existing = this.pending.get(key);
    if (existing) return existing.heartbeatCtx;
    this.pending.set(key, { req: m, index, acks: new Set(), heartbeatCtx: hb });
    this.queue.push(key);
    return hb;
  }

  /** Records that `from` answered the heartbeat carrying `ctx`; returns the acks so far. */
  recvAck(from: NodeId, ctx: Uint8Array): ReadonlySet<NodeId> | undefined {
    const rs = this.pending.get(ctxKey(ctx));
    if (!rs) return undefined;
    rs.acks.add(from);
    return rs.acks;
  }

  /** Dequeues and returns every read up to and including the one with `ctx`. */
  advance(ctx: Uint8Array): ReadIndexStatus[] {
    const key = ctxKey(ctx);
    const at = this.queue.indexOf(key);
    if (at < 0) return [];
    const released = this.queue.slice(0, at + 1).map((k) => this.pending.get(k)!);
    for (const k of this.queue.slice(0, at + 1)) this.pending.delete(k);
    this.queue = this.queue.slice(at + 1);
    return released;
  }

  lastPendingRequestCtx(): Uint8Array | undefined {
    const key = this.queue[this.queue.length - 1];
    return key === undefined ? undefined : this.pending.get(key)!.heartbeatCtx;
  }

  pendingCount(): number {
    return this.queue.length;
  }
}
