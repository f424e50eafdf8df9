import Table from 'cli-table3';

/** What one bench run measured. */
export type BenchKind = 'naive' | 'translator' | 'ingest-limit' | 'wire-limit' | 'overload' | 'measurer';

/** One row of the bench: one competitor at one payload size. */
export interface BenchResult {
  readonly kind: BenchKind;
  /** `naive`, `translator/sdk-mqtt`, `ingest-limit`, … */
  readonly name: string;
  readonly transport?: string;
  /** Source payload size, bytes. */
  readonly payloadBytes: number;
  /** Logical messages counted in the measured window (enqueued at IoT Hub, or received by the counter). */
  readonly messages: number;
  /**
   * Logical messages counted before the measured window opened (warm-up: JIT, connections); the
   * rates, CPU and latency cover only the `messages` after them. Absent when the whole run counts.
   */
  readonly warmUpMessages?: number;
  /** Messages the source published. */
  readonly published: number;
  /** From the window's opening (or the first publish) to the last message counted, ms. */
  readonly durationMs: number;
  /** Logical messages per second. */
  readonly msgPerSec: number;
  /** Logical payload MB/s (10^6 bytes). */
  readonly logicalMBps: number;
  /** Upstream message bytes (bodies as enqueued at IoT Hub) per second, MB/s; 0 when not upstream. */
  readonly wireMBps: number;
  /** CPU of the process under test per 1,000 logical messages, ms. */
  readonly cpuMsPer1000: number;
  /** CPU of the bench process (the local runtime: edgeHub, IoT Hub ingest) per 1,000 logical messages, ms; 0 when it plays no part. */
  readonly runtimeCpuMsPer1000?: number;
  /** Peak RSS (VmHWM) of the process under test, MB (10^6 bytes). */
  readonly peakRssMB: number;
  /**
   * Most messages edgeHub's upstream queue held at once (sampled every 100–250 ms). Near 0 in a
   * throughput run: edgeHub forwards what it accepts, so IoT Hub's count is the module's rate.
   */
  readonly peakUpstreamQueue?: number;
  /** Creation → IoT Hub enqueue, sampled, ms; null where nothing goes upstream. */
  readonly latencyMs: { readonly p50: number; readonly p99: number; readonly samples: number } | null;
  /** `measurer` only: edgeperf's own CPU from the burst start to the last message, % of one core. */
  readonly cpuPercent?: number;
  /** msg/s of every interleaved round (`--rounds`); the row is the median one. Absent for a single run. */
  readonly msgPerSecRuns?: readonly number[];
  /** `measurer` only: `cpuPercent` of every run; the row is the median one. */
  readonly cpuPercentRuns?: readonly number[];
  readonly note?: string;
}

/** One target of issue 7, with what was measured. */
export interface TargetCheck {
  readonly name: string;
  readonly target: string;
  readonly measured: number | null;
  readonly met: boolean | null;
}

/** Ratios of issue 7; null when a needed run is missing or measured zero. */
export interface BenchRatios {
  /** Best translator transport ÷ naive, msg/s, 1 KB. */
  readonly translatorVsNaive: number | null;
  /** The same per payload size (`"1024"`, `"8192"`). */
  readonly translatorVsNaiveBySize: Readonly<Record<string, number | null>>;
  /** Best translator transport ÷ ingest limit, msg/s, 1 KB. */
  readonly translatorVsIngestLimit: number | null;
  /** Best translator upstream bytes/s (any size) ÷ wire limit bytes/s. */
  readonly batchedBytesVsWireLimit: number | null;
  /** Which translator transport was best at 1 KB. */
  readonly bestTransport1KB: string | null;
}

/** The whole bench output (`--json`). */
export interface BenchReport {
  readonly startedAt: string;
  readonly host: {
    readonly cpus: number;
    readonly loadAvgStart: readonly number[];
    readonly loadAvgEnd: readonly number[];
    readonly node: string;
    /** CPU time the hypervisor stole from this machine over the whole bench, % (Linux). */
    readonly stealPercent?: number;
  };
  readonly config: Readonly<Record<string, unknown>>;
  readonly results: readonly BenchResult[];
  readonly ratios: BenchRatios;
  readonly targets: readonly TargetCheck[];
  readonly notes: readonly string[];
}

