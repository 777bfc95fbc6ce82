// The state machine's snapshot: the StateSnapshot proto, written in a canonical order (keys bytewise,
// leases by id, history by revision, member addresses by name) so that two members holding the same state
// produce the same bytes. Decoding checks the invariants the store relies on; a snapshot that breaks one
// is refused as DATA_LOSS rather than installed.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { StateSnapshotSchema, StoredEventSchema, StoredLeaseSchema } from "../gen/zsha/kv/v1/command_pb.js";
import { Event_EventType, type KeyValue } from "../gen/zsha/kv/v1/kv_pb.js";
import { Code, KvError } from "./errors.js";
import type { RevisionEvents } from "./history.js";
import { compareBytes } from "./keys.js";
import { formatLeaseId, type LeaseId, leaseId, type Revision, revision } from "./types.js";

export interface SnapshotState {
  readonly revision: Revision;
  readonly compactRevision: Revision;
  /** Bytewise ordered by key. */
  readonly kvs: readonly KeyValue[];
  /** Ordered by id. */
  readonly leases: readonly { readonly id: LeaseId; readonly ttl: number }[];
  readonly history: readonly RevisionEvents[];
  readonly memberAddresses: Readonly<Record<string, string>>;
  readonly nextLeaseId: LeaseId;
}

export function encodeSnapshot(s: SnapshotState): Uint8Array {
  const memberAddresses: Record<string, string> = {};
  for (const name of Object.keys(s.memberAddresses).sort()) {
    memberAddresses[name] = s.memberAddresses[name] as string;
  }
  const msg = create(StateSnapshotSchema, {
    revision: BigInt(s.revision),
    compactRevision: BigInt(s.compactRevision),
    kvs: [...s.kvs],
    leases: s.leases.map((l) => create(StoredLeaseSchema, { id: l.id, ttl: BigInt(l.ttl) })),
    history: s.history.flatMap((h) =>
      h.events.map((event) => create(StoredEventSchema, { revision: BigInt(h.revision), event })),
    ),
    memberAddresses,
    nextLeaseId: s.nextLeaseId,
  });
  return toBinary(StateSnapshotSchema, msg);
}

function corrupt(what: string): KvError {
  return new KvError(Code.DATA_LOSS, `kv snapshot: ${what}`);
}

function safe(n: bigint, field: string): number {
  if (n < 0n || n > BigInt(Number.MAX_SAFE_INTEGER)) throw corrupt(`${field} ${n} is out of range`);
  return Number(n);
}

export function decodeSnapshot(bytes: Uint8Array): SnapshotState {
  let msg: ReturnType<typeof fromBinary<typeof StateSnapshotSchema>>;
  try {
    msg = fromBinary(StateSnapshotSchema, bytes);
  } catch (err) {
    throw corrupt(`cannot be decoded (${err instanceof Error ? err.message : String(err)})`);
  }
  const rev = revision(safe(msg.revision, "revision"));
  const compactRevision = revision(safe(msg.compactRevision, "compact_revision"));
  if (compactRevision > rev) throw corrupt(`compact_revision ${compactRevision} is ahead of revision ${rev}`);

  const leases = msg.leases.map((l, i) => {
    if (l.id <= 0n) throw corrupt(`lease[${i}] has id ${l.id}`);
    if (i > 0 && (msg.leases[i - 1]?.id ?? 0n) >= l.id) throw corrupt(`lease[${i}] is out of order`);
    if (l.ttl <= 0n) throw corrupt(`lease ${formatLeaseId(l.id)} has ttl ${l.ttl}`);
    return { id: leaseId(l.id), ttl: safe(l.ttl, `lease ${formatLeaseId(l.id)} ttl`) };
  });
  const leaseIds = new Set<bigint>(leases.map((l) => l.id));

  msg.kvs.forEach((kv, i) => {
    const prev = msg.kvs[i - 1];
    if (prev && compareBytes(prev.key, kv.key) >= 0) throw corrupt(`kv[${i}] is out of key order`);
    if (kv.version < 1n) throw corrupt(`kv[${i}] has version ${kv.version}`);
    if (kv.createRevision < 1n || kv.createRevision > kv.modRevision || kv.modRevision > msg.revision) {
      throw corrupt(`kv[${i}] has revisions ${kv.createRevision}/${kv.modRevision} against store ${rev}`);
    }
    if (kv.lease !== 0n && !leaseIds.has(kv.lease)) {
      throw corrupt(`kv[${i}] is attached to lease ${formatLeaseId(kv.lease)}, which is not in the snapshot`);
    }
  });

  const history: RevisionEvents[] = [];
  let current: { revision: Revision; events: RevisionEvents["events"][number][] } | undefined;
  msg.history.forEach((h, i) => {
    const r = revision(safe(h.revision, `history[${i}] revision`));
    if (r < compactRevision || r > rev)
      throw corrupt(`history[${i}] has revision ${r} outside ${compactRevision}..${rev}`);
    if (!h.event?.kv || (h.event.type !== Event_EventType.PUT && h.event.type !== Event_EventType.DELETE)) {
      throw corrupt(`history[${i}] has no valid event`);
    }
    if (current && r < current.revision) throw corrupt(`history[${i}] is out of revision order`);
    if (!current || r !== current.revision) {
      current = { revision: r, events: [] };
      history.push(current);
    }
    current.events.push(h.event);
  });

  if (msg.nextLeaseId <= 0n) throw corrupt(`next_lease_id ${msg.nextLeaseId} is not positive`);
  return {
    revision: rev,
    compactRevision,
    kvs: msg.kvs,
    leases,
    history,
    memberAddresses: msg.memberAddresses,
    nextLeaseId: leaseId(msg.nextLeaseId),
  };
}
