import type { LatencyHistogram } from './summary-types.js';

/** Mantissas of the bucket edges in each decade: readable labels, about 6 buckets per decade. */
const MANTISSAS = [1, 1.5, 2, 3, 5, 7] as const;

/**
 * Buckets per-message latencies (ms) for `RunSummary.latencyHistogram`: edges 0, 1, 1.5, 2, 3,
 * 5, 7, 10, 15 … ms (log-spaced, so 2 ms and 20 s both get resolution), up to the first edge
 * above the largest sample. Negative samples (clock skew) count in the first bucket; non-finite
 * samples are skipped. No samples gives empty arrays.
 */
export function latencyHistogram(samplesMs: ArrayLike<number>): LatencyHistogram {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < samplesMs.length; i++) {
    const v = samplesMs[i] as number;
    if (Number.isFinite(v) && v > max) max = v;
  }
  if (max === Number.NEGATIVE_INFINITY) return { boundsMs: [], counts: [] };
  const bounds: number[] = [0];
  for (let decade = 1; (bounds[bounds.length - 1] as number) <= max; decade *= 10) {
    for (const m of MANTISSAS) {
      bounds.push(Number((m * decade).toPrecision(6)));
      if ((bounds[bounds.length - 1] as number) > max) break;
    }
  }
  const counts = new Array<number>(bounds.length - 1).fill(0);
  for (let i = 0; i < samplesMs.length; i++) {
    const v = samplesMs[i] as number;
    if (!Number.isFinite(v)) continue;
    counts[bucketOf(bounds, v)]++;
  }
  return { boundsMs: bounds, counts };
}

/** Index of the bucket [bounds[i], bounds[i+1]) holding v; below 0 maps to the first. */
function bucketOf(bounds: readonly number[], v: number): number {
  let lo = 0;
  let hi = bounds.length - 2;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if ((bounds[mid] as number) <= v) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
