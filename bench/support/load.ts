// Closed-loop load: `concurrency` workers each issue the next operation as soon as their previous one
// answered, until `n` operations are done. Latency is measured per operation in this (client) process.

export interface LoadResult {
  readonly n: number;
  readonly concurrency: number;
  readonly seconds: number;
  readonly opsPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly errors: number;
  readonly firstError?: string;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export async function runLoad(
  n: number,
  concurrency: number,
  op: (i: number) => Promise<void>,
): Promise<LoadResult> {
  const lat = new Float64Array(n);
  let next = 0;
  let done = 0;
  let errors = 0;
  let firstError: string | undefined;
  const worker = async () => {
    for (let i = next++; i < n; i = next++) {
      const t = performance.now();
      try {
        await op(i);
        lat[done++] = performance.now() - t;
      } catch (e) {
        errors++;
        firstError ??= (e as Error).message;
      }
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - t0) / 1000;
  const ok = lat.subarray(0, done).sort();
  return {
    n,
    concurrency,
    seconds,
    opsPerSec: done / seconds,
    p50Ms: percentile(ok, 50),
    p99Ms: percentile(ok, 99),
    maxMs: ok.length > 0 ? ok[ok.length - 1]! : Number.NaN,
    errors,
    ...(firstError !== undefined ? { firstError } : {}),
  };
}
