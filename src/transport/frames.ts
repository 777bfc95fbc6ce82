// The frames of a peer stream: how large a message is on the wire, how a snapshot is cut into chunks, and
// how the receiver puts one back together (in order, bounded, checked against its announced size).
import { create, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { messageToProto } from "../codec/raft.js";
import * as pb from "../gen/zsha/raft/v1/raft_pb.js";
import { Code, RpcError } from "../grpc/index.js";
import type { Message } from "../raft/index.js";

export type RequestInit = MessageInitShape<typeof pb.StreamRequestSchema>;

/**
 * An upper bound of the encoded size of `m` as a message frame, without encoding it: every varint counted
 * at its widest, strings at 3 bytes per UTF-16 unit. Messages under the limit by this bound need no exact
 * measure, which keeps the common path to a single encoding (done by grpc-js when it writes the frame).
 */
export function sizeBound(m: Message): number {
  let n = 160 + 3 * (m.type.length + m.from.length + m.to.length) + m.context.length;
  for (const e of m.entries) n += e.data.length + 48;
  return n;
}

/** The exact encoded size of `m` as a message frame (snapshot data excluded: it travels in chunks). */
export function exactSize(m: Message): number {
  return toBinary(pb.StreamRequestSchema, messageFrame(m)).length;
}

export function fitsIn(m: Message, maxBytes: number): boolean {
  return sizeBound(m) <= maxBytes || exactSize(m) <= maxBytes;
}

export function messageFrame(m: Message): pb.StreamRequest {
  return create(pb.StreamRequestSchema, { frame: { case: "message", value: messageToProto(m) } });
}

/** The SnapshotChunk frames of a Snap message: the first carries the message, the last says so. */
export function* snapshotFrames(m: Message, chunkBytes: number): Generator<RequestInit> {
  const data = m.snapshot?.data ?? new Uint8Array(0);
  const totalSize = BigInt(data.length);
  let offset = 0;
  do {
    const end = Math.min(data.length, offset + chunkBytes);
    yield {
      frame: {
        case: "snapshotChunk",
        value: {
          ...(offset === 0 ? { message: messageToProto(m) } : {}),
          offset: BigInt(offset),
          data: data.subarray(offset, end),
          last: end === data.length,
          totalSize,
        },
      },
    };
    offset = end;
  } while (offset < data.length);
}

/** A snapshot being received: its Snap message and the data so far. */
export class SnapshotAssembly {
  private current: { message: pb.Message; data: Uint8Array; received: number } | undefined;

  constructor(private readonly maxBytes: number) {}

  /** True between the first and the last chunk of a snapshot. */
  get busy(): boolean {
    return this.current !== undefined;
  }

  /**
   * Takes the next chunk. Returns the Snap message and the whole data after the last chunk, else undefined.
   * Throws an RpcError for a chunk out of place: the stream is then beyond repair.
   */
  add(chunk: pb.SnapshotChunk): { message: pb.Message; data: Uint8Array } | undefined {
    const offset = Number(chunk.offset);
    if (!this.current) {
      if (!chunk.message) {
        throw new RpcError(
          Code.INVALID_ARGUMENT,
          `a snapshot chunk at offset ${offset} arrived without a snapshot in progress`,
        );
      }
      if (offset !== 0) {
        throw new RpcError(
          Code.INVALID_ARGUMENT,
          `the first snapshot chunk starts at offset ${offset}, not 0`,
        );
      }
      if (chunk.totalSize > BigInt(this.maxBytes)) {
        throw new RpcError(
          Code.RESOURCE_EXHAUSTED,
          `the snapshot of ${chunk.totalSize} bytes is over this member's limit of ${this.maxBytes} bytes`,
        );
      }
      this.current = { message: chunk.message, data: new Uint8Array(Number(chunk.totalSize)), received: 0 };
    } else if (chunk.message) {
      throw new RpcError(
        Code.INVALID_ARGUMENT,
        "a new snapshot started before the previous one's last chunk",
      );
    }
    const current = this.current;
    if (offset !== current.received) {
      throw new RpcError(
        Code.INVALID_ARGUMENT,
        `snapshot chunk offset ${offset} does not follow the ${current.received} bytes received`,
      );
    }
    if (chunk.totalSize !== BigInt(current.data.length)) {
      throw new RpcError(Code.INVALID_ARGUMENT, "snapshot chunks disagree on the snapshot's total size");
    }
    if (current.received + chunk.data.length > current.data.length) {
      throw new RpcError(
        Code.INVALID_ARGUMENT,
        `snapshot chunk at offset ${offset} runs past the announced ${current.data.length} bytes`,
      );
    }
    current.data.set(chunk.data, current.received);
    current.received += chunk.data.length;
    if (!chunk.last) return undefined;
    this.current = undefined;
    if (current.received !== current.data.length) {
      throw new RpcError(
        Code.INVALID_ARGUMENT,
        `the last snapshot chunk ended at ${current.received} of ${current.data.length} bytes`,
      );
    }
    return { message: current.message, data: current.data };
  }
}
