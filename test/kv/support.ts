// Builders for commands and a small driver that applies them to a real KvStore at increasing indexes.
import { create } from "@bufbuild/protobuf";
import { type Command, CommandSchema, LeaseExpireSchema } from "../../src/gen/zsha/kv/v1/command_pb.js";
import {
  CompactRequestSchema,
  type Compare,
  Compare_CompareResult,
  CompareSchema,
  DeleteRangeRequestSchema,
  type Event,
  type KeyValue,
  LeaseGrantRequestSchema,
  LeaseRevokeRequestSchema,
  PutRequestSchema,
  RangeRequestSchema,
  type RequestOp,
  RequestOpSchema,
  TxnRequestSchema,
} from "../../src/gen/zsha/kv/v1/kv_pb.js";
import { type ApplyResult, KvStore, type KvStoreOptions, type RevisionEvents } from "../../src/kv/index.js";
import { index } from "../../src/raft/index.js";

export const b = (s: string): Uint8Array => new TextEncoder().encode(s);
export const s = (u: Uint8Array | undefined): string => (u ? new TextDecoder().decode(u) : "<none>");

export type Op = Command["op"];

export const put = (key: string, value: string, opts: { lease?: bigint; prevKv?: boolean } = {}): Op => ({
  case: "put",
  value: create(PutRequestSchema, {
    key: b(key),
    value: b(value),
    lease: opts.lease ?? 0n,
    prevKv: opts.prevKv,
  }),
});

export const del = (key: string, opts: { prefix?: boolean; prevKv?: boolean } = {}): Op => ({
  case: "deleteRange",
  value: create(DeleteRangeRequestSchema, { key: b(key), prefix: opts.prefix, prevKv: opts.prevKv }),
});

export const grant = (ttl: number, id = 0n): Op => ({
  case: "leaseGrant",
  value: create(LeaseGrantRequestSchema, { ttl: BigInt(ttl), id }),
});
export const revoke = (id: bigint): Op => ({
  case: "leaseRevoke",
  value: create(LeaseRevokeRequestSchema, { id }),
});
export const expire = (id: bigint): Op => ({ case: "leaseExpire", value: create(LeaseExpireSchema, { id }) });
export const compact = (rev: number): Op => ({
  case: "compact",
  value: create(CompactRequestSchema, { revision: BigInt(rev) }),
});

export const R = Compare_CompareResult;
type Target = Compare["target"];
export const cmp = (key: string, result: Compare_CompareResult, target: Target): Compare =>
  create(CompareSchema, { key: b(key), result, target });

export const opPut = (key: string, value: string, lease = 0n): RequestOp =>
  create(RequestOpSchema, { request: { case: "put", value: { key: b(key), value: b(value), lease } } });
export const opDel = (key: string, prefix = false): RequestOp =>
  create(RequestOpSchema, { request: { case: "deleteRange", value: { key: b(key), prefix } } });
export const opRange = (key: string, prefix = false): RequestOp =>
  create(RequestOpSchema, { request: { case: "range", value: { key: b(key), prefix } } });

export const txn = (compare: Compare[], success: RequestOp[], failure: RequestOp[] = []): Op => ({
  case: "txn",
  value: create(TxnRequestSchema, { compare, success, failure }),
});

export const rangeReq = (
  key: string,
  opts: Partial<{ prefix: boolean; limit: number; countOnly: boolean; keysOnly: boolean }> = {},
) =>
  create(RangeRequestSchema, {
    key: b(key),
    prefix: opts.prefix,
    limit: BigInt(opts.limit ?? 0),
    countOnly: opts.countOnly,
    keysOnly: opts.keysOnly,
  });

/** Applies commands at indexes 1, 2, 3, ... the way a member applies committed entries. */
export class Driver {
  #index = 0;
  constructor(readonly store: KvStore = new KvStore()) {
    this.#index = store.appliedIndex;
  }

  static with(options: KvStoreOptions): Driver {
    return new Driver(new KvStore(options));
  }

  apply(op: Op): ApplyResult {
    return this.store.apply(index(++this.#index), create(CommandSchema, { origin: "t", requestId: 1n, op }));
  }

  /** Applies and insists on success. */
  ok(op: Op): Extract<ApplyResult, { ok: true }> {
    const r = this.apply(op);
    if (!r.ok) throw new Error(`expected success, got ${r.error.message}`);
    return r;
  }

  fail(op: Op): Extract<ApplyResult, { ok: false }> {
    const r = this.apply(op);
    if (r.ok) throw new Error(`expected failure of ${op.case}`);
    return r;
  }

  kv(key: string): KeyValue | undefined {
    return this.store.get(b(key));
  }

  /** The lease id a grant answered. */
  grant(ttl: number, id = 0n): bigint {
    const r = this.ok(grant(ttl, id));
    if (r.response.case !== "leaseGrant") throw new Error("not a grant response");
    return r.response.value.id;
  }
}

/** A readable form of a watch batch: "rev: PUT a=1, DELETE b". */
export function describe(batch: RevisionEvents): string {
  return `${batch.revision}: ${batch.events.map(describeEvent).join(", ")}`;
}

export function describeEvent(e: Event): string {
  const prev = e.prevKv ? ` (prev ${s(e.prevKv.value)})` : "";
  return e.type === 0 ? `PUT ${s(e.kv?.key)}=${s(e.kv?.value)}${prev}` : `DELETE ${s(e.kv?.key)}${prev}`;
}

/** A sink that records what it receives. */
export function recorder() {
  const seen: string[] = [];
  const batches: RevisionEvents[] = [];
  const cancels: Error[] = [];
  return {
    seen,
    batches,
    cancels,
    sink: {
      onEvents(batch: RevisionEvents) {
        batches.push(batch);
        seen.push(describe(batch));
      },
      onCancel(reason: Error) {
        cancels.push(reason);
      },
    },
  };
}
