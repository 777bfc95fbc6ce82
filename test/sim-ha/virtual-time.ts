// Virtual time for async code: test/sim's synchronous Scheduler, stepped one event at a time, each step
// followed by the microtasks (and promise chains) that event unleashed, before the next event runs. The HA
// agents are async; this makes their interleaving a pure function of the seed, like everything else.

import type { HaClock } from "../../src/ha/env.js";
import type { CancelTimer, SimScheduler } from "../../src/hypervisor/sim-scheduler.js";
import { Scheduler } from "../sim/scheduler.js";

const flush = () => new Promise<void>((r) => setImmediate(r));

export class VirtualTime implements SimScheduler {
  readonly sched = new Scheduler();
  events = 0;

  now(): number {
    return this.sched.now;
  }

  schedule(delayMs: number, fn: () => void): CancelTimer {
    const ev = this.sched.after(Math.max(0, delayMs), fn);
    return () => {
      ev.cancelled = true;
    };
  }

  /**
   * Runs every event due up to `until`, one at a time; after each one its microtasks settle, then `after`
   * runs (the invariant checks). Stops early when `stop` holds after an event.
   */
  async runUntil(until: number, after: () => void, stop: () => boolean = () => false): Promise<void> {
    await flush();
    for (;;) {
      let ran = false;
      this.sched.runUntil(until, () => {
        ran = true;
        return true;
      });
      if (!ran) return;
      this.events++;
      // Two turns: a promise resolved by the event may itself resolve another before the code under test
      // reaches its next await on the clock (as in test/ha/support.ts).
      await flush();
      await flush();
      after();
      if (stop()) return;
    }
  }
}

/**
 * One node's clock: it runs at `rate` times true (virtual) time, so the clock-rate drift between nodes
 * that real quartz has is part of every run. Its monotonic time and its sleeps are both scaled.
 */
export class NodeClock implements HaClock {
  constructor(
    private readonly vt: VirtualTime,
    readonly rate: number,
  ) {}

  now(): number {
    return this.vt.now() * this.rate;
  }

  wallMs(): number {
    return 1_800_000_000_000 + this.now();
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.vt.schedule(ms / this.rate, resolve));
  }

  /** Virtual (true) ms for `ms` of this node's time. */
  toTrue(ms: number): number {
    return ms / this.rate;
  }
}
