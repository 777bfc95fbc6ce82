// Conversions between the Raft core's values and their protobuf forms (proto/zsha/raft/v1), shared by the
// on-disk store and the peer transport. Decoding validates: a malformed value is an error, never a guess.

import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as pb from "../gen/zsha/raft/v1/raft_pb.js";
import {
  type ConfState,
  type Entry,
  EntryType,
  type HardState,
  index,
  type Message,
  MessageType,
  message,
  nodeId,
  type Snapshot,
  type SnapshotMeta,
  term,
} from "../raft/index.js";

export class CodecError extends Error {
  constructor(what: string) {
    super(what);
    this.name = "CodecError";
  }
}

const MESSAGE_TYPES = new Set<string>(Object.values(MessageType));

function u64(n: bigint, field: string): number {
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw new CodecError(`${field} ${n} is beyond 2^53`);
  return Number(n);
}

export function entryToProto(e: Entry): pb.Entry {
  return create(pb.EntrySchema, {
    term: BigInt(e.term),
    index: BigInt(e.index),
    type: e.type === EntryType.ConfChange ? pb.EntryType.CONF_CHANGE : pb.EntryType.NORMAL,
    data: e.data,
  });
}

export function entryFromProto(p: pb.Entry): Entry {
  if (p.type !== pb.EntryType.NORMAL && p.type !== pb.EntryType.CONF_CHANGE) {
    throw new CodecError(`unknown entry type ${p.type}`);
  }
  return {
    term: term(u64(p.term, "entry term")),
    index: index(u64(p.index, "entry index")),
    type: p.type === pb.EntryType.CONF_CHANGE ? EntryType.ConfChange : EntryType.Normal,
    data: p.data,
  };
}

export function encodeEntry(e: Entry): Uint8Array {
  return toBinary(pb.EntrySchema, entryToProto(e));
}

export function decodeEntry(b: Uint8Array): Entry {
  return entryFromProto(fromBinary(pb.EntrySchema, b));
}

export function hardStateToProto(hs: HardState): pb.HardState {
  return create(pb.HardStateSchema, { term: BigInt(hs.term), vote: hs.vote, commit: BigInt(hs.commit) });
}

export function hardStateFromProto(p: pb.HardState): HardState {
  return { term: term(u64(p.term, "term")), vote: nodeId(p.vote), commit: index(u64(p.commit, "commit")) };
}

export function confStateToProto(cs: ConfState): pb.ConfState {
  return create(pb.ConfStateSchema, { voters: [...cs.voters], learners: [...cs.learners] });
}

export function confStateFromProto(p: pb.ConfState | undefined): ConfState {
  return { voters: (p?.voters ?? []).map(nodeId), learners: (p?.learners ?? []).map(nodeId) };
}

export function snapshotMetaToProto(m: SnapshotMeta): pb.SnapshotMeta {
  return create(pb.SnapshotMetaSchema, {
    index: BigInt(m.index),
    term: BigInt(m.term),
    confState: confStateToProto(m.confState),
  });
}

export function snapshotMetaFromProto(p: pb.SnapshotMeta | undefined): SnapshotMeta {
  if (!p) throw new CodecError("snapshot metadata is missing");
  return {
    index: index(u64(p.index, "snapshot index")),
    term: term(u64(p.term, "snapshot term")),
    confState: confStateFromProto(p.confState),
  };
}

/** A message without its snapshot data (which the transport sends in chunks). */
export function messageToProto(m: Message): pb.Message {
  return create(pb.MessageSchema, {
    type: m.type,
    from: m.from,
    to: m.to,
    term: BigInt(m.term),
    logTerm: BigInt(m.logTerm),
    index: BigInt(m.index),
    entries: m.entries.map(entryToProto),
    commit: BigInt(m.commit),
    reject: m.reject,
    rejectHint: BigInt(m.rejectHint),
    context: m.context,
    ...(m.snapshot ? { snapshotMeta: snapshotMetaToProto(m.snapshot.meta) } : {}),
  });
}

/** Decodes a message; `snapshotData` completes a Snap message's snapshot. */
export function messageFromProto(p: pb.Message, snapshotData?: Uint8Array): Message {
  if (!MESSAGE_TYPES.has(p.type)) throw new CodecError(`unknown message type '${p.type}'`);
  const type = p.type as MessageType;
  let snapshot: Snapshot | undefined;
  if (type === MessageType.Snap) {
    if (!snapshotData) throw new CodecError("a snapshot message arrived without its data");
    snapshot = { meta: snapshotMetaFromProto(p.snapshotMeta), data: snapshotData };
  }
  return message({
    type,
    from: nodeId(p.from),
    to: nodeId(p.to),
    term: term(u64(p.term, "term")),
    logTerm: term(u64(p.logTerm, "log term")),
    index: index(u64(p.index, "index")),
    entries: p.entries.map(entryFromProto),
    commit: index(u64(p.commit, "commit")),
    reject: p.reject,
    rejectHint: index(u64(p.rejectHint, "reject hint")),
    context: p.context,
    ...(snapshot ? { snapshot } : {}),
  });
}
