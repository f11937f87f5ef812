// Order statistics for latency samples (pure).

/**
 * The p-th percentile (0..100) by the nearest-rank method: the smallest sample such that at
 * least p% of the samples are <= it. Sorts a copy; NaN for no samples.
 */
export function percentile(samples: readonly number[], p: number): number {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile ${p}: expected 0..100`);
  if (samples.length === 0) return NaN;
  const sorted = Float64Array.from(samples).sort();
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1];
}

export interface LatencySummary {
  readonly samples: number;
  readonly medianUs: number;
  readonly p99Us: number;
  readonly minUs: number;
  readonly maxUs: number;
}

export function summarizeLatency(samplesUs: readonly number[]): LatencySummary {
  const sorted = Float64Array.from(samplesUs).sort();
  const at = (p: number) => (sorted.length === 0 ? NaN : sorted[Math.max(1, Math.ceil((p / 100) * sorted.length)) - 1]);
  return {
    samples: sorted.length,
    medianUs: at(50),
    p99Us: at(99),
    minUs: sorted.length ? sorted[0] : NaN,
    maxUs: sorted.length ? sorted[sorted.length - 1] : NaN,
  };
}
