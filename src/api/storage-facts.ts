// The answering node's storage facts for `zsha status` — the shared storage's health (CephConf: `ceph
// status`) and a timed read of the MN-VM image (`rbd info` + `rados get`) — observed in the background and
// kept with the time of each observation. A status request reads the last observation and its age; it never
// waits on a Ceph process: each takes 100–200 ms on a quiet node (seconds on a loaded or degraded one),
// and `zsha status` has to answer within 300 ms.
//
// Each fact has its own loop, so a hung `ceph status` does not hold back the image read. A loop runs one
// probe at a time: the next starts only once the previous one settled, however long after its timeout that
// is (CephCli kills its tool at its own timeout), so a slow Ceph never piles up processes.

import { setTimeout as sleep } from "node:timers/promises";
import type { ImageStore, ReadProbe, StorageHealth } from "../image/image-store.js";

/** The answering node's view of the shared storage, once its HA agent has one (see serve.ts). */
export type StorageProbe = Pick<ImageStore, "health" | "readProbe">;

/** One observation: what the probe answered (or why it did not), and how long ago. */
export type Observed<T> = { readonly ageMs: number } & (
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: string }
);

/** Monotonic time (ms) and an abortable sleep; injected so that tests drive time themselves. */
export interface FactsClock {
  now(): number;
  /** Resolves after `ms`, or at once when `signal` aborts (never rejects). */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}

export const realFactsClock: FactsClock = {
  now: () => performance.now(),
  // Unref'd: a forgotten stop() must not keep a process alive.
  sleep: (ms, signal) => sleep(ms, undefined, { signal, ref: false }).catch(() => {}),
};

export interface FactsTiming {
  /** Pause after an answer before the next probe. */
  readonly everyMs: number;
  /**
   * Pause after a failure. Shorter: the usual failure is a node that just started and has no config loaded
   * yet (the probe throws at once, no process runs); status should show the storage soon after it loads.
   */
  readonly afterFailureMs: number;
  /** A probe that has not answered by then is observed as a failure (it keeps its slot until it settles). */
  readonly timeoutMs: number;
}

/** About as often as the node report's own image check (NodeReporter: every 5 s). */
export const STORAGE_FACTS_TIMING: FactsTiming = { everyMs: 5000, afterFailureMs: 2000, timeoutMs: 5000 };

type Observation<T> = { readonly at: number } & (
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: string }
);

/** One fact, observed again and again by one loop. */
class Watched<T> {
  private last: Observation<T> | undefined;
  /** Probes started so far (status requests start none). */
  started = 0;

  constructor(
    private readonly probe: () => Promise<T>,
    private readonly clock: FactsClock,
    private readonly timing: FactsTiming,
  ) {}

  latest(): Observed<T> | undefined {
    const o = this.last;
    if (!o) return undefined;
    const ageMs = Math.max(0, this.clock.now() - o.at);
    return o.ok ? { ok: true, value: o.value, ageMs } : { ok: false, error: o.error, ageMs };
  }

  async run(stop: AbortSignal): Promise<void> {
    while (!stop.aborted) {
      const ok = await this.observe(stop);
      await this.clock.sleep(ok ? this.timing.everyMs : this.timing.afterFailureMs, stop);
    }
  }

  /** One probe, recorded when it answers or at its timeout; returns once it settled (or on stop). */
  private async observe(stop: AbortSignal): Promise<boolean> {
    this.started++;
    // This probe's own signal: stop() aborts it, and so does the end of this call (which ends the timeout's
    // sleep); its listeners go with it, none pile up on `stop`.
    const mine = new AbortController();
    const onStop = () => mine.abort();
    stop.addEventListener("abort", onStop, { once: true });
    try {
      const stopped = new Promise<"stopped">((r) =>
        mine.signal.addEventListener("abort", () => r("stopped"), { once: true }),
      );
      // Through a promise, so that a probe throwing at once (no config loaded yet) is a failed observation.
      const answer = Promise.resolve()
        .then(() => this.probe())
        .then(
          (value): Observation<T> => ({ ok: true, value, at: this.clock.now() }),
          (e: unknown): Observation<T> => ({ ok: false, error: message(e), at: this.clock.now() }),
        );
      const timedOut = this.clock.sleep(this.timing.timeoutMs, mine.signal).then(() => "timeout" as const);
      let first = await Promise.race([answer, timedOut, stopped]);
      if (stop.aborted) return false;
      if (first === "timeout") {
        this.last = {
          ok: false,
          error: `no answer within ${this.timing.timeoutMs} ms`,
          at: this.clock.now(),
        };
        // The late answer, when it comes, is the newer observation (its latency tells how slow it was).
        first = await Promise.race([answer, stopped]);
      }
      if (first === "stopped") return false;
      this.last = first;
      return first.ok;
    } finally {
      stop.removeEventListener("abort", onStop);
      mine.abort();
    }
  }
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** The storage facts of one node, refreshed in the background until stop(). */
export class StorageFacts {
  private readonly stopping = new AbortController();
  private readonly health: Watched<StorageHealth>;
  private readonly read: Watched<ReadProbe>;
  private readonly loops: Promise<void>[];

  private constructor(probe: StorageProbe, clock: FactsClock, timing: FactsTiming) {
    this.health = new Watched(() => probe.health(), clock, timing);
    this.read = new Watched(() => probe.readProbe(), clock, timing);
    this.loops = [this.health.run(this.stopping.signal), this.read.run(this.stopping.signal)];
  }

  /** Starts observing `probe` now (its first probes run at once). */
  static start(
    probe: StorageProbe,
    opts: { clock?: FactsClock; timing?: Partial<FactsTiming> } = {},
  ): StorageFacts {
    return new StorageFacts(probe, opts.clock ?? realFactsClock, { ...STORAGE_FACTS_TIMING, ...opts.timing });
  }

  /** The last health observation with its age; undefined while the first probe has not answered. */
  latestHealth(): Observed<StorageHealth> | undefined {
    return this.health.latest();
  }

  /** The last image read with its age; undefined while the first probe has not answered. */
  latestRead(): Observed<ReadProbe> | undefined {
    return this.read.latest();
  }

  /** Probes started so far, per fact. */
  probesStarted(): { health: number; read: number } {
    return { health: this.health.started, read: this.read.started };
  }

  /** Ends both loops; a probe under way is left to settle on its own, its answer unused. */
  async stop(): Promise<void> {
    this.stopping.abort();
    await Promise.all(this.loops);
  }
}
