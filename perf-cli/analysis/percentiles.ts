import type { LatencyFigures } from './summary-types.js';

/**
 * Exact latency figures over every sample (no means of window means: the IotEdgePerf weakness).
 * Percentiles by nearest rank on the sorted samples. Empty input gives all zeros.
 */
export function latencyFigures(samples: ArrayLike<number>): LatencyFigures {
  const n = samples.length;
  if (n === 0) return { min: 0, avg: 0, p50: 0, p95: 0, p99: 0, max: 0 };
  const sorted = Float64Array.from(samples).sort();
  let sum = 0;
  for (let i = 0; i < n; i++) sum += sorted[i] as number;
  return {
    min: round(sorted[0] as number),
    avg: round(sum / n),
    p50: round(nearestRank(sorted, 0.5)),
    p95: round(nearestRank(sorted, 0.95)),
    p99: round(nearestRank(sorted, 0.99)),
    max: round(sorted[n - 1] as number),
  };
}

/** Nearest-rank percentile of an ascending array; `q` in [0, 1]. */
export function nearestRank(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1] as number;
}

function round(v: number): number {
  return Math.round(v * 10) / 10;
}
