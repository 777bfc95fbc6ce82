// The on-disk layout: keys and the framing every value carries.
//
// Keys sort the log in index order under LevelDB's bytewise comparator:
//   "e" + u64 big-endian index   one log entry (protobuf zsha.raft.v1.Entry)
//   "h"                          the hard state (protobuf HardState)
//   "s"                          the latest snapshot: u32 BE meta length, SnapshotMeta, then the data
//
// Every value is framed as
//   u8 format version | u32 BE payload length | u32 BE CRC-32C | payload
// The CRC covers the key, the version, the length and the payload, so a value that is torn, bit-flipped,
// or stored under the wrong key is caught; the length catches a value cut short.

import { crc32c } from "./crc32c.js";

export const FORMAT_VERSION = 1;
const HEADER_SIZE = 9;

const ENTRY_PREFIX = 0x65; // "e"
export const HARD_STATE_KEY = Buffer.from("h");
export const SNAPSHOT_KEY = Buffer.from("s");

export function entryKey(i: number): Buffer {
  const k = Buffer.allocUnsafe(9);
  k[0] = ENTRY_PREFIX;
  k.writeBigUInt64BE(BigInt(i), 1);
  return k;
}

export type KeyKind = { kind: "entry"; index: number } | { kind: "hardState" } | { kind: "snapshot" };

/** What a key names, or undefined for a key this store never writes. */
export function parseKey(key: Uint8Array): KeyKind | undefined {
  if (key.length === 9 && key[0] === ENTRY_PREFIX) {
    const i = Buffer.from(key.buffer, key.byteOffset, key.length).readBigUInt64BE(1);
    return i > BigInt(Number.MAX_SAFE_INTEGER) ? undefined : { kind: "entry", index: Number(i) };
  }
  if (Buffer.compare(key, HARD_STATE_KEY) === 0) return { kind: "hardState" };
  if (Buffer.compare(key, SNAPSHOT_KEY) === 0) return { kind: "snapshot" };
  return undefined;
}

export function describeKey(key: Uint8Array): string {
  return `key 0x${Buffer.from(key.buffer, key.byteOffset, key.length).toString("hex")}`;
}

/** Why a stored value cannot be trusted. */
export class RecordError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RecordError";
  }
}

function checksum(key: Uint8Array, header: Uint8Array, payload: Uint8Array): number {
  return crc32c(payload, crc32c(header.subarray(0, 5), crc32c(key)));
}

export function frame(key: Uint8Array, payload: Uint8Array): Buffer {
  const v = Buffer.allocUnsafe(HEADER_SIZE + payload.length);
  v[0] = FORMAT_VERSION;
  v.writeUInt32BE(payload.length, 1);
  v.set(payload, HEADER_SIZE);
  v.writeUInt32BE(checksum(key, v, payload), 5);
  return v;
}

/** The payload of a framed value, after checking version, length and checksum. */
export function unframe(key: Uint8Array, value: Uint8Array): Uint8Array {
  if (value.length < HEADER_SIZE) {
    throw new RecordError(
      `value is truncated: ${value.length} bytes, shorter than the ${HEADER_SIZE}-byte header`,
    );
  }
  const v = Buffer.from(value.buffer, value.byteOffset, value.length);
  if (v[0] !== FORMAT_VERSION) {
    throw new RecordError(`format version ${v[0]} is unknown (this build reads version ${FORMAT_VERSION})`);
  }
  const length = v.readUInt32BE(1);
  const payload = v.subarray(HEADER_SIZE);
  if (payload.length !== length) {
    throw new RecordError(
      payload.length < length
        ? `value is truncated: header says ${length} payload bytes, found ${payload.length}`
        : `value has ${payload.length - length} bytes after its ${length}-byte payload`,
    );
  }
  const stored = v.readUInt32BE(5);
  const computed = checksum(key, v, payload);
  if (stored !== computed) {
    throw new RecordError(
      `checksum mismatch (stored 0x${stored.toString(16).padStart(8, "0")}, computed 0x${computed.toString(16).padStart(8, "0")})`,
    );
  }
  // A plain Uint8Array view: decoded byte fields are subarrays of it, and Raft values carry Uint8Array.
  return new Uint8Array(payload.buffer, payload.byteOffset, payload.length);
}
