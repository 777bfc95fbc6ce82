// Clients waiting for something the Raft loop will produce later: the result of their proposal (by request
// id) or a linearizable read point (batched ReadIndex rounds). Every wait is bounded.

import { Code, RpcError } from "../grpc/index.js";

interface Waiter<T> {
  resolve(v: T): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
}

/** Proposal results by request id. */
export class ProposalWaiters<T> {
  private next = 1n;
  private waiters = new Map<bigint, Waiter<T>>();

  constructor(private readonly timeoutMs: number) {}

  /** Registers a waiter and returns its id and the promise of its result. */
  register(what: string): { id: bigint; done: Promise<T> } {
    const id = this.next++;
    const done = new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(id);
        reject(
          new RpcError(
            Code.DEADLINE_EXCEEDED,
            `${what} was proposed but not applied within ${this.timeoutMs} ms (leader change or lost quorum); it may still take effect`,
          ),
        );
      }, this.timeoutMs);
      this.waiters.set(id, { resolve, reject, timer });
    });
    return { id, done };
  }

  resolve(id: bigint, v: T): void {
    const w = this.waiters.get(id);
    if (!w) return;
    this.waiters.delete(id);
    clearTimeout(w.timer);
    w.resolve(v);
  }

  reject(id: bigint, e: Error): void {
    const w = this.waiters.get(id);
    if (!w) return;
    this.waiters.delete(id);
    clearTimeout(w.timer);
    w.reject(e);
  }

  rejectAll(e: Error): void {
    for (const id of [...this.waiters.keys()]) this.reject(id, e);
  }
}

interface ReadRound {
  readonly ctx: string;
  readonly waiters: Waiter<void>[];
  /** Set when the ReadState arrived: the waiters are served once the state machine applied it. */
  index?: number;
  readonly timer: NodeJS.Timeout;
}

/**
 * Linearizable reads (Raft thesis §6.4) batched into rounds: every read that arrives while a round is in
 * flight joins the next one, which starts only after it — a read must never ride on a ReadIndex issued
 * before it arrived.
 */
export class ReadBatcher {
  private queued: Waiter<void>[] = [];
  private inFlight: ReadRound | undefined;
  private awaitingApply: ReadRound[] = [];
  private seq = 0;

  constructor(
    private readonly timeoutMs: number,
    private readonly issue: (ctx: Uint8Array) => void,
    private readonly applied: () => number,
  ) {}

  /** Resolves once this member's state machine reflects every write committed before the call. */
  wait(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const w: Waiter<void> = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.queued = this.queued.filter((q) => q !== w);
          reject(
            new RpcError(
              Code.UNAVAILABLE,
              `no linearizable read point within ${this.timeoutMs} ms (no leader?); retry`,
            ),
          );
        }, this.timeoutMs),
      };
      this.queued.push(w);
      this.maybeStart();
    });
  }

  private maybeStart(): void {
    if (this.inFlight || this.queued.length === 0) return;
    const ctx = `r${++this.seq}`;
    const waiters = this.queued;
    this.queued = [];
    const round: ReadRound = {
      ctx,
      waiters,
      timer: setTimeout(
        () => this.fail(round, "the read round got no answer from the leader"),
        this.timeoutMs,
      ),
    };
    this.inFlight = round;
    try {
      this.issue(new TextEncoder().encode(ctx));
    } catch (e) {
      this.fail(round, (e as Error).message);
    }
  }

  private fail(round: ReadRound, why: string): void {
    clearTimeout(round.timer);
    if (this.inFlight === round) this.inFlight = undefined;
    this.awaitingApply = this.awaitingApply.filter((r) => r !== round);
    for (const w of round.waiters) {
      clearTimeout(w.timer);
      w.reject(new RpcError(Code.UNAVAILABLE, `linearizable read failed: ${why}; retry`));
    }
    this.maybeStart();
  }

  /** A ReadState arrived from the Raft loop. */
  onReadState(ctx: Uint8Array, index: number): void {
    const key = new TextDecoder().decode(ctx);
    const round = this.inFlight;
    if (!round || round.ctx !== key) return;
    clearTimeout(round.timer);
    this.inFlight = undefined;
    round.index = index;
    this.awaitingApply.push(round);
    this.onApplied();
    this.maybeStart();
  }

  /** The state machine advanced: serve the rounds whose read index it reached. */
  onApplied(): void {
    if (this.awaitingApply.length === 0) return;
    const applied = this.applied();
    const ready = this.awaitingApply.filter((r) => (r.index ?? Number.POSITIVE_INFINITY) <= applied);
    if (ready.length === 0) return;
    this.awaitingApply = this.awaitingApply.filter((r) => !ready.includes(r));
    for (const r of ready) {
      for (const w of r.waiters) {
        clearTimeout(w.timer);
        w.resolve();
      }
    }
  }

  /** Leadership changed or the member stops: fail the round in flight so its readers retry elsewhere. */
  abortInFlight(why: string): void {
    if (this.inFlight) this.fail(this.inFlight, why);
  }
}
