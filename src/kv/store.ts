// The replicated state machine, with etcd v3 semantics (etcd's mvcc and lease packages, reduced to what a
// store that keeps only the latest value of each key needs): a global revision bumped once per command
// that changed something; per key create revision, mod revision and version; leases whose keys are deleted
// in one revision when revoked or expired; an event history feeding watches.
//
// apply() is pure and deterministic: every member applying the same commands in the same order reaches
// byte-identical state. A command that fails (unknown lease, compaction out of range) returns its error and
// changes NOTHING: every check runs before the first write.
import { create } from "@bufbuild/protobuf";
import type { Command } from "../gen/zsha/kv/v1/command_pb.js";
import {
  type CompactResponse,
  CompactResponseSchema,
  type Compare,
  Compare_CompareResult,
  type DeleteRangeRequest,
  type DeleteRangeResponse,
  DeleteRangeResponseSchema,
  type Event,
  Event_EventType,
  EventSchema,
  type KeyValue,
  KeyValueSchema,
  type LeaseGrantRequest,
  type LeaseGrantResponse,
  LeaseGrantResponseSchema,
  type LeaseRevokeResponse,
  LeaseRevokeResponseSchema,
  type PutRequest,
  type PutResponse,
  PutResponseSchema,
  type RangeRequest,
  type RangeResponse,
  RangeResponseSchema,
  type RequestOp,
  type ResponseHeader,
  ResponseHeaderSchema,
  type ResponseOp,
  ResponseOpSchema,
  type TxnRequest,
  type TxnResponse,
  TxnResponseSchema,
} from "../gen/zsha/kv/v1/kv_pb.js";
import { type Index, index } from "../raft/index.js";
import { Code, CompactedError, KvError } from "./errors.js";
import { type Watcher, WatchHub, type WatchOptions, type WatchSink } from "./history.js";
import { compareBytes, type KeyString, keyBytes, keyString, SortedKeys } from "./keys.js";
import { LeaseTable } from "./leases.js";
import { type KvLimits, kvLimits } from "./limits.js";
import { decodeSnapshot, encodeSnapshot } from "./snapshot.js";
import { formatLeaseId, type LeaseId, type Revision, revision, revisionFromWire } from "./types.js";
import { ttlError } from "./validate.js";

/** What a successfully applied command answers, by command kind. */
export type CommandResponse =
  | { readonly case: "put"; readonly value: PutResponse }
  | { readonly case: "deleteRange"; readonly value: DeleteRangeResponse }
  | { readonly case: "txn"; readonly value: TxnResponse }
  | { readonly case: "leaseGrant"; readonly value: LeaseGrantResponse }
  | { readonly case: "leaseRevoke"; readonly value: LeaseRevokeResponse }
  | { readonly case: "leaseExpire"; readonly value: LeaseRevokeResponse }
  | { readonly case: "compact"; readonly value: CompactResponse };

/**
 * The outcome of one command. Headers carry the store's revision after the command; the server fills in
 * member and term. `revision` is the same number, for callers that only need that.
 */
export type ApplyResult =
  | { readonly ok: true; readonly revision: Revision; readonly response: CommandResponse }
  | { readonly ok: false; readonly revision: Revision; readonly error: KvError };

/** A lease as the replicated state knows it (remaining time is the leader's Lessor's business). */
export interface LeaseInfo {
  readonly id: LeaseId;
  /** Granted TTL in seconds. */
  readonly ttl: number;
  /** Attached keys, bytewise ordered. */
  readonly keys: Uint8Array[];
}

/** What the Lessor reads from the replicated state. */
export interface LeaseSource {
  leaseTtl(id: LeaseId): number | undefined;
  leaseIds(): LeaseId[];
}

