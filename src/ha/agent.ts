// One node's HA agent: the node report, the local manager (owner side) and — on the Raft leader only — the
// controller, each a loop on the injected clock. A failing round is logged and retried next round.

import { Controller } from "./controller.js";
import type { HaEnv } from "./env.js";
import { LocalManager } from "./local.js";
import { NodeReporter } from "./reporter.js";

export class HaAgent {
  readonly local: LocalManager;
  readonly controller: Controller;
  readonly reporter: NodeReporter;
  private running = false;
  private loops: Promise<void>[] = [];

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
    this.loops = [
      this.loop("report", this.env.timing.loopMs * 2, () => this.reporter.step()),
      this.loop("local", this.env.timing.loopMs, () => this.local.step()),
      this.loop("controller", this.env.timing.loopMs, () => this.controller.step().then(() => {})),
      // Self-fencing is judged often, independently of how long a round of the other loops takes.
      this.loop("watchdog", 100, () => this.local.watchdog()),
    ];
  }

  private async loop(name: string, everyMs: number, f: () => Promise<void>): Promise<void> {
    while (this.running) {
      try {
        await f();
      } catch (e) {
        this.env.log("debug", { loop: name, err: (e as Error).message }, "ha.round-failed");
      }
      await this.env.clock.sleep(everyMs);
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.allSettled(this.loops);
    await this.reporter.stop();
  }
}
