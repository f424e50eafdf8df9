/**
 * The `--json` summary of `edgeperf local` and `edgeperf run` (architecture.md, "the edgeperf
 * contract"). Scripts depend on these names: add fields, never rename or remove them.
 */
export interface RunSummary {
  readonly mode: 'local' | 'run';
  readonly runId: string;
  readonly config: RunConfigSummary;
  /** Logical messages acknowledged by edgeHub per second of the burst. */
  readonly source: RateFigures;
  /** Logical messages enqueued at IoT Hub per second. */
  readonly upstream: RateFigures & { readonly hubMessages: number; readonly meteredUnits4KB: number };
  /** IoT Hub enqueue time minus creation time, per logical message, ms. */
  readonly latencyMs: LatencyFigures;
  readonly queue: { readonly peakLength: number; readonly samples: number };
  readonly integrity: IntegrityFigures;
  /** Faults injected during the run and what they cost; absent when none. */
  readonly faults?: readonly FaultReport[];
  /** True when the run ended by the no-data timeout or Ctrl-C rather than by count. */
  readonly partial?: boolean;
  readonly bursts?: readonly BurstSummary[];
  /** Time series for the HTML report: one point per second. */
  readonly series?: RunSeries;
  /** CPU edgeperf itself used from the burst start to the last message counted, % of one core (its own process, not the runtime's; connecting before the burst is excluded). */
  readonly measurerCpuPercent?: number;
  /** Distribution of per-message latency for the HTML report; absent when not collected. */
  readonly latencyHistogram?: LatencyHistogram;
  /**
   * `false` when `latencyMs` was not computed from every message: `edgeperf run --results asa`
   * reads per-window rows, so min/avg/max are exact but p50/p95/p99 are the maximum of the window
   * percentiles (an upper bound; perf-cli/measure/asa-rows-collector.ts). Absent when exact.
   */
  readonly latencyExact?: false;
}

/**
 * Counts of logical messages by latency bucket. `boundsMs` holds the bucket edges in ms,
 * ascending, one more than `counts`: bucket i counts latencies in [boundsMs[i], boundsMs[i+1]).
 * (The report also reads Prometheus-style upper bounds, as many bounds as counts, from 0.)
 */
export interface LatencyHistogram {
  readonly boundsMs: readonly number[];
  readonly counts: readonly number[];
}

export interface RunConfigSummary {
  readonly burstLength: number;
  readonly bursts: number;
  readonly targetRate: number;
  readonly payloadLength: number;
  readonly maxUpstreamBatchSize: number;
  readonly appBatch: {
    readonly maxMessages: number;
    readonly maxBytes: number;
    readonly maxWaitTimeInMs: number;
  };
  readonly transport: string;
  readonly modules?: number;
  readonly labels?: Readonly<Record<string, string>>;
}

export interface RateFigures {
  readonly messages: number;
  readonly ratePerSec: number;
  /** From bytes actually carried, KiB/s (1 KB = 1024 bytes). */
  readonly throughputKBps: number;
}

export interface LatencyFigures {
  readonly min: number;
  readonly avg: number;
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly max: number;
}

export interface IntegrityFigures {
  readonly sent: number;
  readonly delivered: number;
  readonly lost: number;
  readonly duplicates: number;
  readonly outOfOrder: number;
  readonly expired: number;
}

export interface FaultReport {
  readonly fault: string;
  readonly atSecs: number;
  readonly detail: string;
}

export interface BurstSummary {
  readonly burst: number;
  readonly messages: number;
  readonly durationMs: number;
  readonly upstreamRatePerSec: number;
  readonly latencyMs: LatencyFigures;
  readonly integrity: IntegrityFigures;
}

export interface RunSeries {
  /** Seconds since the run started. */
  readonly t: readonly number[];
  readonly sourceRate: readonly number[];
  readonly upstreamRate: readonly number[];
  readonly queueLength: readonly number[];
  readonly latencyP50: readonly (number | null)[];
  readonly latencyP99: readonly (number | null)[];
}
