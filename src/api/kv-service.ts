// The KV, Watch and Lease services of one member. Writes become Raft proposals; linearizable reads wait for a
// ReadIndex point; calls only the leader can answer are forwarded to it. Every request is validated first:
// bad input gets INVALID_ARGUMENT with one sentence and nothing is proposed.

import { create } from "@bufbuild/protobuf";
import * as kvpb from "../gen/zsha/kv/v1/kv_pb.js";
import { Code, RpcError, type ServiceImpl } from "../grpc/index.js";
import {
  type ApplyResult,
  type CommandResponse,
  CompactedError,
  KvError,
  leaseId,
  type RevisionEvents,
  validateCompact,
  validateDeleteRange,
  validateLeaseGrant,
  validateLeaseId,
  validatePut,
  validateRange,
  validateTxn,
} from "../kv/index.js";
import type { CommandInit, Member } from "../server/member.js";
import { AsyncQueue } from "./async-queue.js";
import type { LeaderForwarder } from "./forward.js";

function check(f: () => void): void {
  try {
    f();
  } catch (e) {
    if (e instanceof KvError) throw e.toRpcError();
    throw e;
  }
}

function header(member: Member): kvpb.ResponseHeader {
  return create(kvpb.ResponseHeaderSchema, {
    member: member.opts.name,
    revision: BigInt(member.kv.revision),
    raftTerm: BigInt(member.status().term),
  });
}

/** Proposes a command and returns its response with this member's header; apply errors become RpcErrors. */
async function write<T extends { header?: kvpb.ResponseHeader }>(
  member: Member,
  op: CommandInit,
  what: string,
  want: CommandResponse["case"],
): Promise<T> {
  const r: ApplyResult = await member.propose(op, what);
  if (!r.ok) throw r.error.toRpcError();
  if (r.response.case !== want)
    throw new RpcError(Code.INTERNAL, `${what}: unexpected ${r.response.case} result`);
  const value = r.response.value as unknown as T;
  value.header = create(kvpb.ResponseHeaderSchema, {
    member: member.opts.name,
    revision: BigInt(r.revision),
    raftTerm: BigInt(member.status().term),
  });
  return value;
}

export function kvService(member: Member): ServiceImpl<typeof kvpb.KVService.method> {
  return {
    async range(req) {
      check(() => validateRange(req, member.kv.limits));
      if (!req.serializable) await member.linearizableRead();
      const res = member.kv.range(req);
      res.header = header(member);
      return res;
    },
    async put(req) {
      check(() => validatePut(req, member.kv.limits));
      return write<kvpb.PutResponse>(member, { case: "put", value: req }, "put", "put");
    },
    async deleteRange(req) {
      check(() => validateDeleteRange(req, member.kv.limits));
      return write<kvpb.DeleteRangeResponse>(
        member,
        { case: "deleteRange", value: req },
        "delete_range",
        "deleteRange",
      );
    },
    async txn(req) {
      check(() => validateTxn(req, member.kv.limits));
      return write<kvpb.TxnResponse>(member, { case: "txn", value: req }, "txn", "txn");
    },
    async compact(req) {
      check(() => validateCompact(req));
      return write<kvpb.CompactResponse>(member, { case: "compact", value: req }, "compact", "compact");
    },
  };
}

