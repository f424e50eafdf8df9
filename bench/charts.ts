import { barChartSvg, lineChartSvg } from '../perf-cli/render/html-chart.js';
import { baseName, linkLabel, type SavedReport } from './markdown.js';
import type { BenchReport } from './report.js';

// The README's bench pictures, drawn with the HTML report's own SVG charts: where the rates of one
// run stand against each other, and how the ratio targets moved from run to run.

const short = (file: string): string =>
  baseName(file)
    .replace(/\.json$/, '')
    .replace(/^\d{4}-\d{2}-\d{2}-/, '');

/**
 * The 1 KB rates of one report as bars: the naive module, each translator transport, and the
 * ingest limit they are measured against.
 */
export function throughputChart(report: BenchReport, file: string): string {
  const rows = report.results.filter(
    (r) =>
      r.payloadBytes === 1024 && (r.kind === 'naive' || r.kind === 'translator' || r.kind === 'ingest-limit'),
  );
  const label = (kind: string, transport: string | undefined) =>
    kind === 'translator' ? (transport ?? '?') : kind === 'naive' ? 'naive' : 'ingest limit';
  return barChartSvg({
    id: 'bench-throughput-1kb',
    title: `1 KB messages per second into IoT Hub, ${short(file)}`,
    xLabel: 'module under test (translator: by upstream transport)',
    yLabel: 'messages/s',
    categories: rows.map((r) => label(r.kind, r.transport)),
    values: rows.map((r) => r.msgPerSec),
    barLabels: rows.map((r) => r.msgPerSec.toLocaleString('en-US')),
  });
}

/**
 * The two ratio targets of each report, oldest run on the left, with the 0.8 goal as a line: the
 * translator against the ingest limit at 1 KB, and batched bytes against the wire limit; a marker
 * where the throughput runs' link changed.
 */
export function ratiosChart(runs: readonly SavedReport[]): string {
  const ordered = [...runs].reverse();
  const measured = (r: BenchReport, name: string) => r.targets.find((t) => t.name === name)?.measured ?? null;
  return lineChartSvg({
    id: 'bench-ratios',
    title: 'Ratio targets in each bench run',
    xLabel: 'bench run (oldest left)',
    yLabel: 'ratio',
    x: { categories: ordered.map((r) => short(r.file)) },
    series: [
      {
        name: 'translator ÷ ingest limit, 1 KB',
        values: ordered.map((r) => measured(r.report, 'translatorVsIngestLimit')),
      },
      {
        name: 'batched bytes ÷ wire limit',
        values: ordered.map((r) => measured(r.report, 'batchedBytesVsWireLimit')),
      },
    ],
    references: [{ y: 0.8, label: 'goal 0.8' }],
    // The wire limit depends on the link the runs used (a 1 ms link's timers bounded it): mark it.
    markers: ordered.flatMap((r, i) => {
      const link = linkLabel(r.report);
      return i > 0 && link !== linkLabel((ordered[i - 1] as SavedReport).report)
        ? [{ x: i, label: `${link} link` }]
        : [];
    }),
    showPoints: true,
  });
}
