// Request validation, run by the server BEFORE a request is proposed: a bad request is answered with a gRPC
// status and one sentence naming the field, and nothing reaches the log. The state machine repeats the
// checks that guard its invariants (TTL range), so a command that slipped past still changes nothing.
import type { Command } from "../gen/zsha/kv/v1/command_pb.js";
import {
  type CompactRequest,
  type Compare,
  Compare_CompareResult,
  type DeleteRangeRequest,
  type LeaseGrantRequest,
  type PutRequest,
  type RangeRequest,
  type RequestOp,
  type TxnRequest,
  type WatchCreateRequest,
} from "../gen/zsha/kv/v1/kv_pb.js";
import { Code, KvError } from "./errors.js";
import { keyString } from "./keys.js";
import { DEFAULT_LIMITS, type KvLimits } from "./limits.js";
import { formatLeaseId } from "./types.js";

const invalid = (message: string) => new KvError(Code.INVALID_ARGUMENT, message);

function checkKey(what: string, key: Uint8Array, limits: KvLimits, emptyAllowed = false): void {
  if (key.length === 0 && !emptyAllowed) throw invalid(`${what}: key is empty`);
  if (key.length > limits.maxKeyBytes) {
    throw invalid(`${what}: key is ${key.length} bytes, over the ${limits.maxKeyBytes}-byte limit`);
  }
}

function checkLeaseRef(what: string, field: string, id: bigint): void {
  if (id < 0n) throw invalid(`${what}: ${field} ${id} is negative; lease ids are positive (0 means none)`);
}

/** The TTL check, shared with the state machine. Undefined when the TTL is acceptable. */
export function ttlError(what: string, ttl: bigint, limits: KvLimits): KvError | undefined {
  if (ttl < BigInt(limits.minLeaseTtlSeconds)) {
    return invalid(
      `${what}: ttl ${ttl} s is below the ${limits.minLeaseTtlSeconds}-second minimum (a lease must outlive a leader election)`,
    );
  }
  if (ttl > BigInt(limits.maxLeaseTtlSeconds)) {
    return invalid(`${what}: ttl ${ttl} s is over the ${limits.maxLeaseTtlSeconds}-second maximum`);
  }
  return undefined;
}

/** A range may name every key with an empty key and `prefix`; a single key must not be empty. */
export function validateRange(req: RangeRequest, limits: KvLimits = DEFAULT_LIMITS, what = "range"): void {
  checkKey(what, req.key, limits, req.prefix);
  if (req.limit < 0n) throw invalid(`${what}: limit ${req.limit} is negative; use 0 for no limit`);
}

export function validatePut(req: PutRequest, limits: KvLimits = DEFAULT_LIMITS, what = "put"): void {
  checkKey(what, req.key, limits);
  if (req.value.length > limits.maxValueBytes) {
    throw invalid(`${what}: value is ${req.value.length} bytes, over the ${limits.maxValueBytes}-byte limit`);
  }
  checkLeaseRef(what, "lease", req.lease);
}

/** Deleting needs a key even with `prefix`: an empty field must never mean "delete everything". */
export function validateDeleteRange(
  req: DeleteRangeRequest,
  limits: KvLimits = DEFAULT_LIMITS,
  what = "delete_range",
): void {
  checkKey(what, req.key, limits);
}

const COMPARE_RESULTS = new Set<number>([
  Compare_CompareResult.EQUAL,
  Compare_CompareResult.GREATER,
  Compare_CompareResult.LESS,
  Compare_CompareResult.NOT_EQUAL,
]);

export function validateCompare(c: Compare, limits: KvLimits, what: string): void {
  if (c.target.case === undefined) {
    throw invalid(`${what} has no target; set one of version, create_revision, mod_revision, value or lease`);
  }
  if (!COMPARE_RESULTS.has(c.result)) {
    throw invalid(`${what} has unknown result ${c.result}; use EQUAL, GREATER, LESS or NOT_EQUAL`);
  }
  if (c.key.length === 0) throw invalid(`${what} key is empty`);
  if (c.key.length > limits.maxKeyBytes) {
    throw invalid(`${what} key is ${c.key.length} bytes, over the ${limits.maxKeyBytes}-byte limit`);
  }
  if (c.target.case === "value" && c.target.value.length > limits.maxValueBytes) {
    throw invalid(
      `${what} value is ${c.target.value.length} bytes, over the ${limits.maxValueBytes}-byte limit`,
    );
  }
}

