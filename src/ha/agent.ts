// One node's HA agent: the node report, the local manager (owner side) and — on the Raft leader only — the
// controller, each a loop on the injected clock. A failing round is logged and retried next round.
//
// The local manager and the controller also look again as soon as the HA state they act on changes (a KV
// watch on /zsha/), instead of at their next periodic round: a migration request, the hand-over to the
// target, an owner lease that expired or an assignment then take effect within a KV round trip. The watch is
// only a wake-up: every round still reads the state linearizably, the periodic rounds stay as the fallback
// (a missed change waits for them, as before), and each loop runs one round at a time.

import { Controller } from "./controller.js";
import type { HaClock, HaEnv, KvChange } from "./env.js";
import { LocalManager } from "./local.js";
import { KEYS } from "./records.js";
import { NodeReporter } from "./reporter.js";

/** Ends a loop's wait between rounds early. A wake during a round makes the next round start at once. */
export class Wake {
  private pending = false;
  private wakeUp: (() => void) | undefined;

  fire(): void {
    this.pending = true;
    const w = this.wakeUp;
    this.wakeUp = undefined;
    w?.();
  }

  /** At the start of a round: the round reads the state after this, so it sees every change so far. */
  clear(): void {
    this.pending = false;
  }

  /** Resolves after `ms` on `clock`, or at the first wake (at once when one came since `clear`). */
  wait(clock: HaClock, ms: number): Promise<void> {
    if (this.pending) return Promise.resolve();
    return new Promise<void>((resolve) => {
      let done = false;
      const end = () => {
        if (done) return;
        done = true;
        if (this.wakeUp === end) this.wakeUp = undefined;
        resolve();
      };
      this.wakeUp = end;
      void clock.sleep(ms).then(end);
    });
  }
}

/** Which loops a change under /zsha/ concerns (undefined: the watch was interrupted, anything may have). */
export function concerns(c: KvChange | undefined): { local: boolean; controller: boolean } {
  if (c === undefined) return { local: true, controller: true };
  // Start records are written by the owner after the fact: nobody acts on them.
  if (c.key.startsWith(KEYS.historyPrefix)) return { local: false, controller: false };
  // Node reports are rewritten every report round; only a node appearing or its lease expiring matters at
  // once (health changes are seen by the next periodic round).
  if (c.key.startsWith(KEYS.nodesPrefix)) return { local: false, controller: c.deleted || c.created };
  return { local: true, controller: true };
}

export class HaAgent {
  readonly local: LocalManager;
  readonly controller: Controller;
  readonly reporter: NodeReporter;
  private running = false;
  private loops: Promise<void>[] = [];
  private readonly wakeLocal = new Wake();
  private readonly wakeController = new Wake();
  private unwatch: (() => void) | undefined;

  /** The image store this agent uses (status reports its health and a read probe). */
  readonly image: HaEnv["image"];

  constructor(private readonly env: HaEnv) {
    this.image = env.image;
    this.local = new LocalManager(env);
    this.controller = new Controller(env);
    this.reporter = new NodeReporter(env, this.local);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.env.log("info", { node: this.env.node }, "ha.agent-started");
    this.unwatch = this.env.kv.watch("/zsha/", (c) => {
      const to = concerns(c);
      if (to.local) this.wakeLocal.fire();
      if (to.controller) this.wakeController.fire();
    });
    this.loops = [
      this.loop("report", this.env.timing.loopMs * 2, () => this.reporter.step()),
      this.loop("local", this.env.timing.loopMs, () => this.local.step(), this.wakeLocal),
      this.loop(
        "controller",
        this.env.timing.loopMs,
        () => this.controller.step().then(() => {}),
        this.wakeController,
      ),
      // Self-fencing is judged often, independently of how long a round of the other loops takes.
      this.loop("watchdog", 100, () => this.local.watchdog()),
    ];
  }

  private async loop(name: string, everyMs: number, f: () => Promise<void>, wake?: Wake): Promise<void> {
    while (this.running) {
      wake?.clear();
      try {
        await f();
      } catch (e) {
        this.env.log("debug", { loop: name, err: (e as Error).message }, "ha.round-failed");
      }
      if (wake) await wake.wait(this.env.clock, everyMs);
      else await this.env.clock.sleep(everyMs);
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    this.unwatch?.();
    this.unwatch = undefined;
    // Loops waiting between rounds end now (they see running = false); one in a round finishes it.
    this.wakeLocal.fire();
    this.wakeController.fire();
    await Promise.allSettled(this.loops);
    await this.reporter.stop();
  }
}
