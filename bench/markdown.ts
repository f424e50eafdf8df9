import type { SweepResult } from '../perf-cli/analysis/sweep-types.js';
import type { BenchReport, BenchResult, TargetCheck } from './report.js';

// The README's bench tables, rendered from saved reports (`npm run bench:readme`), so that every
// figure in them is one a bench run printed and none is copied by hand.

const num = (n: number | null | undefined, digits = 0): string =>
  n === null || n === undefined
    ? '–'
    : n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

/** A Markdown table with its columns padded to one width, as a formatter would leave it. */
export function markdownTable(head: readonly string[], rows: readonly (readonly string[])[]): string {
  // Widths in UTF-16 units: every character the tables use (×, ÷, ✗, –) is one unit.
  const width = head.map((h, i) => Math.max(3, h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    `| ${width.map((w, i) => (cells[i] ?? '').padEnd(w)).join(' | ')} |`;
  return [line(head), `| ${width.map((w) => '-'.repeat(w)).join(' | ')} |`, ...rows.map(line)].join('\n');
}

const bold = (s: string, on: boolean): string => (on ? `**${s}**` : s);

/** The file name of a path, as the tables list saved runs. */
export const baseName = (file: string): string => file.split('/').pop() ?? file;

function sizeLabel(r: BenchResult): string {
  return r.kind === 'wire-limit' ? `${num(r.payloadBytes / 1024)} KiB` : `${num(r.payloadBytes / 1024)} KB`;
}

function runLabel(r: BenchResult, report: BenchReport): string {
  switch (r.kind) {
    case 'naive':
      return 'naive: one `sendOutputEvent` per message, SDK MQTT';
    case 'translator':
      return `translator, ${r.transport ?? '?'}`;
    case 'ingest-limit':
      return 'ingest limit: bare MQTT.js subscriber';
    case 'wire-limit':
      return `wire limit: raw MQTT.js, ${sizeLabel(r)} messages to edgeHub`;
    case 'overload':
      return `overload: translator (${r.transport ?? '?'}), source at 10× the link for ${num(Number(report.config.overloadSecs ?? r.durationMs / 1000))} s`;
    case 'measurer':
      return `\`edgeperf local\` itself, ${num(r.published)} × ${sizeLabel(r)}`;
  }
}

/** ` (lowest–highest)` of a row measured in several rounds, empty for one run. */
function roundsRange(r: BenchResult): string {
  const runs = r.msgPerSecRuns;
  return runs === undefined || runs.length < 2
    ? ''
    : ` (${num(Math.min(...runs))}–${num(Math.max(...runs))})`;
}

/**
 * The results table of one report: a row per competitor, the best 1 KB translator transport, the
 * overload peak RSS and edgeperf's own CPU in bold (the figures the issue-7 targets are read from);
 * a row measured in several rounds gives the range of their rates after its median.
 */
export function resultsTable(report: BenchReport): string {
  const best = report.ratios.bestTransport1KB;
  const rows = report.results.map((r) => {
    const key =
      (r.kind === 'translator' && r.payloadBytes === 1024 && r.transport === best) || r.kind === 'measurer';
    const cpu =
      r.kind === 'measurer'
        ? `${num(r.cpuMsPer1000)} (**${num(r.cpuPercent, 1)}%** of a core)`
        : bold(num(r.cpuMsPer1000), key);
    return [
      bold(runLabel(r, report), key && r.kind === 'translator'),
      sizeLabel(r),
      r.kind === 'overload'
        ? `${num(r.msgPerSec)} up`
        : bold(num(r.msgPerSec), key && r.kind === 'translator') + roundsRange(r),
      num(r.logicalMBps, 2),
      cpu,
      r.runtimeCpuMsPer1000 === undefined ? '–' : num(r.runtimeCpuMsPer1000),
      bold(`${num(r.peakRssMB)} MB`, r.kind === 'overload'),
      r.latencyMs ? `${num(r.latencyMs.p50)} / ${num(r.latencyMs.p99)}` : '–',
    ];
  });
  return markdownTable(
    [
      'run',
      'size',
      'msg/s',
      'MB/s',
      'module CPU ms / 1k msg',
      'edgeHub CPU ms / 1k msg',
      'module peak RSS',
      'p50 / p99 ms',
    ],
    rows,
  );
}

/** The issue-7 targets, in the order every report lists them. */
const TARGETS: readonly { readonly name: string; readonly head: string; readonly digits: number }[] = [
  { name: 'translatorVsNaive', head: '÷ naive, 1 KB (≥ 7×)', digits: 2 },
  { name: 'translatorVsIngestLimit', head: '÷ ingest limit, 1 KB (≥ 0.8)', digits: 2 },
  { name: 'batchedBytesVsWireLimit', head: 'bytes ÷ wire limit (≥ 0.8)', digits: 2 },
  { name: 'overloadPeakRssMB', head: 'overload RSS MB (≤ 200)', digits: 0 },
  { name: 'edgeperfCpuPercent', head: 'edgeperf CPU % (< 5)', digits: 1 },
];

function targetCell(checks: readonly TargetCheck[], name: string, digits: number): string {
  const t = checks.find((c) => c.name === name);
  if (!t || t.measured === null) return '–';
  const figure = `${num(t.measured, digits)}${name === 'translatorVsNaive' ? '×' : ''}`;
  return t.met === false ? `${figure} ✗` : figure;
}

/** One saved report and the path it was read from, as the README names it. */
export interface SavedReport {
  readonly file: string;
  readonly report: BenchReport;
}

/** The link a report's throughput runs used: `instant`, or its round trip (`1 ms`). */
export function linkLabel(report: BenchReport): string {
  const link = report.config.link as { rttMs?: unknown; bandwidthMbps?: unknown } | undefined;
  if (!link) return '–';
  return link.rttMs === 0 && link.bandwidthMbps === 'unlimited' ? 'instant' : `${String(link.rttMs)} ms`;
}

/**
 * The targets of several reports, one row per report (newest first as given), with the link the
 * throughput runs used and the best 1 KB transport; a missed target carries ✗, and the last row
 * counts the reports that met each.
 */
export function targetsTable(runs: readonly SavedReport[]): string {
  const rows = runs.map(({ file, report }) => [
    `\`${baseName(file)}\``,
    linkLabel(report),
    report.ratios.bestTransport1KB ?? '–',
    ...TARGETS.map((t) => targetCell(report.targets, t.name, t.digits)),
  ]);
  const met = TARGETS.map((t) => {
    const measured = runs.filter((r) => r.report.targets.some((c) => c.name === t.name && c.met !== null));
    const ok = measured.filter((r) => r.report.targets.some((c) => c.name === t.name && c.met === true));
    return `${ok.length} of ${measured.length}`;
  });
  rows.push(['met in', '', '', ...met]);
  return markdownTable(
    ['bench run (`bench/results/`)', 'link', 'best 1 KB', ...TARGETS.map((t) => t.head)],
    rows,
  );
}

/** One saved `edgeperf sweep --out` result and the path it was read from. */
export interface SavedSweep {
  readonly file: string;
  readonly sweep: SweepResult;
}

const latency = (ms: number): string => (ms < 1000 ? `${num(ms)} ms` : `${num(ms / 1000, 1)} s`);

/**
 * Every cell of the given sweeps, one row each in file and grid order: the settings the run
 * resolved (a profile's own MaxUpstreamBatchSize and application batches, not the word "profile"),
 * then what it measured.
 */
export function sweepTable(sweeps: readonly SavedSweep[]): string {
  const rows = sweeps.flatMap(({ file, sweep }) =>
    sweep.cells.map(({ summary: s }) => {
      const c = s.config;
      return [
        `\`${baseName(file)}\``,
        c.labels?.profile ?? '–',
        num(c.maxUpstreamBatchSize),
        c.appBatch.maxBytes > 0
          ? `${num(c.appBatch.maxBytes / 1024)} KiB, ${num(c.appBatch.maxWaitTimeInMs)} ms`
          : 'off',
        num(c.modules ?? 1),
        `${num(c.payloadLength / 1024)} KB`,
        num(c.targetRate),
        num(s.source.ratePerSec),
        num(s.upstream.ratePerSec),
        num(s.upstream.hubMessages),
        latency(s.latencyMs.p50),
        latency(s.latencyMs.p99),
        num(s.integrity.lost),
      ];
    }),
  );
  return markdownTable(
    [
      'sweep (`bench/results/`)',
      'profile',
      'MaxUpstreamBatchSize',
      'app batches',
      'modules',
      'size',
      'target msg/s',
      'source msg/s',
      'IoT Hub msg/s',
      'IoT Hub messages',
      'p50',
      'p99',
      'lost',
    ],
    rows,
  );
}