export function watchService(member: Member): ServiceImpl<typeof kvpb.WatchService.method> {
  return {
    watch(requests, ctx) {
      const out = new AsyncQueue<kvpb.WatchResponse>();
      const watchers = new Map<bigint, { cancel(): void }>();
      const endAll = () => {
        for (const w of watchers.values()) w.cancel();
        watchers.clear();
      };
      ctx.signal.addEventListener("abort", () => {
        endAll();
        out.close();
      });
      void (async () => {
        try {
          for await (const req of requests) {
            if (req.request.case === "create") {
              const c = req.request.value;
              if (c.key.length === 0) {
                throw new RpcError(
                  Code.INVALID_ARGUMENT,
                  "watch: key must not be empty (use a prefix to watch many keys)",
                );
              }
              let id = 0n;
              // The store replays past revisions synchronously inside watch(), before the watch has its id:
              // those batches wait until the client has the `created` answer, as etcd orders them.
              let early: RevisionEvents[] | undefined = [];
              const send = (batch: RevisionEvents) =>
                out.push(
                  create(kvpb.WatchResponseSchema, {
                    header: create(kvpb.ResponseHeaderSchema, {
                      member: member.opts.name,
                      revision: BigInt(batch.revision),
                    }),
                    watchId: id,
                    events: [...batch.events],
                  }),
                );
              try {
                const w = member.kv.watch(
                  {
                    key: c.key,
                    prefix: c.prefix,
                    startRevision: Number(c.startRevision) as never,
                    prevKv: c.prevKv,
                  },
                  {
                    onEvents: (batch) => (early ? early.push(batch) : send(batch)),
                    onCancel: (reason) => {
                      watchers.delete(id);
                      out.push(
                        create(kvpb.WatchResponseSchema, {
                          header: header(member),
                          watchId: id,
                          canceled: true,
                          cancelReason: reason.message,
                          ...(reason instanceof CompactedError
                            ? { compactRevision: BigInt(reason.oldest) }
                            : {}),
                        }),
                      );
                    },
                  },
                );
                id = BigInt(w.id);
                watchers.set(id, w);
                out.push(
                  create(kvpb.WatchResponseSchema, { header: header(member), watchId: id, created: true }),
                );
                for (const batch of early) send(batch);
                early = undefined;
              } catch (e) {
                if (!(e instanceof CompactedError)) throw e;
                out.push(
                  create(kvpb.WatchResponseSchema, {
                    header: header(member),
                    created: true,
                    canceled: true,
                    compactRevision: BigInt(e.oldest),
                    cancelReason: e.message,
                  }),
                );
              }
            } else if (req.request.case === "cancel") {
              const id = req.request.value.watchId;
              watchers.get(id)?.cancel();
              watchers.delete(id);
              out.push(
                create(kvpb.WatchResponseSchema, { header: header(member), watchId: id, canceled: true }),
              );
            }
          }
        } catch (e) {
          endAll();
          out.close(e instanceof KvError ? e.toRpcError() : (e as Error));
        }
      })();
      return out;
    },
  };
}

export function leaseService(
  member: Member,
  fwd: LeaderForwarder,
): ServiceImpl<typeof kvpb.LeaseService.method> {
  return {
    async leaseGrant(req) {
      check(() => validateLeaseGrant(req, member.kv.limits));
      return write<kvpb.LeaseGrantResponse>(
        member,
        { case: "leaseGrant", value: req },
        "lease_grant",
        "leaseGrant",
      );
    },
    async leaseRevoke(req) {
      check(() => validateLeaseId("lease_revoke", req.id));
      return write<kvpb.LeaseRevokeResponse>(
        member,
        { case: "leaseRevoke", value: req },
        "lease_revoke",
        "leaseRevoke",
      );
    },
    async *leaseKeepAlive(requests) {
      for await (const req of requests) {
        check(() => validateLeaseId("lease_keep_alive", req.id));
        let ttl: bigint;
        if (member.isLeader()) {
          ttl = BigInt(member.lessor.keepAlive(leaseId(req.id), performance.now()) ?? 0);
        } else {
          ttl = await fwd.leader().leaseKeepAliveOnce(req.id);
        }
        yield { header: header(member), id: req.id, ttl };
      }
    },
    async leaseTimeToLive(req) {
      check(() => validateLeaseId("lease_time_to_live", req.id));
      if (!member.isLeader()) return fwd.leader().leaseTimeToLive(req.id, { keys: req.keys });
      await member.linearizableRead();
      const info = member.kv.lease(req.id);
      if (!info) return { header: header(member), id: req.id, ttl: -1n };
      const ms = member.lessor.remainingMs(leaseId(req.id), performance.now()) ?? info.ttl * 1000;
      return {
        header: header(member),
        id: req.id,
        ttl: BigInt(Math.max(0, Math.ceil(ms / 1000))),
        grantedTtl: BigInt(info.ttl),
        keys: req.keys ? info.keys : [],
      };
    },
    async leaseLeases() {
      await member.linearizableRead();
      return { header: header(member), leases: member.kv.leaseIds().map((id) => ({ id })) };
    },
  };
}
