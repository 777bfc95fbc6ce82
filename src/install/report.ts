// What install and uninstall tell the operator: one line per step and node as it finishes, and with
// --json one report at the end (every step, what was changed, the error).
export interface StepRecord {
  readonly node: string;
  readonly ip: string;
  readonly step: string;
  readonly status: "ok" | "warning" | "failed" | "skipped";
  readonly detail: string;
  readonly ms: number;
}

/** A step that failed: the message names the node and step; the report already holds it. */
export class StepFailed extends Error {
  constructor(
    readonly node: string,
    readonly step: string,
    readonly detail: string,
  ) {
    super(`${node}: ${step} failed: ${detail}`);
  }
}

export interface StepOutcome<T> {
  readonly detail: string;
  readonly value?: T;
  readonly warning?: boolean;
}

export class Report {
  readonly steps: StepRecord[] = [];
  /** What this run changed, in order, for the operator and for rollback notes. */
  readonly changes: string[] = [];
  private readonly t0 = performance.now();

  constructor(
    private readonly out: (line: string) => void,
    private readonly json: boolean,
  ) {}

  /** Prints a line that is not a step (plan, summary); not in --json mode. */
  say(line: string): void {
    if (!this.json) this.out(line);
  }

  changed(what: string): void {
    this.changes.push(what);
  }

  /** Runs one step for one node, records and prints its outcome; a thrown error becomes StepFailed. */
  async step<T>(
    node: { name: string; ip: string },
    step: string,
    f: () => Promise<StepOutcome<T> | string>,
  ): Promise<T | undefined> {
    const t = performance.now();
    try {
      const r = await f();
      const o: StepOutcome<T> = typeof r === "string" ? { detail: r } : r;
      this.record(node, step, o.warning ? "warning" : "ok", o.detail, t);
      return o.value;
    } catch (e) {
      const detail = e instanceof StepFailed ? e.detail : (e as Error).message;
      this.record(node, step, "failed", detail, t);
      throw new StepFailed(node.name, step, detail);
    }
  }

  private record(
    node: { name: string; ip: string },
    step: string,
    status: StepRecord["status"],
    detail: string,
    t: number,
  ): void {
    const ms = Math.round(performance.now() - t);
    this.steps.push({ node: node.name, ip: node.ip, step, status, detail, ms });
    const mark = status === "ok" ? "ok" : status === "warning" ? "WARN" : "FAILED";
    this.say(
      `${`${node.name} ${node.ip}`.padEnd(24)} ${step.padEnd(16)} ${mark.padEnd(6)} ${detail}${
        ms >= 100 ? ` (${(ms / 1000).toFixed(1)} s)` : ""
      }`,
    );
  }

  elapsedMs(): number {
    return Math.round(performance.now() - this.t0);
  }

  toJson(extra: Record<string, unknown>): string {
    return JSON.stringify(
      { ...extra, elapsedMs: this.elapsedMs(), steps: this.steps, changes: this.changes },
      null,
      2,
    );
  }
}