export interface KvStoreOptions {
  /**
   * Apply checks the lease TTL range against these, so every member of a cluster must use the same limits
   * (they are cluster configuration, like the election timeout).
   */
  readonly limits?: Partial<KvLimits>;
  /**
   * How many revisions of watch history to keep at least (default 10,000; Infinity: until a Compact
   * command). Once the history spans twice this, it is compacted down to this many revisions, the same way
   * on every member since it depends on the revision alone; the slack keeps the cost per write constant.
   * Without a bound, history (each event with its previous value) grows with every write, and so do Raft
   * snapshots and the time to write them. Cluster configuration, like `limits`.
   */
  readonly historyRevisions?: number;
}

const DEFAULT_HISTORY_REVISIONS = 10_000;

const EMPTY = new Uint8Array(0);

/** One command's writes: they all carry the revision the store moves to if anything changes. */
class Write {
  readonly events: Event[] = [];
  constructor(readonly revision: Revision) {}
}

export class KvStore implements LeaseSource {
  readonly limits: KvLimits;
  readonly historyRevisions: number;
  #revision = revision(0);
  #appliedIndex = index(0);
  readonly #kvs = new Map<KeyString, KeyValue>();
  #sorted = new SortedKeys();
  #leases = new LeaseTable();
  readonly #hub = new WatchHub();
  /**
   * The members' peer addresses (name → address). Opaque to the store: the server sets it, snapshots carry
   * it so that a member restored from a snapshot can dial its peers.
   */
  memberAddresses: Record<string, string> = {};

  constructor(options: KvStoreOptions = {}) {
    this.limits = kvLimits(options.limits);
    const keep = options.historyRevisions ?? DEFAULT_HISTORY_REVISIONS;
    if (!(keep === Number.POSITIVE_INFINITY || (Number.isSafeInteger(keep) && keep > 0))) {
      throw new RangeError(`kv store: historyRevisions must be a positive integer or Infinity, got ${keep}`);
    }
    this.historyRevisions = keep;
  }

  /** A store holding a snapshot's state, as of Raft index `appliedIndex`. */
  static restore(bytes: Uint8Array, options: KvStoreOptions & { appliedIndex?: Index } = {}): KvStore {
    const store = new KvStore(options);
    store.install(bytes, options.appliedIndex ?? index(0));
    return store;
  }

  get revision(): Revision {
    return this.#revision;
  }

  get compactRevision(): Revision {
    return this.#hub.compactRevision;
  }

  /** The last Raft index applied (or installed from a snapshot). */
  get appliedIndex(): Index {
    return this.#appliedIndex;
  }

  get keyCount(): number {
    return this.#kvs.size;
  }

  // ---- commands ----

