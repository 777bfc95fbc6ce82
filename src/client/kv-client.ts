// The client of zsha's replicated store, used by the HA controller, the CLI and the tests alike: typed
// calls over the KV, Watch, Lease and Cluster services of one member, with failover between endpoints.

import type { MessageInitShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import * as clusterpb from "../gen/zsha/cluster/v1/cluster_pb.js";
import * as kvpb from "../gen/zsha/kv/v1/kv_pb.js";
import { type CallOptions, type Client, Code, createClient, RpcError } from "../grpc/index.js";

export type Bytes = string | Uint8Array;

const enc = new TextEncoder();
const dec = new TextDecoder();

export function bytes(b: Bytes): Uint8Array {
  return typeof b === "string" ? enc.encode(b) : b;
}

export function text(b: Uint8Array): string {
  return dec.decode(b);
}

/** grpc-js found no connection to the endpoint: the request never left this process. */
function neverSent(e: RpcError): boolean {
  return e.message.startsWith("No connection established");
}

export interface KvClientOptions {
  /** `host:port` or `unix:/path`; calls go to the first that answers and stay there until it fails. */
  readonly endpoints: readonly string[];
  readonly credentials?: grpc.ChannelCredentials;
  /** Per-call deadline unless a call says otherwise. */
  readonly deadlineMs?: number;
  /** Extra grpc-js channel options (e.g. the TLS target name of a member addressed by IP). */
  readonly channelOptions?: grpc.ChannelOptions;
}

interface Conn {
  readonly endpoint: string;
  readonly channel: grpc.Channel;
  readonly kv: Client<typeof kvpb.KVService.method>;
  readonly watch: Client<typeof kvpb.WatchService.method>;
  readonly lease: Client<typeof kvpb.LeaseService.method>;
  readonly cluster: Client<typeof clusterpb.ClusterService.method>;
}

export type Compare = MessageInitShape<typeof kvpb.CompareSchema>;
export type RequestOp = MessageInitShape<typeof kvpb.RequestOpSchema>;

export class KvClient {
  private readonly opts: Required<KvClientOptions>;
  private conns = new Map<string, Conn>();
  private current = 0;

  constructor(opts: KvClientOptions) {
    if (opts.endpoints.length === 0) throw new Error("KvClient needs at least one endpoint");
    this.opts = {
      credentials: grpc.credentials.createInsecure(),
      deadlineMs: 5000,
      channelOptions: {},
      ...opts,
    };
  }

  private conn(i = this.current): Conn {
    const endpoint = this.opts.endpoints[i % this.opts.endpoints.length]!;
    let c = this.conns.get(endpoint);
    if (!c) {
      const channel = new grpc.Channel(endpoint, this.opts.credentials, {
        "grpc.max_receive_message_length": 64 << 20,
        "grpc.initial_reconnect_backoff_ms": 100,
        "grpc.max_reconnect_backoff_ms": 1000,
        // grpc-js keeps every message of a call in a retry buffer and re-slices it per write: on long-lived
        // streams (watch, keep-alive) that costs most of the CPU (measured by the transport's tests).
        "grpc.enable_retries": 0,
        "grpc.per_rpc_retry_buffer_size": 0,
        ...this.opts.channelOptions,
      });
      c = {
        endpoint,
        channel,
        kv: createClient(kvpb.KVService, channel),
        watch: createClient(kvpb.WatchService, channel),
        lease: createClient(kvpb.LeaseService, channel),
        cluster: createClient(clusterpb.ClusterService, channel),
      };
      this.conns.set(endpoint, c);
    }
    return c;
  }

  /** The endpoint calls currently go to. */
  endpoint(): string {
    return this.conn().endpoint;
  }

  private callOpts(o?: CallOptions): CallOptions {
    return { deadlineMs: this.opts.deadlineMs, ...o };
  }

  /**
   * Runs `f` against the current endpoint; when the member cannot be reached (no connection, so the request
   * never left), tries the next one. A call that may have reached its member before failing (connection
   * lost, member stopping) is tried elsewhere only when `repeatable` (reads, status, keep-alive): a write
   * sent twice could apply twice, and a CAS would then report failure although its first copy succeeded.
   * Other errors are the answer and are thrown as they are.
   */
  private async call<T>(f: (c: Conn) => Promise<T>, repeatable = false): Promise<T> {
    const n = this.opts.endpoints.length;
    let last: unknown;
    for (let attempt = 0; attempt < n; attempt++) {
      const i = (this.current + attempt) % n;
      try {
        const res = await f(this.conn(i));
        this.current = i;
        return res;
      } catch (e) {
        last = e;
        if (!(e instanceof RpcError) || e.code !== Code.UNAVAILABLE || n === 1) throw e;
        if (!repeatable && !neverSent(e)) throw e;
      }
    }
    throw last;
  }

  put(
    key: Bytes,
    value: Bytes,
    o: { lease?: bigint; prevKv?: boolean } & CallOptions = {},
  ): Promise<kvpb.PutResponse> {
    return this.call((c) =>
      c.kv.put(
        { key: bytes(key), value: bytes(value), lease: o.lease ?? 0n, prevKv: o.prevKv ?? false },
        this.callOpts(o),
      ),
    );
  }

  get(
    key: Bytes,
    o: {
      prefix?: boolean;
      limit?: number;
      countOnly?: boolean;
      keysOnly?: boolean;
      serializable?: boolean;
    } & CallOptions = {},
  ): Promise<kvpb.RangeResponse> {
    return this.call(
      (c) =>
        c.kv.range(
          {
            key: bytes(key),
            prefix: o.prefix ?? false,
            limit: BigInt(o.limit ?? 0),
            countOnly: o.countOnly ?? false,
            keysOnly: o.keysOnly ?? false,
            serializable: o.serializable ?? false,
          },
          this.callOpts(o),
        ),
      true,
    );
  }

  /** The value of one key, or undefined. */
  async getValue(
    key: Bytes,
    o: CallOptions & { serializable?: boolean } = {},
  ): Promise<kvpb.KeyValue | undefined> {
    return (await this.get(key, o)).kvs[0];
  }

  delete(
    key: Bytes,
    o: { prefix?: boolean; prevKv?: boolean } & CallOptions = {},
  ): Promise<kvpb.DeleteRangeResponse> {
    return this.call((c) =>
      c.kv.deleteRange(
        { key: bytes(key), prefix: o.prefix ?? false, prevKv: o.prevKv ?? false },
        this.callOpts(o),
      ),
    );
  }

  txn(
    t: { compare?: Compare[]; success?: RequestOp[]; failure?: RequestOp[] },
    o: CallOptions = {},
  ): Promise<kvpb.TxnResponse> {
    return this.call((c) =>
      c.kv.txn(
        { compare: t.compare ?? [], success: t.success ?? [], failure: t.failure ?? [] },
        this.callOpts(o),
      ),
    );
  }

  compact(revision: bigint, o: CallOptions = {}): Promise<kvpb.CompactResponse> {
    return this.call((c) => c.kv.compact({ revision }, this.callOpts(o)));
  }

  leaseGrant(ttlSeconds: number, o: { id?: bigint } & CallOptions = {}): Promise<kvpb.LeaseGrantResponse> {
    return this.call((c) =>
      c.lease.leaseGrant({ ttl: BigInt(ttlSeconds), id: o.id ?? 0n }, this.callOpts(o)),
    );
  }

  leaseRevoke(id: bigint, o: CallOptions = {}): Promise<kvpb.LeaseRevokeResponse> {
    return this.call((c) => c.lease.leaseRevoke({ id }, this.callOpts(o)));
  }

  leaseTimeToLive(
    id: bigint,
    o: { keys?: boolean } & CallOptions = {},
  ): Promise<kvpb.LeaseTimeToLiveResponse> {
    return this.call((c) => c.lease.leaseTimeToLive({ id, keys: o.keys ?? false }, this.callOpts(o)), true);
  }

  leaseLeases(o: CallOptions = {}): Promise<kvpb.LeaseLeasesResponse> {
    return this.call((c) => c.lease.leaseLeases({}, this.callOpts(o)), true);
  }

  /** One renewal over a short-lived stream; resolves with the remaining TTL in seconds (0: lease gone). */
  async leaseKeepAliveOnce(id: bigint, o: CallOptions = {}): Promise<bigint> {
    return this.call(async (c) => {
      const call = c.lease.leaseKeepAlive(this.callOpts(o));
      await call.send({ id });
      call.end();
      for await (const r of call.responses) return r.ttl;
      throw new RpcError(Code.UNAVAILABLE, "the keep-alive stream ended without an answer");
    }, true);
  }

  /** A long-lived keep-alive stream for a lease: `renew()` sends one renewal and resolves with its TTL. */
  leaseKeepAliveStream(id: bigint): { renew(o?: { timeoutMs?: number }): Promise<bigint>; close(): void } {
    let call: ReturnType<Conn["lease"]["leaseKeepAlive"]> | undefined;
    let it: AsyncIterator<kvpb.LeaseKeepAliveResponse> | undefined;
    const reset = () => {
      call?.cancel();
      call = undefined;
      it = undefined;
    };
    return {
      renew: async (o = {}) => {
        try {
          if (!call) {
            call = this.conn().lease.leaseKeepAlive();
            it = call.responses[Symbol.asyncIterator]();
          }
          await call.send({ id });
          const timeout = o.timeoutMs ?? this.opts.deadlineMs;
          let timer: NodeJS.Timeout | undefined;
          const r = await Promise.race([
            it!.next(),
            new Promise<never>((_, reject) => {
              timer = setTimeout(
                () =>
                  reject(new RpcError(Code.DEADLINE_EXCEEDED, `no keep-alive answer within ${timeout} ms`)),
                timeout,
              );
            }),
          ]).finally(() => clearTimeout(timer));
          if (r.done) throw new RpcError(Code.UNAVAILABLE, "the keep-alive stream ended");
          return r.value.ttl;
        } catch (e) {
          reset();
          this.current++;
          throw e;
        }
      },
      close: reset,
    };
  }

  /**
   * Watches `key` (or a prefix) from `startRevision` (0: from now). Responses arrive on the returned
   * iterable; `cancel()` ends it. A compacted start revision ends it with the WatchResponse carrying
   * compact_revision and canceled.
   */
  watch(
    key: Bytes,
    o: { prefix?: boolean; startRevision?: bigint; prevKv?: boolean } = {},
  ): { responses: AsyncIterable<kvpb.WatchResponse>; cancel(): void } {
    const call = this.conn().watch.watch();
    void call
      .send({
        request: {
          case: "create",
          value: {
            key: bytes(key),
            prefix: o.prefix ?? false,
            startRevision: o.startRevision ?? 0n,
            prevKv: o.prevKv ?? false,
          },
        },
      })
      .catch(() => {});
    return { responses: call.responses, cancel: () => call.cancel() };
  }

  memberList(o: { local?: boolean } & CallOptions = {}): Promise<clusterpb.MemberListResponse> {
    return this.call((c) => c.cluster.memberList({ local: o.local ?? false }, this.callOpts(o)), true);
  }

  memberAddLearner(
    name: string,
    peerAddress: string,
    o: CallOptions = {},
  ): Promise<clusterpb.MemberAddLearnerResponse> {
    return this.call((c) => c.cluster.memberAddLearner({ name, peerAddress }, this.callOpts(o)));
  }

  memberPromote(name: string, o: CallOptions = {}): Promise<clusterpb.MemberPromoteResponse> {
    return this.call((c) => c.cluster.memberPromote({ name }, this.callOpts(o)));
  }

  memberRemove(name: string, o: CallOptions = {}): Promise<clusterpb.MemberRemoveResponse> {
    return this.call((c) => c.cluster.memberRemove({ name }, this.callOpts(o)));
  }

  transferLeadership(to = "", o: CallOptions = {}): Promise<clusterpb.TransferLeadershipResponse> {
    return this.call((c) => c.cluster.transferLeadership({ to }, this.callOpts(o)));
  }

  status(o: CallOptions = {}): Promise<clusterpb.StatusResponse> {
    return this.call((c) => c.cluster.status({}, this.callOpts(o)), true);
  }

  close(): void {
    for (const c of this.conns.values()) c.channel.close();
    this.conns.clear();
  }
}