/** Percentile (nearest rank) of unsorted samples; 0 for none. `p` in 0–100. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return 0;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] as number;
}

const ratio = (a: number | undefined, b: number | undefined): number | null =>
  a === undefined || b === undefined || b <= 0 ? null : round(a / b, 3);

/** Rounds to `digits` decimals. */
export function round(value: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

function best(results: readonly BenchResult[], size: number): BenchResult | undefined {
  return results
    .filter((r) => r.kind === 'translator' && r.payloadBytes === size)
    .reduce<BenchResult | undefined>(
      (a, r) => (a === undefined || r.msgPerSec > a.msgPerSec ? r : a),
      undefined,
    );
}

/** Computes the issue-7 ratios from the rows. */
export function computeRatios(results: readonly BenchResult[]): BenchRatios {
  const sizes = [...new Set(results.filter((r) => r.kind === 'translator').map((r) => r.payloadBytes))];
  const bySize: Record<string, number | null> = {};
  for (const s of sizes) {
    const naive = results.find((r) => r.kind === 'naive' && r.payloadBytes === s);
    bySize[String(s)] = ratio(best(results, s)?.msgPerSec, naive?.msgPerSec);
  }
  const t1 = best(results, 1024);
  const ingest = results.find((r) => r.kind === 'ingest-limit' && r.payloadBytes === 1024);
  const wire = results.find((r) => r.kind === 'wire-limit');
  const bestBytes = results
    .filter((r) => r.kind === 'translator')
    .reduce((a, r) => Math.max(a, r.wireMBps), 0);
  return {
    translatorVsNaive: bySize['1024'] ?? null,
    translatorVsNaiveBySize: bySize,
    translatorVsIngestLimit: ratio(t1?.msgPerSec, ingest?.msgPerSec),
    batchedBytesVsWireLimit: bestBytes > 0 ? ratio(bestBytes, wire?.wireMBps) : null,
    bestTransport1KB: t1?.transport ?? null,
  };
}

/** Checks the issue-7 targets against the ratios, the overload row and the measurer row. */
export function checkTargets(ratios: BenchRatios, results: readonly BenchResult[]): TargetCheck[] {
  const overload = results.find((r) => r.kind === 'overload');
  const measurer = results.find((r) => r.kind === 'measurer');
  const atLeast = (name: string, target: string, measured: number | null, min: number): TargetCheck => ({
    name,
    target,
    measured,
    met: measured === null ? null : measured >= min,
  });
  return [
    atLeast('translatorVsNaive', '≥ 7× (1 KB)', ratios.translatorVsNaive, 7),
    atLeast('translatorVsIngestLimit', '≥ 0.8 (1 KB)', ratios.translatorVsIngestLimit, 0.8),
    atLeast('batchedBytesVsWireLimit', '≥ 0.8', ratios.batchedBytesVsWireLimit, 0.8),
    {
      name: 'overloadPeakRssMB',
      target: '≤ 200 MB at 10× upstream',
      measured: overload?.peakRssMB ?? null,
      met: overload === undefined ? null : overload.peakRssMB <= 200,
    },
    {
      name: 'edgeperfCpuPercent',
      target: '< 5% of a core at 2,000 msg/s',
      measured: measurer?.cpuPercent ?? null,
      met: measurer?.cpuPercent === undefined ? null : measurer.cpuPercent < 5,
    },
  ];
}

const fmt = (n: number | null | undefined, digits = 1): string =>
  n === null || n === undefined ? '–' : n.toLocaleString('en-US', { maximumFractionDigits: digits });

/** Renders the report as tables (results, ratios and targets) for a terminal or the README. */
export function renderReport(report: BenchReport): string {
  const rows = new Table({
    head: [
      'run',
      'size',
      'msg/s',
      'MB/s logical',
      'MB/s upstream',
      'module CPU ms/1k msg',
      'edgeHub CPU ms/1k msg',
      'module peak RSS MB',
      'p50 ms',
      'p99 ms',
      'msgs',
    ],
    style: { head: [], border: [] },
  });
  for (const r of report.results) {
    rows.push([
      r.name,
      r.kind === 'wire-limit'
        ? `${fmt(r.payloadBytes / 1024, 0)} KiB`
        : `${fmt(r.payloadBytes / 1024, 0)} KB`,
      fmt(r.msgPerSec, 0),
      fmt(r.logicalMBps, 2),
      r.wireMBps > 0 ? fmt(r.wireMBps, 2) : '–',
      fmt(r.cpuMsPer1000, 1),
      r.runtimeCpuMsPer1000 ? fmt(r.runtimeCpuMsPer1000, 1) : '–',
      fmt(r.peakRssMB, 0),
      r.latencyMs ? fmt(r.latencyMs.p50, 0) : '–',
      r.latencyMs ? fmt(r.latencyMs.p99, 0) : '–',
      `${fmt(r.messages + (r.warmUpMessages ?? 0), 0)}/${fmt(r.published, 0)}`,
    ]);
  }
  const targets = new Table({ head: ['target', 'goal', 'measured', 'met'], style: { head: [], border: [] } });
  for (const t of report.targets) {
    targets.push([
      t.name,
      t.target,
      fmt(t.measured, 2),
      t.met === null ? 'not measured' : t.met ? 'yes' : 'NO',
    ]);
  }
  const h = report.host;
  return [
    `edgeperf bench ${report.startedAt} — ${h.cpus} CPUs, node ${h.node}, load average ` +
      `${h.loadAvgStart.map((l) => l.toFixed(2)).join(' ')} at start, ${h.loadAvgEnd.map((l) => l.toFixed(2)).join(' ')} at end` +
      (h.stealPercent === undefined ? '' : `, ${h.stealPercent}% of CPU time stolen by the hypervisor`),
    rows.toString(),
    `best translator transport at 1 KB: ${report.ratios.bestTransport1KB ?? '–'}; ` +
      `translator÷naive by size: ${Object.entries(report.ratios.translatorVsNaiveBySize)
        .map(([s, v]) => `${s} B ${fmt(v, 2)}×`)
        .join(', ')}`,
    targets.toString(),
    ...report.notes.map((n) => `- ${n}`),
  ].join('\n');
}
