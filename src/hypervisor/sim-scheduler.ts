/**
 * Time for the simulated hypervisor: an injected scheduler, so the same driver runs on a virtual clock
 * (tests, the deterministic simulator) and on the real one (the demo).
 */

export type CancelTimer = () => void;

export interface SimScheduler {
  /** Milliseconds on a monotonic clock. */
  now(): number;
  /** Runs `fn` once `delayMs` have passed (0: as soon as possible, after the current call returns). */
  schedule(delayMs: number, fn: () => void): CancelTimer;
}

interface Timer {
  readonly at: number;
  readonly seq: number;
  readonly fn: () => void;
  cancelled: boolean;
}

/**
 * A virtual clock: time moves only when told. Timers due at the same instant run in the order they were
 * scheduled, so a run is a pure function of its inputs. Timers sit in a binary heap ordered by (due
 * time, scheduling order); cancelled ones are dropped when they reach the top.
 */
export class ManualScheduler implements SimScheduler {
  private time: number;
  private seq = 0;
  private live = 0;
  private readonly heap: Timer[] = [];

  constructor(startMs = 0) {
    this.time = startMs;
  }

  now(): number {
    return this.time;
  }

  schedule(delayMs: number, fn: () => void): CancelTimer {
    const timer: Timer = { at: this.time + Math.max(0, delayMs), seq: this.seq++, fn, cancelled: false };
    this.push(timer);
    this.live++;
    return () => {
      if (timer.cancelled) return;
      timer.cancelled = true;
      this.live--;
    };
  }

  /** Number of timers still waiting. */
  pending(): number {
    return this.live;
  }

  /** Runs every timer due up to `now() + ms` in time order, timers scheduled meanwhile included. */
  advance(ms: number): void {
    const until = this.time + ms;
    for (;;) {
      const top = this.heap[0];
      if (!top || top.at > until) break;
      this.pop();
      if (top.cancelled) continue;
      top.cancelled = true;
      this.live--;
      this.time = top.at;
      top.fn();
    }
    this.time = until;
  }

  private before(a: Timer, b: Timer): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private push(t: Timer): void {
    const h = this.heap;
    h.push(t);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(h[i]!, h[parent]!)) break;
      [h[i], h[parent]] = [h[parent]!, h[i]!];
      i = parent;
    }
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.before(h[l]!, h[m]!)) m = l;
      if (r < h.length && this.before(h[r]!, h[m]!)) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }
}

/** Wall-clock scheduling for the demo: Node's timers and `performance.now()`. */
export function realTimeScheduler(): SimScheduler {
  return {
    now: () => performance.now(),
    schedule(delayMs, fn) {
      const t = setTimeout(fn, Math.max(0, delayMs));
      return () => clearTimeout(t);
    },
  };
}
