// The HA's view of the replicated store in a real agent: the ordinary KV client (DESIGN.md: the HA uses the
// KV like any client), plus the in-process member for "am I the Raft leader".

import type { MessageInitShape } from "@bufbuild/protobuf";
import { type KvClient, text } from "../client/kv-client.js";
import type { LeaseDatagramClient } from "../client/lease-datagrams.js";
import { Compare_CompareResult, type CompareSchema, type RequestOpSchema } from "../gen/zsha/kv/v1/kv_pb.js";
import type { HaKv, KvEntry, TxnCompare, TxnOp } from "../ha/env.js";
import { watchPrefix } from "./ha-watch.js";

const enc = new TextEncoder();

const RESULT = {
  "==": Compare_CompareResult.EQUAL,
  "!=": Compare_CompareResult.NOT_EQUAL,
  ">": Compare_CompareResult.GREATER,
  "<": Compare_CompareResult.LESS,
} as const;

export function compareToProto(c: TxnCompare): MessageInitShape<typeof CompareSchema> {
  const key = enc.encode(c.key);
  const result = RESULT[c.op];
  switch (c.target) {
    case "value":
      return { key, result, target: { case: "value", value: c.value } };
    case "version":
      return { key, result, target: { case: "version", value: c.value } };
    case "createRevision":
      return { key, result, target: { case: "createRevision", value: c.value } };
    case "modRevision":
      return { key, result, target: { case: "modRevision", value: c.value } };
  }
}

export function opToProto(o: TxnOp): MessageInitShape<typeof RequestOpSchema> {
  if ("put" in o) {
    return {
      request: {
        case: "put",
        value: { key: enc.encode(o.put.key), value: o.put.value, lease: o.put.lease ?? 0n },
      },
    };
  }
  return {
    request: {
      case: "deleteRange",
      value: { key: enc.encode(o.delete.key), prefix: o.delete.prefix ?? false },
    },
  };
}

/** A key-value of the KV API as the HA sees it. */
export function kvEntry(kv: {
  key: Uint8Array;
  value: Uint8Array;
  createRevision: bigint;
  modRevision: bigint;
  version: bigint;
  lease: bigint;
}): KvEntry {
  return {
    key: text(kv.key),
    value: kv.value,
    createRevision: kv.createRevision,
    modRevision: kv.modRevision,
    version: kv.version,
    lease: kv.lease,
  };
}

/**
 * `keepAliveVia` are extra connections lease keep-alives are sent over at the same time as `client`'s, and
 * `datagrams` sends them as UDP datagrams to every member (the first answer wins): on a lossy storage network
 * a TCP stream can stall in retransmission back-off for longer than the owner may go without renewing.
 */
export function clientHaKv(
  client: KvClient,
  isLeader: () => boolean,
  keepAliveVia: readonly KvClient[] = [],
  datagrams?: LeaseDatagramClient,
): HaKv {
  return {
    async get(key) {
      const kv = await client.getValue(key);
      return kv ? kvEntry(kv) : undefined;
    },
    async list(prefix) {
      return (await client.get(prefix, { prefix: true })).kvs.map(kvEntry);
    },
    async txn(compare, success, failure = []) {
      const r = await client.txn({
        compare: compare.map(compareToProto),
        success: success.map(opToProto),
        failure: failure.map(opToProto),
      });
      return r.succeeded;
    },
    async put(key, value, lease) {
      await client.put(key, value, { lease: lease ?? 0n });
    },
    async leaseGrant(ttl) {
      return (await client.leaseGrant(ttl)).id;
    },
    async leaseKeepAlive(id) {
      const tries = [client, ...keepAliveVia].map((c) => c.leaseKeepAliveOnce(id, { deadlineMs: 2000 }));
      if (datagrams) tries.push(datagrams.keepAlive(id, { deadlineMs: 2000 }));
      return Number(await Promise.any(tries));
    },
    async leaseRevoke(id) {
      await client.leaseRevoke(id);
    },
    isLocalLeader: isLeader,
    watch: (prefix, onChange) => watchPrefix(client, prefix, onChange),
  };
}
