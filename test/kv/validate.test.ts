// Validation before proposing: each bad input gets its gRPC code and one sentence naming the field.
import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { CommandSchema } from "../../src/gen/zsha/kv/v1/command_pb.js";
import {
  CompactRequestSchema,
  type Compare_CompareResult,
  CompareSchema,
  LeaseGrantRequestSchema,
  RequestOpSchema,
  TxnRequestSchema,
  WatchCreateRequestSchema,
} from "../../src/gen/zsha/kv/v1/kv_pb.js";
import {
  Code,
  KvError,
  kvLimits,
  validateCommand,
  validateCompact,
  validateLeaseGrant,
  validateLeaseId,
  validateRange,
  validateTxn,
  validateWatchCreate,
} from "../../src/kv/index.js";
import {
  b,
  cmp,
  compact,
  del,
  grant,
  type Op,
  opDel,
  opPut,
  put,
  R,
  rangeReq,
  revoke,
  txn,
} from "./support.js";

function refusal(f: () => void): { code: Code; message: string } {
  try {
    f();
  } catch (e) {
    if (!(e instanceof KvError)) throw e;
    return { code: e.code, message: e.message };
  }
  throw new Error("expected a KvError");
}

const cmd = (op: Op) => create(CommandSchema, { op });
const invalid = (message: string) => ({ code: Code.INVALID_ARGUMENT, message });
const txnOf = (init: Parameters<typeof create<typeof TxnRequestSchema>>[1]) => create(TxnRequestSchema, init);

