// Payloads of the store's records, in the protobuf forms of proto/zsha/raft/v1 (shared with the transport
// through src/codec). Decoding is strict: anything protobuf or the codec refuses is reported, never guessed.

import { fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  decodeEntry,
  encodeEntry,
  hardStateFromProto,
  hardStateToProto,
  snapshotMetaFromProto,
  snapshotMetaToProto,
} from "../codec/raft.js";
import * as pb from "../gen/zsha/raft/v1/raft_pb.js";
import type { Entry, HardState, Snapshot } from "../raft/index.js";

export { decodeEntry, encodeEntry };

export function encodeHardState(hs: HardState): Uint8Array {
  return toBinary(pb.HardStateSchema, hardStateToProto(hs));
}

export function decodeHardState(b: Uint8Array): HardState {
  return hardStateFromProto(fromBinary(pb.HardStateSchema, b));
}

export function encodeSnapshot(s: Snapshot): Uint8Array {
  const meta = toBinary(pb.SnapshotMetaSchema, snapshotMetaToProto(s.meta));
  const out = Buffer.allocUnsafe(4 + meta.length + s.data.length);
  out.writeUInt32BE(meta.length, 0);
  out.set(meta, 4);
  out.set(s.data, 4 + meta.length);
  return out;
}

export function decodeSnapshot(b: Uint8Array): Snapshot {
  if (b.length < 4) throw new Error(`snapshot payload of ${b.length} bytes has no metadata length`);
  const buf = Buffer.from(b.buffer, b.byteOffset, b.length);
  const metaLength = buf.readUInt32BE(0);
  if (4 + metaLength > b.length) {
    throw new Error(`snapshot metadata length ${metaLength} exceeds the ${b.length - 4} bytes that follow`);
  }
  const meta = snapshotMetaFromProto(fromBinary(pb.SnapshotMetaSchema, buf.subarray(4, 4 + metaLength)));
  // A plain Uint8Array view (not a Buffer), as every other Raft value's bytes.
  return { meta, data: new Uint8Array(b.buffer, b.byteOffset + 4 + metaLength, b.length - 4 - metaLength) };
}

export type { Entry };
