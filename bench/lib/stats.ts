// Small summaries of raw samples for the bench results files.

/** The p-th percentile (nearest rank) of `xs`; NaN when empty. */
export function pct(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? Number.NaN;
}

export interface Summary {
  readonly n: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly minMs: number;
  readonly maxMs: number;
  readonly meanMs: number;
}

/** n, p50, p99, min, max and mean of `xs` (ms), rounded to whole ms. */
export function summary(xs: readonly number[]): Summary {
  const r = (x: number) => Math.round(x);
  return {
    n: xs.length,
    p50Ms: r(pct(xs, 50)),
    p99Ms: r(pct(xs, 99)),
    minMs: r(Math.min(...xs)),
    maxMs: r(Math.max(...xs)),
    meanMs: r(xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length)),
  };
}