describe("validate", () => {
  it("accepts well-formed commands", () => {
    for (const op of [
      put("k", "v", { lease: 5n }),
      del("p/", { prefix: true }),
      txn([cmp("k", R.EQUAL, { case: "version", value: 1n })], [opPut("a", "1")], [opDel("a")]),
      grant(5),
      revoke(7n),
      compact(3),
    ]) {
      expect(() => validateCommand(cmd(op))).not.toThrow();
    }
    expect(() => validateRange(rangeReq("", { prefix: true }))).not.toThrow();
    expect(() => validateWatchCreate(create(WatchCreateRequestSchema, { prefix: true }))).not.toThrow();
  });

  it("refuses empty keys", () => {
    expect(refusal(() => validateCommand(cmd(put("", "v"))))).toEqual(invalid("put: key is empty"));
    expect(refusal(() => validateCommand(cmd(del(""))))).toEqual(invalid("delete_range: key is empty"));
    expect(refusal(() => validateCommand(cmd(del("", { prefix: true }))))).toEqual(
      invalid("delete_range: key is empty"),
    );
    expect(refusal(() => validateRange(rangeReq("")))).toEqual(invalid("range: key is empty"));
    expect(refusal(() => validateWatchCreate(create(WatchCreateRequestSchema, {})))).toEqual(
      invalid("watch: key is empty"),
    );
  });

  it("refuses keys and values over their limits, naming the sizes", () => {
    const longKey = "k".repeat(1025);
    expect(refusal(() => validateCommand(cmd(put(longKey, "v"))))).toEqual(
      invalid("put: key is 1025 bytes, over the 1024-byte limit"),
    );
    expect(() => validateCommand(cmd(put("k".repeat(1024), "v")))).not.toThrow();
    expect(refusal(() => validateCommand(cmd(put("k", "x".repeat(2 * 1024 * 1024)))))).toEqual(
      invalid("put: value is 2097152 bytes, over the 1048576-byte limit"),
    );
    expect(() => validateCommand(cmd(put("k", "x".repeat(1024 * 1024))))).not.toThrow();
    expect(refusal(() => validateRange(rangeReq(longKey)))).toEqual(
      invalid("range: key is 1025 bytes, over the 1024-byte limit"),
    );
  });

  it("uses the limits it is given", () => {
    const limits = kvLimits({ maxKeyBytes: 4, maxValueBytes: 2 });
    expect(refusal(() => validateCommand(cmd(put("abcde", "v")), limits)).message).toBe(
      "put: key is 5 bytes, over the 4-byte limit",
    );
    expect(refusal(() => validateCommand(cmd(put("a", "vvv")), limits)).message).toBe(
      "put: value is 3 bytes, over the 2-byte limit",
    );
    expect(() => kvLimits({ maxKeyBytes: 0 })).toThrow(/maxKeyBytes must be a positive integer/);
  });

  it("refuses a negative lease on put and a negative range limit", () => {
    expect(refusal(() => validateCommand(cmd(put("k", "v", { lease: -1n }))))).toEqual(
      invalid("put: lease -1 is negative; lease ids are positive (0 means none)"),
    );
    expect(refusal(() => validateRange(rangeReq("k", { limit: -1 })))).toEqual(
      invalid("range: limit -1 is negative; use 0 for no limit"),
    );
  });

  it("refuses TTLs out of range, and negative lease ids", () => {
    expect(refusal(() => validateLeaseGrant(create(LeaseGrantRequestSchema, { ttl: 4n })))).toEqual(
      invalid("lease_grant: ttl 4 s is below the 5-second minimum (a lease must outlive a leader election)"),
    );
    expect(
      refusal(() => validateLeaseGrant(create(LeaseGrantRequestSchema, { ttl: 9_000_000_001n }))),
    ).toEqual(invalid("lease_grant: ttl 9000000001 s is over the 9000000000-second maximum"));
    expect(() =>
      validateLeaseGrant(create(LeaseGrantRequestSchema, { ttl: 3n }), kvLimits({ minLeaseTtlSeconds: 2 })),
    ).not.toThrow();
    expect(refusal(() => validateLeaseGrant(create(LeaseGrantRequestSchema, { ttl: 10n, id: -2n })))).toEqual(
      invalid("lease_grant: id -2 is negative; use 0 to let the store pick one, or a positive id"),
    );
    expect(refusal(() => validateLeaseId("lease_revoke", 0n))).toEqual(
      invalid("lease_revoke: id 0x0 is not a lease id; lease ids are positive"),
    );
    expect(refusal(() => validateCommand(cmd(revoke(0n)))).message).toMatch(/^lease_revoke: id 0x0/);
  });

  it("refuses malformed compares", () => {
    const noTarget = create(CompareSchema, { key: b("k") });
    expect(refusal(() => validateTxn(txnOf({ compare: [noTarget] })))).toEqual(
      invalid(
        "txn: compare[0] has no target; set one of version, create_revision, mod_revision, value or lease",
      ),
    );
    const unknownResult = cmp("k", 7 as Compare_CompareResult, { case: "version", value: 1n });
    expect(
      refusal(() =>
        validateTxn(txnOf({ compare: [cmp("k", R.EQUAL, { case: "version", value: 1n }), unknownResult] })),
      ),
    ).toEqual(invalid("txn: compare[1] has unknown result 7; use EQUAL, GREATER, LESS or NOT_EQUAL"));
    expect(
      refusal(() => validateTxn(txnOf({ compare: [cmp("", R.EQUAL, { case: "version", value: 1n })] }))),
    ).toEqual(invalid("txn: compare[0] key is empty"));
  });

  it("refuses txns with too many compares or operations", () => {
    const ops = Array.from({ length: 129 }, (_, i) => opPut(`k${i}`, "v"));
    expect(refusal(() => validateTxn(txnOf({ success: ops })))).toEqual(
      invalid("txn: success has 129 operations, over the limit of 128"),
    );
    expect(() => validateTxn(txnOf({ success: ops.slice(0, 128) }))).not.toThrow();
    expect(refusal(() => validateTxn(txnOf({ failure: ops })))).toEqual(
      invalid("txn: failure has 129 operations, over the limit of 128"),
    );
    const compares = Array.from({ length: 129 }, () => cmp("k", R.EQUAL, { case: "version", value: 1n }));
    expect(refusal(() => validateTxn(txnOf({ compare: compares })))).toEqual(
      invalid("txn: 129 compares, over the limit of 128"),
    );
  });

  it("refuses bad operations inside a txn, naming the branch and position", () => {
    expect(refusal(() => validateTxn(txnOf({ success: [opPut("a", "1"), opPut("", "1")] })))).toEqual(
      invalid("txn: success[1].put: key is empty"),
    );
    expect(refusal(() => validateTxn(txnOf({ failure: [create(RequestOpSchema)] })))).toEqual(
      invalid("txn: failure[0] has no operation; set one of range, put or delete_range"),
    );
    expect(refusal(() => validateTxn(txnOf({ success: [opPut("a", "1"), opPut("a", "2")] })))).toEqual(
      invalid("txn: success[1].put: key is written twice in one txn branch"),
    );
    expect(refusal(() => validateTxn(txnOf({ success: [opDel("a/", true), opPut("a/x", "2")] })))).toEqual(
      invalid("txn: success both puts and deletes one key; split it into two txns"),
    );
    expect(() =>
      validateTxn(txnOf({ success: [opPut("a", "1")], failure: [opPut("a", "2")] })),
    ).not.toThrow();
  });

  it("refuses a non-positive compaction and a negative watch start", () => {
    expect(refusal(() => validateCompact(create(CompactRequestSchema, { revision: 0n })))).toEqual(
      invalid("compact: revision 0 is not positive"),
    );
    expect(
      refusal(() =>
        validateWatchCreate(create(WatchCreateRequestSchema, { key: b("k"), startRevision: -1n })),
      ),
    ).toEqual(invalid("watch: start_revision -1 is negative; use 0 to watch from now"));
  });

  it("refuses a command without an operation", () => {
    expect(refusal(() => validateCommand(create(CommandSchema)))).toEqual(
      invalid("command: no operation is set"),
    );
  });

  it("gives the error as a gRPC error with the same code and sentence", () => {
    const e = new KvError(Code.NOT_FOUND, "lease 0x1a does not exist");
    const rpc = e.toRpcError();
    expect([rpc.code, rpc.message]).toEqual([Code.NOT_FOUND, "lease 0x1a does not exist"]);
  });
});
