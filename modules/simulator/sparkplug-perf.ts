import type { PerfFields } from '../common/index.js';

/**
 * How the simulator carries perf fields in a Sparkplug B DDATA payload, and the mapping back.
 * Pure (no Sparkplug library import), so the translator's decoder can use it cheaply:
 * `import { perfFieldsFromSparkplugMetrics } from '../simulator/sparkplug-perf.js'`.
 */

/** Sparkplug metric names carrying the perf fields, and their Sparkplug types. */
export const SPARKPLUG_PERF_METRICS = {
  /** Session id (String). */
  sid: 'perf/sid',
  /** Burst number from 1 (UInt32). */
  burst: 'perf/burst',
  /** Sequence number within the burst from 0 (UInt32). */
  seq: 'perf/seq',
  /** Creation time, unix ms (UInt64; decoders may hand back a Long). */
  ts: 'perf/ts',
  /** Timing violations so far in the burst (UInt32). */
  vc: 'perf/vc',
  /** Device id (String). */
  dev: 'perf/dev',
} as const;

/** A Sparkplug metric as `sparkplug-payload` encodes it (the subset used for perf fields). */
export interface SparkplugPerfMetric {
  readonly name: string;
  readonly type: 'String' | 'UInt32' | 'UInt64';
  readonly value: string | number;
}

/** The perf fields as Sparkplug metrics, named per {@link SPARKPLUG_PERF_METRICS}. */
export function perfToSparkplugMetrics(perf: PerfFields): SparkplugPerfMetric[] {
  const m: SparkplugPerfMetric[] = [
    { name: SPARKPLUG_PERF_METRICS.sid, type: 'String', value: perf.sid },
    { name: SPARKPLUG_PERF_METRICS.burst, type: 'UInt32', value: perf.burst },
    { name: SPARKPLUG_PERF_METRICS.seq, type: 'UInt32', value: perf.seq },
    { name: SPARKPLUG_PERF_METRICS.ts, type: 'UInt64', value: perf.ts },
  ];
  if (perf.vc !== undefined) m.push({ name: SPARKPLUG_PERF_METRICS.vc, type: 'UInt32', value: perf.vc });
  if (perf.dev !== undefined) m.push({ name: SPARKPLUG_PERF_METRICS.dev, type: 'String', value: perf.dev });
  return m;
}

/** The shape of a decoded Sparkplug metric this helper reads (matches `sparkplug-payload` output). */
export interface SparkplugMetricLike {
  readonly name?: string | null;
  readonly value?: unknown;
}

/**
 * Maps decoded Sparkplug metrics back to perf fields, for a decoder that lifts them into `perf`.
 * Accepts numbers, bigints and protobuf `Long` objects (how `sparkplug-payload` decodes UInt64).
 *
 * @returns the perf fields, or undefined when `perf/sid`, `perf/burst`, `perf/seq` or `perf/ts`
 * is missing or of the wrong type.
 */
export function perfFieldsFromSparkplugMetrics(
  metrics: readonly SparkplugMetricLike[] | null | undefined,
): PerfFields | undefined {
  if (!metrics) return undefined;
  const byName = new Map<string, unknown>();
  for (const m of metrics) if (typeof m.name === 'string') byName.set(m.name, m.value);
  const sid = byName.get(SPARKPLUG_PERF_METRICS.sid);
  const burst = toInteger(byName.get(SPARKPLUG_PERF_METRICS.burst));
  const seq = toInteger(byName.get(SPARKPLUG_PERF_METRICS.seq));
  const ts = toInteger(byName.get(SPARKPLUG_PERF_METRICS.ts));
  if (typeof sid !== 'string' || burst === undefined || seq === undefined || ts === undefined)
    return undefined;
  const vc = toInteger(byName.get(SPARKPLUG_PERF_METRICS.vc));
  const dev = byName.get(SPARKPLUG_PERF_METRICS.dev);
  return {
    sid,
    burst,
    seq,
    ts,
    ...(vc === undefined ? {} : { vc }),
    ...(typeof dev === 'string' ? { dev } : {}),
  };
}

function toInteger(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isInteger(v) ? v : undefined;
  if (typeof v === 'bigint') return Number(v);
  // protobufjs Long: avoid a dependency on `long` by duck typing.
  if (v !== null && typeof v === 'object' && typeof (v as { toNumber?: unknown }).toNumber === 'function') {
    const n = (v as { toNumber(): unknown }).toNumber();
    return typeof n === 'number' && Number.isInteger(n) ? n : undefined;
  }
  return undefined;
}
