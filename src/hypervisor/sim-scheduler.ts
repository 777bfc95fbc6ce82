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
 * scheduled, so a run is a pure function of its inputs.
 */
export class ManualScheduler implements SimScheduler {
  private time: number;
  private seq = 0;
  private timers: Timer[] = [];

  constructor(startMs = 0) {
    this.time = startMs;
  }

  now(): number {
    return this.time;
  }

  schedule(delayMs: number, fn: () => void): CancelTimer {
    const timer: Timer = { at: this.time + Math.max(0, delayMs), seq: this.seq++, fn, cancelled: false };
    this.timers.push(timer);
    return () => {
      timer.cancelled = true;
    };
  }

  /** Number of timers still waiting. */
  pending(): number {
    return this.timers.filter((t) => !t.cancelled).length;
  }

  /** Runs every timer due up to `now() + ms` in time order, timers scheduled meanwhile included. */
  advance(ms: number): void {
    const until = this.time + ms;
    for (;;) {
      const next = this.nextDue(until);
      if (!next) break;
      this.time = next.at;
      next.fn();
    }
    this.time = until;
  }

  private nextDue(until: number): Timer | undefined {
    this.timers = this.timers.filter((t) => !t.cancelled);
    let best: Timer | undefined;
    for (const t of this.timers) {
      if (t.at <= until && (!best || t.at < best.at || (t.at === best.at && t.seq < best.seq))) best = t;
    }
    if (best) this.timers.splice(this.timers.indexOf(best), 1);
    return best;
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
