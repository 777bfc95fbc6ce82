// Exponential reconnect delays with jitter, so that members restarting together do not redial in lockstep.

export interface BackoffOptions {
  /** First delay after a failure, in milliseconds. */
  readonly initialMs: number;
  /** Largest delay, in milliseconds. */
  readonly maxMs: number;
  /** Spread of each delay as a fraction (0.2: ±10% around the nominal delay). */
  readonly jitter: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 50, maxMs: 2_000, jitter: 0.2 };

export class Backoff {
  private attempt = 0;

  constructor(
    private readonly options: BackoffOptions,
    private readonly random: () => number = Math.random,
  ) {}

  /** The delay before the next attempt; each call doubles the nominal delay up to the maximum. */
  next(): number {
    const { initialMs, maxMs, jitter } = this.options;
    const nominal = Math.min(maxMs, initialMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    const spread = nominal * jitter * (this.random() - 0.5);
    return Math.max(0, Math.min(maxMs, Math.round(nominal + spread)));
  }

  /** After a connection that worked: the next failure waits the initial delay again. */
  reset(): void {
    this.attempt = 0;
  }
}