  apply(at: Index, cmd: Command): ApplyResult {
    if (at <= this.#appliedIndex) {
      throw new Error(
        `kv: entry ${at} applied after entry ${this.#appliedIndex}; entries apply once, in order`,
      );
    }
    this.#appliedIndex = at;
    const w = new Write(revision(this.#revision + 1));
    const result = this.#run(w, cmd);
    if (result instanceof KvError) {
      if (w.events.length > 0)
        throw new Error(`kv: a failed ${cmd.op.case} command wrote ${w.events.length} events`);
      return { ok: false, revision: this.#revision, error: result };
    }
    if (w.events.length > 0) {
      this.#revision = w.revision;
      this.#hub.append({ revision: w.revision, events: w.events });
      this.#trimHistory();
    }
    setHeaders(result, this.#revision);
    return { ok: true, revision: this.#revision, response: result };
  }

  #run(w: Write, cmd: Command): CommandResponse | KvError {
    const op = cmd.op;
    switch (op.case) {
      case "put": {
        const err = this.#checkPutLease("put", op.value);
        return err ?? { case: "put", value: this.#put(w, op.value) };
      }
      case "deleteRange":
        return { case: "deleteRange", value: this.#deleteRange(w, op.value) };
      case "txn": {
        const r = this.#txn(w, op.value);
        return r instanceof KvError ? r : { case: "txn", value: r };
      }
      case "leaseGrant": {
        const r = this.#grant(op.value);
        return r instanceof KvError ? r : { case: "leaseGrant", value: r };
      }
      case "leaseRevoke": {
        const err = this.#revoke(w, "lease_revoke", op.value.id);
        return err ?? { case: "leaseRevoke", value: create(LeaseRevokeResponseSchema) };
      }
      case "leaseExpire": {
        const err = this.#revoke(w, "lease_expire", op.value.id);
        return err ?? { case: "leaseExpire", value: create(LeaseRevokeResponseSchema) };
      }
      case "compact": {
        const err = this.#compact(op.value.revision);
        return err ?? { case: "compact", value: create(CompactResponseSchema) };
      }
      default:
        return new KvError(Code.INVALID_ARGUMENT, "command: no operation is set");
    }
  }

  #checkPutLease(what: string, req: PutRequest): KvError | undefined {
    if (req.lease !== 0n && !this.#leases.has(req.lease)) {
      return new KvError(Code.NOT_FOUND, `${what}: lease ${formatLeaseId(req.lease)} does not exist`);
    }
    return undefined;
  }

  #put(w: Write, req: PutRequest): PutResponse {
    const key = keyString(req.key);
    const prev = this.#kvs.get(key);
    const rev = BigInt(w.revision);
    // Copies: a decoded command's bytes are views into the whole log entry, which must not stay alive.
    const kv = create(KeyValueSchema, {
      key: req.key.slice(),
      value: req.value.slice(),
      createRevision: prev ? prev.createRevision : rev,
      modRevision: rev,
      version: prev ? prev.version + 1n : 1n,
      lease: req.lease,
    });
    if (prev && prev.lease !== req.lease) this.#leases.detach(prev.lease, key);
    if (req.lease !== 0n) this.#leases.attach(req.lease, key);
    this.#kvs.set(key, kv);
    if (!prev) this.#sorted.insert(key);
    w.events.push(create(EventSchema, { type: Event_EventType.PUT, kv, prevKv: prev }));
    return create(PutResponseSchema, { prevKv: req.prevKv ? prev : undefined });
  }

  #deleteRange(w: Write, req: DeleteRangeRequest): DeleteRangeResponse {
    const deleted = this.#sorted.select({ key: keyString(req.key), prefix: req.prefix });
    const prevKvs: KeyValue[] = [];
    for (const key of deleted) {
      const prev = this.#deleteKey(w, key);
      if (req.prevKv) prevKvs.push(prev);
    }
    return create(DeleteRangeResponseSchema, { deleted: BigInt(deleted.length), prevKvs });
  }

  #deleteKey(w: Write, key: KeyString): KeyValue {
    const prev = this.#kvs.get(key);
    if (!prev) throw new Error("kv: deleting a key that the index lists but the map lacks");
    this.#kvs.delete(key);
    this.#sorted.remove(key);
    if (prev.lease !== 0n) this.#leases.detach(prev.lease, key);
    // As in etcd: a delete event's kv is the key with the deleting revision as its mod revision.
    const kv = create(KeyValueSchema, { key: prev.key, modRevision: BigInt(w.revision) });
    w.events.push(create(EventSchema, { type: Event_EventType.DELETE, kv, prevKv: prev }));
    return prev;
  }

  #txn(w: Write, req: TxnRequest): TxnResponse | KvError {
    const succeeded = req.compare.every((c) => this.#compare(c));
    const branch = succeeded ? "success" : "failure";
    const ops = succeeded ? req.success : req.failure;
    // Every check before the first write, so that a failing txn changes nothing.
    for (const [i, op] of ops.entries()) {
      if (op.request.case === "put") {
        const err = this.#checkPutLease(`txn: ${branch}[${i}].put`, op.request.value);
        if (err) return err;
      }
    }
    // Ops run in order against the live state, so a range sees this txn's earlier writes (as in etcd).
    const responses = ops.map((op) => this.#txnOp(w, op));
    return create(TxnResponseSchema, { succeeded, responses });
  }

  #txnOp(w: Write, op: RequestOp): ResponseOp {
    const r = op.request;
    switch (r.case) {
      case "range":
        return create(ResponseOpSchema, { response: { case: "range", value: this.range(r.value) } });
      case "put":
        return create(ResponseOpSchema, { response: { case: "put", value: this.#put(w, r.value) } });
      case "deleteRange":
        return create(ResponseOpSchema, {
          response: { case: "deleteRange", value: this.#deleteRange(w, r.value) },
        });
      default:
        // Validation refuses an empty op; one that slipped through does nothing, the same on every member.
        return create(ResponseOpSchema);
    }
  }

  /** A missing key compares as version, create and mod revision 0, lease 0 and an empty value. */
  #compare(c: Compare): boolean {
    const kv = this.#kvs.get(keyString(c.key));
    const t = c.target;
    let d: number;
    switch (t.case) {
      case "version":
        d = cmp(kv?.version ?? 0n, t.value);
        break;
      case "createRevision":
        d = cmp(kv?.createRevision ?? 0n, t.value);
        break;
      case "modRevision":
        d = cmp(kv?.modRevision ?? 0n, t.value);
        break;
      case "lease":
        d = cmp(kv?.lease ?? 0n, t.value);
        break;
      case "value":
        d = compareBytes(kv?.value ?? EMPTY, t.value);
        break;
      default:
        return false;
    }
    switch (c.result) {
      case Compare_CompareResult.EQUAL:
        return d === 0;
      case Compare_CompareResult.GREATER:
        return d > 0;
      case Compare_CompareResult.LESS:
        return d < 0;
      case Compare_CompareResult.NOT_EQUAL:
        return d !== 0;
      default:
        return false;
    }
  }

  #grant(req: LeaseGrantRequest): LeaseGrantResponse | KvError {
    const err = ttlError("lease_grant", req.ttl, this.limits);
    if (err) return err;
    if (req.id < 0n) {
      return new KvError(Code.INVALID_ARGUMENT, `lease_grant: id ${req.id} is negative`);
    }
    if (req.id !== 0n && this.#leases.has(req.id)) {
      return new KvError(
        Code.FAILED_PRECONDITION,
        `lease_grant: lease ${formatLeaseId(req.id)} already exists`,
      );
    }
    const id = this.#leases.pickId(req.id);
    this.#leases.grant(id, Number(req.ttl), req.id === 0n);
    return create(LeaseGrantResponseSchema, { id, ttl: req.ttl });
  }

  /** Revoke and expiry: the lease goes, and its keys are deleted in one revision. */
  #revoke(w: Write, what: string, id: bigint): KvError | undefined {
    const lease = this.#leases.get(id);
    if (!lease) return new KvError(Code.NOT_FOUND, `${what}: lease ${formatLeaseId(id)} does not exist`);
    for (const key of [...lease.keys].sort()) this.#deleteKey(w, key);
    this.#leases.remove(lease.id);
    return undefined;
  }

  /** Compaction drops watch history before `rev` (etcd: history at `rev` itself stays watchable). */
  #compact(wire: bigint): KvError | undefined {
    const rev = revisionFromWire(wire);
    if (rev <= 0) return new KvError(Code.INVALID_ARGUMENT, `compact: revision ${wire} is not positive`);
    if (rev > this.#revision) {
      return new KvError(
        Code.OUT_OF_RANGE,
        `compact: revision ${wire} is ahead of the current revision ${this.#revision}`,
      );
    }
    if (rev <= this.#hub.compactRevision)
      return new CompactedError("compact", rev, this.#hub.compactRevision);
    this.#hub.compact(rev);
    return undefined;
  }

  /** The automatic compaction described at `historyRevisions`. */
  #trimHistory(): void {
    const keep = this.historyRevisions;
    if (this.#revision - this.#hub.compactRevision >= 2 * keep) {
      this.#hub.compact(revision(this.#revision - keep + 1));
    }
  }

  // ---- reads (served after ReadIndex, or from local state when serializable) ----

  /** Keys in bytewise order; `more` when `limit` cut the answer short; `count` is every match. */
  range(req: RangeRequest): RangeResponse {
    const keys = this.#sorted.select({ key: keyString(req.key), prefix: req.prefix });
    const count = keys.length;
    const limit = req.limit > 0n && req.limit < BigInt(count) ? Number(req.limit) : count;
    const kvs: KeyValue[] = [];
    if (!req.countOnly) {
      for (const key of keys.slice(0, limit)) {
        const kv = this.#kvs.get(key) as KeyValue;
        kvs.push(req.keysOnly ? withoutValue(kv) : kv);
      }
    }
    return create(RangeResponseSchema, {
      header: header(this.#revision),
      kvs,
      more: !req.countOnly && limit < count,
      count: BigInt(count),
    });
  }

  /** The current value of one key (read-only: callers must not change it). */
  get(key: Uint8Array): KeyValue | undefined {
    return this.#kvs.get(keyString(key));
  }

  lease(id: bigint): LeaseInfo | undefined {
    const l = this.#leases.get(id);
    if (!l) return undefined;
    return { id: l.id, ttl: l.ttl, keys: [...l.keys].sort().map(keyBytes) };
  }

  leaseIds(): LeaseId[] {
    return this.#leases.sorted().map((l) => l.id);
  }

  leaseTtl(id: LeaseId): number | undefined {
    return this.#leases.get(id)?.ttl;
  }

  get nextLeaseId(): LeaseId {
    return this.#leases.nextId;
  }

  // ---- watch ----

  /**
   * Replays history from `startRevision` (synchronously, before returning), then delivers each new revision
   * as it applies. Throws CompactedError when `startRevision` is older than the compact revision.
   */
  watch(opts: WatchOptions, sink: WatchSink): Watcher {
    return this.#hub.watch(opts, sink, this.#revision);
  }

  get watcherCount(): number {
    return this.#hub.watcherCount;
  }

  // ---- snapshots ----

  snapshot(): Uint8Array {
    return encodeSnapshot({
      revision: this.#revision,
      compactRevision: this.#hub.compactRevision,
      kvs: this.#sorted.select({ key: "", prefix: true }).map((k) => this.#kvs.get(k) as KeyValue),
      leases: this.#leases.sorted().map((l) => ({ id: l.id, ttl: l.ttl })),
      history: this.#hub.history(),
      memberAddresses: this.memberAddresses,
      nextLeaseId: this.#leases.nextId,
    });
  }

  /**
   * Replaces the whole state with a snapshot's, as of Raft index `appliedIndex` (InstallSnapshot). Watches
   * survive: each catches up from the snapshot's history, or is canceled when that history was compacted.
   * A malformed snapshot throws KvError(DATA_LOSS) and leaves the store as it was.
   */
  install(bytes: Uint8Array, appliedIndex: Index): void {
    const s = decodeSnapshot(bytes);
    const leases = new LeaseTable();
    for (const l of s.leases) leases.grant(l.id, l.ttl, false);
    leases.nextId = s.nextLeaseId;
    const sorted = new SortedKeys();
    this.#kvs.clear();
    for (const kv of s.kvs) {
      const key = keyString(kv.key);
      this.#kvs.set(key, kv);
      sorted.insert(key);
      if (kv.lease !== 0n) leases.attach(kv.lease, key);
    }
    this.#sorted = sorted;
    this.#leases = leases;
    this.#revision = s.revision;
    this.#appliedIndex = appliedIndex;
    this.memberAddresses = { ...s.memberAddresses };
    this.#hub.reset([...s.history], s.compactRevision, s.revision);
  }
}

function withoutValue(kv: KeyValue): KeyValue {
  const { key, createRevision, modRevision, version, lease } = kv;
  return create(KeyValueSchema, { key, createRevision, modRevision, version, lease });
}

function cmp(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function header(rev: Revision): ResponseHeader {
  return create(ResponseHeaderSchema, { revision: BigInt(rev) });
}

function setHeaders(r: CommandResponse, rev: Revision): void {
  r.value.header = header(rev);
  if (r.case !== "txn") return;
  for (const op of r.value.responses) {
    if (op.response.case !== undefined) op.response.value.header = header(rev);
  }
}
