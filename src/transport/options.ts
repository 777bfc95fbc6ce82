// What a Transport is configured with, its defaults, and the check that names the first bad field.
import type { Message, NodeId } from "../raft/index.js";
import { type BackoffOptions, DEFAULT_BACKOFF } from "./backoff.js";
import type { Logger } from "./log.js";
import type { TlsConfig } from "./tls.js";

export interface TransportOptions {
  /** This member's id: the `from` of its hellos, and the only `to` it accepts. */
  readonly selfId: string;
  /** Streams from members of another cluster are refused. */
  readonly clusterId: string;
  /** Mutual TLS between members (see tls.ts); without it, plain TCP. */
  readonly tls?: TlsConfig;
  /** Largest encoded Raft message; a larger one is dropped with a warning. Default 4 MiB. */
  readonly maxMessageBytes?: number;
  /** Snapshot data per SnapshotChunk frame. Default 512 KiB. */
  readonly snapshotChunkBytes?: number;
  /** Largest snapshot this member accepts; a larger one is refused with RESOURCE_EXHAUSTED. Default 1 GiB. */
  readonly maxSnapshotBytes?: number;
  /** Messages waiting per peer; when full, new messages are dropped and onUnreachable reported. Default 4096. */
  readonly queueLimit?: number;
  /** Each Raft message received, in order per sender; a Snap message carries its whole snapshot. */
  readonly onMessage: (m: Message) => void;
  /** A peer could not be reached or kept up (queue full, stream broken): Raft should probe it. */
  readonly onUnreachable?: (peer: NodeId) => void;
  /** A snapshot sent to `peer` was taken (true) or failed or was lost on the way (false). */
  readonly onSnapshotStatus?: (peer: NodeId, ok: boolean) => void;
  /**
   * Ping interval on idle-looking connections, both ways; a peer that does not answer within half of it
   * is taken as gone (its stream ends and is redialed). Without this, a powered-off or partitioned peer
   * keeps its dead TCP connection for the kernel's retransmission timeout (~15 min). Default 10 s.
   */
  readonly keepaliveMs?: number;
  readonly logger?: Logger;
  readonly backoff?: Partial<BackoffOptions>;
  /** Source of the backoff jitter (tests pin it). */
  readonly random?: () => number;
}

export interface Settings {
  readonly maxMessageBytes: number;
  readonly snapshotChunkBytes: number;
  readonly maxSnapshotBytes: number;
  readonly queueLimit: number;
  readonly keepaliveMs: number;
  readonly backoff: BackoffOptions;
}

const MiB = 1024 * 1024;
/** Room for a frame's own fields around its payload (a chunk's offsets, the Snap message's metadata). */
export const FRAME_OVERHEAD_BYTES = 64 * 1024;

export class TransportConfigError extends Error {
  override readonly name = "TransportConfigError";
}

export function settings(options: TransportOptions): Settings {
  if (typeof options.selfId !== "string" || options.selfId === "") {
    throw new TransportConfigError("selfId must be a non-empty member id");
  }
  if (typeof options.clusterId !== "string" || options.clusterId === "") {
    throw new TransportConfigError("clusterId must be a non-empty string");
  }
  if (typeof options.onMessage !== "function") {
    throw new TransportConfigError("onMessage must be a function that takes each received message");
  }
  const maxMessageBytes = positive("maxMessageBytes", options.maxMessageBytes, 4 * MiB);
  const snapshotChunkBytes = positive("snapshotChunkBytes", options.snapshotChunkBytes, 512 * 1024);
  if (snapshotChunkBytes + FRAME_OVERHEAD_BYTES > maxMessageBytes) {
    throw new TransportConfigError(
      `snapshotChunkBytes (${snapshotChunkBytes}) must leave ${FRAME_OVERHEAD_BYTES} bytes of room under maxMessageBytes (${maxMessageBytes})`,
    );
  }
  const backoff = { ...DEFAULT_BACKOFF, ...options.backoff };
  positive("backoff.initialMs", backoff.initialMs, 1);
  positive("backoff.maxMs", backoff.maxMs, 1);
  if (backoff.maxMs < backoff.initialMs) {
    throw new TransportConfigError("backoff.maxMs must not be below backoff.initialMs");
  }
  if (!(backoff.jitter >= 0 && backoff.jitter <= 1)) {
    throw new TransportConfigError(`backoff.jitter must be between 0 and 1, got ${backoff.jitter}`);
  }
  return {
    maxMessageBytes,
    snapshotChunkBytes,
    maxSnapshotBytes: positive("maxSnapshotBytes", options.maxSnapshotBytes, 1024 * MiB),
    queueLimit: positive("queueLimit", options.queueLimit, 4096),
    keepaliveMs: positive("keepaliveMs", options.keepaliveMs, 10_000),
    backoff,
  };
}

function positive(field: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new TransportConfigError(`${field} must be a positive integer, got ${value}`);
  }
  return value;
}
