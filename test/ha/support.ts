// In-process fixtures for the HA tests: an async virtual clock (timers run one at a time, each followed by
// the microtasks it unleashed, so async HA code interleaves deterministically) and the HA's KV over a real
// KvStore + Lessor (one replica, no Raft: the consensus layers have their own tests and simulator).

import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { compareToProto, kvEntry, opToProto } from "../../src/agent/ha-kv.js";
import { watchStore } from "../../src/agent/ha-watch.js";
import { CommandSchema } from "../../src/gen/zsha/kv/v1/command_pb.js";
import { RangeRequestSchema } from "../../src/gen/zsha/kv/v1/kv_pb.js";
import type { HaClock, HaKv, TxnCompare, TxnOp } from "../../src/ha/env.js";
import type { CancelTimer, SimScheduler } from "../../src/hypervisor/sim-scheduler.js";
import { KvStore, Lessor, leaseId } from "../../src/kv/index.js";
import { index } from "../../src/raft/index.js";

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

const flush = () => new Promise<void>((r) => setImmediate(r));

export class SimClock implements HaClock, SimScheduler {
  private t = 0;
  private seq = 0;
  private timers: Timer[] = [];
  /** Called after every timer (and its microtasks) ran: the place for invariant checks. */
  afterEach: (() => void) | undefined;

  now(): number {
    return this.t;
  }

  wallMs(): number {
    return 1_800_000_000_000 + this.t;
  }

  schedule(delayMs: number, fn: () => void): CancelTimer {
    const timer: Timer = { at: this.t + Math.max(0, delayMs), seq: this.seq++, fn, cancelled: false };
    this.timers.push(timer);
    return () => {
      timer.cancelled = true;
    };
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.schedule(ms, resolve));
  }

  /** Moves time forward by `ms`, running every timer due on the way. */
  async advance(ms: number): Promise<void> {
    const target = this.t + ms;
    await flush();
    for (;;) {
      this.timers = this.timers.filter((x) => !x.cancelled);
      let next: Timer | undefined;
      for (const x of this.timers)
        if (x.at <= target && (!next || x.at < next.at || (x.at === next.at && x.seq < next.seq))) next = x;
      if (!next) break;
      this.timers = this.timers.filter((x) => x !== next);
      this.t = next.at;
      next.fn();
      await flush();
      await flush();
      this.afterEach?.();
    }
    this.t = target;
  }

  /** Advances in steps until `cond` holds or `maxMs` passed; returns the time it took. */
  async until(cond: () => boolean, maxMs: number, stepMs = 100): Promise<number> {
    const start = this.t;
    while (!cond()) {
      if (this.t - start >= maxMs) throw new Error(`condition not met within ${maxMs} ms of virtual time`);
      await this.advance(stepMs);
    }
    return this.t - start;
  }
}

const enc = new TextEncoder();
const _dec = new TextDecoder();

/** The HA's KV over one real KvStore; lease expiry driven by a real Lessor on the virtual clock. */
export class LocalKv {
  readonly store = new KvStore({ limits: { minLeaseTtlSeconds: 1 } });
  readonly lessor: Lessor;
  private idx = 0;
  /** Which node's agent plays the Raft leader (runs the controller). */
  leader: string | undefined;
  /** Nodes whose calls fail (cut off from the cluster). */
  readonly cutOff = new Set<string>();

  constructor(private readonly clock: SimClock) {
    this.lessor = new Lessor(this.store);
    this.lessor.promote(clock.now());
    const tick = () => {
      for (const id of this.lessor.expired(clock.now())) {
        this.apply({ case: "leaseExpire", value: { id } });
        this.lessor.onRevoke(id);
      }
      clock.schedule(100, tick);
    };
    clock.schedule(100, tick);
  }

  private apply(op: MessageInitShape<typeof CommandSchema>["op"]): ReturnType<KvStore["apply"]> {
    const r = this.store.apply(index(++this.idx), create(CommandSchema, { origin: "t", requestId: 0n, op }));
    if (r.ok && r.response.case === "leaseGrant")
      this.lessor.onGrant(leaseId(r.response.value.id), this.clock.now());
    return r;
  }

  /** The KV as one node sees it: every call takes `latencyMs` and fails while that node is cut off. */
  forNode(node: string, latencyMs = 2): HaKv {
    const gate = async () => {
      // The test's own calls (latency 0) must not wait for a clock that only the test itself advances.
      if (latencyMs === 0) return;
      await this.clock.sleep(latencyMs);
      if (this.cutOff.has(node)) {
        await this.clock.sleep(3000);
        throw new Error(`${node} cannot reach the cluster`);
      }
    };
    const ok = (r: ReturnType<KvStore["apply"]>) => {
      if (!r.ok) throw r.error;
      return r;
    };
    return {
      get: async (key) => {
        await gate();
        const kv = this.store.get(enc.encode(key));
        return kv ? kvEntry(kv) : undefined;
      },
      list: async (prefix) => {
        await gate();
        return this.store
          .range(create(RangeRequestSchema, { key: enc.encode(prefix), prefix: true }))
          .kvs.map(kvEntry);
      },
      txn: async (
        compare: readonly TxnCompare[],
        success: readonly TxnOp[],
        failure: readonly TxnOp[] = [],
      ) => {
        await gate();
        const r = ok(
          this.apply({
            case: "txn",
            value: {
              compare: compare.map(compareToProto),
              success: success.map(opToProto),
              failure: failure.map(opToProto),
            },
          }),
        );
        return r.response.case === "txn" && r.response.value.succeeded;
      },
      put: async (key, value, lease) => {
        await gate();
        ok(this.apply({ case: "put", value: { key: enc.encode(key), value, lease: lease ?? 0n } }));
      },
      leaseGrant: async (ttl) => {
        await gate();
        const r = ok(this.apply({ case: "leaseGrant", value: { ttl: BigInt(ttl), id: 0n } }));
        return r.response.case === "leaseGrant" ? r.response.value.id : 0n;
      },
      leaseKeepAlive: async (id) => {
        await gate();
        return this.lessor.keepAlive(leaseId(id), this.clock.now()) ?? 0;
      },
      leaseRevoke: async (id) => {
        await gate();
        if (this.store.lease(id)) {
          this.apply({ case: "leaseRevoke", value: { id } });
          this.lessor.onRevoke(leaseId(id));
        }
      },
      isLocalLeader: () => this.leader === node,
      // Changes reach the node `latencyMs` after they apply; a node cut off gets none (its periodic
      // rounds find them later, as with a real watch stream that broke).
      watch: (prefix, onChange) =>
        watchStore(
          () => this.store,
          prefix,
          (c) =>
            void this.clock.schedule(latencyMs, () => {
              if (!this.cutOff.has(node)) onChange(c);
            }),
        ),
    };
  }
}