function validateOps(ops: RequestOp[], branch: string, limits: KvLimits): void {
  if (ops.length > limits.maxTxnOps) {
    throw invalid(`txn: ${branch} has ${ops.length} operations, over the limit of ${limits.maxTxnOps}`);
  }
  // etcd refuses a txn that writes one key twice in a branch: its result would depend on op order in ways
  // a client rarely means. Puts to one key, or a put into a range the same branch deletes, are refused.
  const puts = new Set<string>();
  const deletes: { key: string; prefix: boolean }[] = [];
  ops.forEach((op, i) => {
    const what = `txn: ${branch}[${i}]`;
    switch (op.request.case) {
      case "range":
        validateRange(op.request.value, limits, `${what}.range`);
        break;
      case "put": {
        validatePut(op.request.value, limits, `${what}.put`);
        const k = keyString(op.request.value.key);
        if (puts.has(k)) throw invalid(`${what}.put: key is written twice in one txn branch`);
        puts.add(k);
        break;
      }
      case "deleteRange":
        validateDeleteRange(op.request.value, limits, `${what}.delete_range`);
        deletes.push({ key: keyString(op.request.value.key), prefix: op.request.value.prefix });
        break;
      default:
        throw invalid(`${what} has no operation; set one of range, put or delete_range`);
    }
  });
  for (const d of deletes) {
    for (const p of puts) {
      if (d.prefix ? p.startsWith(d.key) : p === d.key) {
        throw invalid(`txn: ${branch} both puts and deletes one key; split it into two txns`);
      }
    }
  }
}

export function validateTxn(req: TxnRequest, limits: KvLimits = DEFAULT_LIMITS): void {
  if (req.compare.length > limits.maxTxnOps) {
    throw invalid(`txn: ${req.compare.length} compares, over the limit of ${limits.maxTxnOps}`);
  }
  req.compare.forEach((c, i) => {
    validateCompare(c, limits, `txn: compare[${i}]`);
  });
  validateOps(req.success, "success", limits);
  validateOps(req.failure, "failure", limits);
}

export function validateLeaseGrant(req: LeaseGrantRequest, limits: KvLimits = DEFAULT_LIMITS): void {
  const err = ttlError("lease_grant", req.ttl, limits);
  if (err) throw err;
  if (req.id < 0n) {
    throw invalid(`lease_grant: id ${req.id} is negative; use 0 to let the store pick one, or a positive id`);
  }
}

/** For revoke, keep-alive and time-to-live: the id must name a lease (0 never does). */
export function validateLeaseId(what: string, id: bigint): void {
  if (id <= 0n) throw invalid(`${what}: id ${formatLeaseId(id)} is not a lease id; lease ids are positive`);
}

export function validateCompact(req: CompactRequest): void {
  if (req.revision <= 0n) throw invalid(`compact: revision ${req.revision} is not positive`);
}

/** A watch names one key, or every key under a prefix (an empty prefix watches everything). */
export function validateWatchCreate(req: WatchCreateRequest, limits: KvLimits = DEFAULT_LIMITS): void {
  checkKey("watch", req.key, limits, req.prefix);
  if (req.startRevision < 0n) {
    throw invalid(`watch: start_revision ${req.startRevision} is negative; use 0 to watch from now`);
  }
}

/** Validates a command as a whole (what the server proposes), dispatching on its operation. */
export function validateCommand(cmd: Command, limits: KvLimits = DEFAULT_LIMITS): void {
  const op = cmd.op;
  switch (op.case) {
    case "put":
      validatePut(op.value, limits);
      return;
    case "deleteRange":
      validateDeleteRange(op.value, limits);
      return;
    case "txn":
      validateTxn(op.value, limits);
      return;
    case "leaseGrant":
      validateLeaseGrant(op.value, limits);
      return;
    case "leaseRevoke":
      validateLeaseId("lease_revoke", op.value.id);
      return;
    case "leaseExpire":
      validateLeaseId("lease_expire", op.value.id);
      return;
    case "compact":
      validateCompact(op.value);
      return;
    default:
      throw invalid("command: no operation is set");
  }
}
