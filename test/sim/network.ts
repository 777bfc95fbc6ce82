// A simulated network between named endpoints: per-message delay (reordering follows from it), loss,
// duplication, latency spikes, and symmetric or one-way partitions. Faults are set by the run's schedule.

import type { Rng } from "./rng.js";
import type { Scheduler } from "./scheduler.js";

export interface NetworkFaults {
  /** Probability that a message is dropped. */
  loss: number;
  /** Probability that a message is delivered twice. */
  duplicate: number;
  /** Base one-way delay range in ms. */
  minDelay: number;
  maxDelay: number;
  /** Probability that a message is delayed by a spike of up to `spikeDelay` ms. */
  spike: number;
  spikeDelay: number;
}

export const CALM: NetworkFaults = {
  loss: 0,
  duplicate: 0,
  minDelay: 1,
  maxDelay: 5,
  spike: 0,
  spikeDelay: 0,
};

export class SimNetwork<M> {
  faults: NetworkFaults = { ...CALM };
  /** Directed links that drop everything: "a>b". */
  private blocked = new Set<string>();
  sent = 0;
  dropped = 0;

  constructor(
    private readonly sched: Scheduler,
    private readonly rng: Rng,
    private readonly deliver: (to: string, msg: M) => void,
  ) {}

  send(from: string, to: string, msg: M): void {
    this.sent++;
    if (this.blocked.has(`${from}>${to}`) || this.rng.chance(this.faults.loss)) {
      this.dropped++;
      return;
    }
    const copies = this.rng.chance(this.faults.duplicate) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      let delay = this.rng.real(this.faults.minDelay, this.faults.maxDelay);
      if (this.rng.chance(this.faults.spike)) delay += this.rng.real(0, this.faults.spikeDelay);
      this.sched.after(delay, () => {
        // A partition that starts while a message is in flight also drops it.
        if (this.blocked.has(`${from}>${to}`)) {
          this.dropped++;
          return;
        }
        this.deliver(to, msg);
      });
    }
  }

  /** Symmetric partition: no traffic between any node of `a` and any of `b`. */
  partition(a: readonly string[], b: readonly string[]): void {
    for (const x of a) {
      for (const y of b) {
        this.blockOneWay(x, y);
        this.blockOneWay(y, x);
      }
    }
  }

  blockOneWay(from: string, to: string): void {
    this.blocked.add(`${from}>${to}`);
  }

  isBlocked(from: string, to: string): boolean {
    return this.blocked.has(`${from}>${to}`);
  }

  heal(): void {
    this.blocked.clear();
  }

  describeBlocked(): string {
    return [...this.blocked].sort().join(" ");
  }
}
