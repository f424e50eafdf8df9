import type { LatencyHistogram, RunSummary } from '../analysis/summary-types.js';
import type { SweepCell, SweepResult } from '../analysis/sweep-types.js';
import { barChartSvg, type ChartSeries, escapeXml, lineChartSvg } from './html-chart.js';
import type { ReportInput } from './html-input.js';

/** Options of {@link renderHtmlReport}. */
export interface HtmlReportOptions {
  /** Page title. Default `edgeperf report`. */
  readonly title?: string;
  /** Time printed as "generated at". Default now. */
  readonly generatedAt?: Date;
}

/**
 * Renders run summaries or a sweep as one self-contained HTML page: inline CSS and inline SVG
 * charts only, no script, font or other network resource, so it opens offline and prints.
 * A run gets its tables (rates, latency percentiles, integrity, faults, bursts) and, when the
 * summary has them, charts of source and IoT Hub rate, queue length and latency p50/p99 over time
 * plus the latency distribution; a sweep gets a table of every cell and, per swept setting, the
 * IoT Hub rate and p99 latency against it with one line per combination of the other settings.
 * Pure: no I/O, input is not validated (see `parseReportInput`).
 */
export function renderHtmlReport(input: ReportInput, options: HtmlReportOptions = {}): string {
  const title = options.title ?? 'edgeperf report';
  const generatedAt = (options.generatedAt ?? new Date()).toISOString().replace(/\.\d+Z$/, 'Z');
  const body: string[] = [];
  if (isSweep(input)) {
    body.push(sweepSection(input));
  } else {
    const runs: readonly RunSummary[] = Array.isArray(input) ? input : [input as RunSummary];
    if (runs.length > 1) body.push(comparisonSection(runs));
    runs.forEach((s, i) => {
      body.push(runSection(s, runs.length > 1 ? `run${i + 1}-` : 'run-', 'h2'));
    });
  }
  return [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<meta name="color-scheme" content="light">',
    `<title>${escapeXml(title)}</title>`,
    `<style>${CSS}</style>`,
    '</head>',
    '<body>',
    '<header>',
    `<h1>${escapeXml(title)}</h1>`,
    `<p class="meta">Generated ${escapeXml(generatedAt)} by edgeperf. Rates in logical messages per second; latency is IoT Hub enqueue time minus message creation time, per logical message.</p>`,
    '</header>',
    '<main>',
    ...body,
    '</main>',
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

function isSweep(input: ReportInput): input is SweepResult {
  return !Array.isArray(input) && (input as { kind?: unknown }).kind === 'sweep';
}

// ---- one run ---------------------------------------------------------------------------------

function runSection(s: RunSummary, idPrefix: string, heading: 'h2' | 'h3'): string {
  const c = s.config;
  const parts: string[] = [`<section class="run" id="${escapeXml(idPrefix.replace(/-$/, ''))}">`];
  parts.push(
    `<${heading}>Run ${escapeXml(s.runId)} <span class="mode">(${escapeXml(s.mode)})</span></${heading}>`,
  );
  parts.push(`<p class="config">${escapeXml(configLine(s))}</p>`);
  if (c.labels && Object.keys(c.labels).length > 0) {
    parts.push(
      `<p class="labels">${Object.entries(c.labels)
        .map(([k, v]) => `<span class="label">${escapeXml(k)}=${escapeXml(v)}</span>`)
        .join(' ')}</p>`,
    );
  }
  if (s.partial) {
    parts.push(
      '<p class="warning">PARTIAL: the run ended (timeout or interrupt) before every message was accounted for.</p>',
    );
  }
  if (s.integrity.lost > 0 || s.integrity.expired > 0) {
    parts.push(
      `<p class="warning">${fmt(s.integrity.lost)} message(s) lost and ${fmt(s.integrity.expired)} expired.</p>`,
    );
  }
  parts.push('<div class="tables">', ratesTable(s), latencyTable(s), integrityTable(s), '</div>');
  if (s.faults && s.faults.length > 0) parts.push(faultsTable(s));
  if (s.bursts && s.bursts.length > 1) parts.push(burstsTable(s));
  parts.push('<div class="charts">');
  parts.push(...timeCharts(s, idPrefix));
  parts.push(distributionChart(s, idPrefix));
  parts.push('</div>', '</section>');
  return parts.join('\n');
}

function configLine(s: RunSummary): string {
  const c = s.config;
  const ab = c.appBatch;
  return [
    `transport ${c.transport}`,
    `${fmt(c.payloadLength)} B payload`,
    `${fmt(c.bursts ?? 1)} burst(s) of ${fmt(c.burstLength)}`,
    c.targetRate > 0 ? `target ${fmt(c.targetRate)} msg/s` : 'unpaced',
    `MaxUpstreamBatchSize ${fmt(c.maxUpstreamBatchSize)}`,
    ab && ab.maxMessages > 1
      ? `app batch ≤ ${fmt(ab.maxMessages)} msgs / ${fmt(ab.maxBytes)} B / ${fmt(ab.maxWaitTimeInMs)} ms`
      : 'no app batching',
    ...(c.modules !== undefined ? [`${fmt(c.modules)} module(s)`] : []),
  ].join(' · ');
}

function ratesTable(s: RunSummary): string {
  const c = s.config;
  const total = c.burstLength * (c.bursts ?? 1);
  const dur = (m: number, r: number) => (r > 0 ? (m / r).toFixed(1) : '–');
  const paced = c.targetRate > 0;
  return table(
    'Rates',
    ['', 'desired', 'source ⇒ edgeHub', 'edgeHub ⇒ IoT Hub'],
    [
      [
        'rate (msg/s)',
        paced ? fmt(c.targetRate) : 'unpaced',
        fmt(s.source.ratePerSec),
        fmt(s.upstream.ratePerSec),
      ],
      [
        'throughput (KB/s)',
        paced ? fmt((c.targetRate * c.payloadLength) / 1024) : '–',
        fmt(s.source.throughputKBps),
        fmt(s.upstream.throughputKBps),
      ],
      ['messages', fmt(total), fmt(s.source.messages), fmt(s.upstream.messages)],
      [
        'duration (s)',
        paced ? (total / c.targetRate).toFixed(1) : '–',
        dur(s.source.messages, s.source.ratePerSec),
        dur(s.upstream.messages, s.upstream.ratePerSec),
      ],
      ['IoT Hub messages', '', '', fmt(s.upstream.hubMessages)],
      ['metered 4 KB units', '', '', fmt(s.upstream.meteredUnits4KB)],
    ],
  );
}

function latencyTable(s: RunSummary): string {
  const l = s.latencyMs;
  return table(
    'Latency (ms)',
    ['min', 'p50', 'p95', 'p99', 'max', 'avg'],
    [[fmt(l.min), fmt(l.p50), fmt(l.p95), fmt(l.p99), fmt(l.max), fmt(l.avg)]],
  );
}

function integrityTable(s: RunSummary): string {
  const i = s.integrity;
  const bad = (n: number) => (n > 0 ? { text: fmt(n), cls: 'bad' } : fmt(n));
  return table(
    'Integrity (from sequence numbers)',
    ['sent', 'delivered', 'lost', 'duplicates', 'out of order', 'expired', 'queue peak'],
    [
      [
        fmt(i.sent),
        fmt(i.delivered),
        bad(i.lost),
        bad(i.duplicates),
        fmt(i.outOfOrder),
        bad(i.expired),
        fmt(s.queue.peakLength),
      ],
    ],
  );
}

function faultsTable(s: RunSummary): string {
  return table(
    'Faults injected',
    ['fault', 'at (s)', 'what it cost'],
    (s.faults ?? []).map((f) => [f.fault, fmt(f.atSecs), f.detail]),
  );
}

function burstsTable(s: RunSummary): string {
  return table(
    'Bursts',
    [
      'burst',
      'messages',
      'duration (s)',
      'IoT Hub rate (msg/s)',
      'p50 (ms)',
      'p99 (ms)',
      'lost',
      'duplicates',
    ],
    (s.bursts ?? []).map((b) => [
      fmt(b.burst),
      fmt(b.messages),
      (b.durationMs / 1000).toFixed(1),
      fmt(b.upstreamRatePerSec),
      fmt(b.latencyMs.p50),
      fmt(b.latencyMs.p99),
      fmt(b.integrity.lost),
      fmt(b.integrity.duplicates),
    ]),
  );
}

function timeCharts(s: RunSummary, idPrefix: string): string[] {
  const se = s.series;
  if (!se || se.t.length === 0) {
    return ['<p class="note">This summary has no per-second series, so there are no charts over time.</p>'];
  }
  const markers = (s.faults ?? []).map((f) => ({ x: f.atSecs, label: f.fault }));
  const xLabel = 'time since start (s)';
  const out: string[] = [];
  out.push(
    figure(
      'Source and IoT Hub rate over time',
      lineChartSvg({
        id: `${idPrefix}rate`,
        title: 'Source and IoT Hub rate over time',
        xLabel,
        yLabel: 'rate (msg/s)',
        x: se.t,
        series: [
          { name: 'source ⇒ edgeHub', values: se.sourceRate },
          { name: 'edgeHub ⇒ IoT Hub', values: se.upstreamRate },
        ],
        markers,
        references:
          s.config.targetRate > 0
            ? [{ y: s.config.targetRate, label: `desired ${fmt(s.config.targetRate)}` }]
            : [],
      }),
    ),
  );
  out.push(
    figure(
      'edgeHub queue length over time',
      lineChartSvg({
        id: `${idPrefix}queue`,
        title: 'edgeHub queue length over time',
        xLabel,
        yLabel: 'queue length (messages)',
        x: se.t,
        series: [{ name: 'edgehub_queue_length', values: se.queueLength }],
        markers,
      }),
    ),
  );
  out.push(
    figure(
      'Latency over time',
      lineChartSvg({
        id: `${idPrefix}latency`,
        title: 'Latency p50 and p99 over time',
        xLabel,
        yLabel: 'latency (ms)',
        x: se.t,
        series: [
          { name: 'p50', values: se.latencyP50 },
          { name: 'p99', values: se.latencyP99 },
        ],
        markers,
      }),
    ),
  );
  return out;
}

function distributionChart(s: RunSummary, idPrefix: string): string {
  const h = s.latencyHistogram ? histogramBuckets(s.latencyHistogram) : undefined;
  if (h && h.counts.length > 0) {
    const total = h.counts.reduce((a, b) => a + b, 0);
    return figure(
      'Latency distribution',
      barChartSvg({
        id: `${idPrefix}latency-dist`,
        title: 'Latency distribution',
        xLabel: 'latency bucket (ms, lower edge; buckets are log-spaced)',
        yLabel: 'share of messages (%)',
        categories: h.labels,
        values: h.counts.map((c) => (total > 0 ? (100 * c) / total : 0)),
      }),
      `${fmt(total)} messages. p50 ${fmt(s.latencyMs.p50)} ms, p95 ${fmt(s.latencyMs.p95)} ms, p99 ${fmt(s.latencyMs.p99)} ms.`,
    );
  }
  const l = s.latencyMs;
  const values = [l.min, l.p50, l.p95, l.p99, l.max];
  return figure(
    'Latency percentiles',
    barChartSvg({
      id: `${idPrefix}latency-dist`,
      title: 'Latency percentiles over the whole run',
      xLabel: 'percentile',
      yLabel: 'latency (ms)',
      categories: ['min', 'p50', 'p95', 'p99', 'max'],
      values,
      barLabels: values.map(fmt),
    }),
    'The summary has no latency histogram, so this shows its percentiles.',
  );
}

/** Buckets with labels, from edge form (n+1 bounds) or Prometheus upper-bound form (n bounds). */
function histogramBuckets(h: LatencyHistogram): { labels: string[]; counts: number[] } | undefined {
  const n = h.counts.length;
  let lower: number[];
  if (h.boundsMs.length === n + 1) lower = h.boundsMs.slice(0, n);
  else if (h.boundsMs.length === n) lower = [0, ...h.boundsMs.slice(0, n - 1)];
  else return undefined;
  // Trim empty buckets at both ends so the bars fill the chart.
  let a = 0;
  let b = n - 1;
  while (a < b && (h.counts[a] ?? 0) === 0) a++;
  while (b > a && (h.counts[b] ?? 0) === 0) b--;
  return { labels: lower.slice(a, b + 1).map(fmt), counts: h.counts.slice(a, b + 1) };
}

// ---- several runs ----------------------------------------------------------------------------

function comparisonSection(runs: readonly RunSummary[]): string {
  return [
    '<section class="comparison">',
    '<h2>Runs compared</h2>',
    table(
      '',
      [
        'run',
        'transport',
        'payload (B)',
        'MaxUpstreamBatchSize',
        'source (msg/s)',
        'IoT Hub (msg/s)',
        'p50 (ms)',
        'p99 (ms)',
        'lost',
        'queue peak',
      ],
      runs.map((s, i) => [
        { text: s.runId, href: `#run${i + 1}` },
        s.config.transport,
        fmt(s.config.payloadLength),
        fmt(s.config.maxUpstreamBatchSize),
        fmt(s.source.ratePerSec),
        fmt(s.upstream.ratePerSec),
        fmt(s.latencyMs.p50),
        fmt(s.latencyMs.p99),
        fmt(s.integrity.lost),
        fmt(s.queue.peakLength),
      ]),
    ),
    '</section>',
  ].join('\n');
}

// ---- sweep -----------------------------------------------------------------------------------

/** Axis names (any case, camel or kebab) → label with unit. */
const AXIS_LABELS: Readonly<Record<string, string>> = {
  payloadlength: 'payload length (bytes)',
  maxupstreambatchsize: 'MaxUpstreamBatchSize (messages)',
  appbatchmaxbytes: 'app batch max size (bytes)',
  appbatchmaxmessages: 'app batch max messages',
  appbatchmaxwaittimeinms: 'app batch max wait (ms)',
  targetrate: 'target rate (msg/s)',
  transport: 'transport',
  modules: 'modules',
  burstlength: 'burst length (messages)',
};

function axisLabel(axis: string): string {
  return AXIS_LABELS[axis.toLowerCase().replace(/[^a-z0-9]/g, '')] ?? axis;
}

function sweepSection(sw: SweepResult): string {
  const parts: string[] = ['<section class="sweep">', '<h2>Sweep</h2>'];
  parts.push(
    `<p class="config">${fmt(sw.cells.length)} cell(s) over ${sw.axes.map((a) => escapeXml(axisLabel(a))).join(' × ') || 'no axes'}; every cell is a fresh run.</p>`,
  );
  parts.push(sweepTable(sw));
  parts.push('<div class="charts">');
  for (const axis of sw.axes) parts.push(...axisCharts(sw, axis));
  parts.push('</div>', '</section>');
  parts.push('<section class="cells"><h2>Cells</h2>');
  sw.cells.forEach((cell, i) => {
    parts.push(
      `<details class="cell"><summary>${escapeXml(paramsText(sw.axes, cell))} — ${fmt(cell.summary.upstream.ratePerSec)} msg/s, p99 ${fmt(cell.summary.latencyMs.p99)} ms</summary>`,
      runSection(cell.summary, `cell${i + 1}-`, 'h3'),
      '</details>',
    );
  });
  parts.push('</section>');
  return parts.join('\n');
}

function paramsText(axes: readonly string[], cell: SweepCell): string {
  return axes.map((a) => `${a}=${String(cell.params[a] ?? '–')}`).join(', ');
}

function sweepTable(sw: SweepResult): string {
  return table(
    'Cells',
    [
      ...sw.axes,
      'source (msg/s)',
      'IoT Hub (msg/s)',
      'IoT Hub (KB/s)',
      'IoT Hub msgs',
      'p50 (ms)',
      'p99 (ms)',
      'max (ms)',
      'lost',
      'dup',
      'expired',
      'queue peak',
    ],
    sw.cells.map((c) => {
      const s = c.summary;
      return [
        ...sw.axes.map((a) => {
          const v = c.params[a];
          return typeof v === 'number' ? fmt(v) : (v ?? '–');
        }),
        fmt(s.source.ratePerSec),
        fmt(s.upstream.ratePerSec),
        fmt(s.upstream.throughputKBps),
        fmt(s.upstream.hubMessages),
        fmt(s.latencyMs.p50),
        fmt(s.latencyMs.p99),
        fmt(s.latencyMs.max),
        fmt(s.integrity.lost),
        fmt(s.integrity.duplicates),
        fmt(s.integrity.expired),
        fmt(s.queue.peakLength),
      ];
    }),
  );
}

/** The grid's values of one axis, numbers ascending, otherwise in first-seen order. */
function axisValues(cells: readonly SweepCell[], axis: string): (string | number)[] {
  const seen = new Map<string, string | number>();
  for (const c of cells) {
    const v = c.params[axis];
    if (v !== undefined && !seen.has(String(v))) seen.set(String(v), v);
  }
  const values = [...seen.values()];
  if (values.every((v) => typeof v === 'number')) values.sort((a, b) => (a as number) - (b as number));
  return values;
}

/**
 * Charts of IoT Hub rate and p99 latency against one axis. Cells sharing the other axes' values
 * form one line; repeated cells are averaged. Settings are spaced evenly as ordered categories
 * because sweeps pick discrete, often geometric, values (1 KB … 32 KB).
 */
export function sweepAxisSeries(
  sw: SweepResult,
  axis: string,
  metric: (s: RunSummary) => number,
): { categories: string[]; series: ChartSeries[] } {
  const values = axisValues(sw.cells, axis);
  // Axes held constant over the whole grid say nothing about a line, so they stay out of its name.
  const others = sw.axes.filter((a) => a !== axis && axisValues(sw.cells, a).length > 1);
  const groups = new Map<string, { sum: number[]; n: number[] }>();
  for (const c of sw.cells) {
    const xi = values.findIndex((v) => String(v) === String(c.params[axis]));
    if (xi < 0) continue;
    const key = others.map((a) => `${a}=${String(c.params[a] ?? '–')}`).join(', ');
    let g = groups.get(key);
    if (!g) {
      g = { sum: values.map(() => 0), n: values.map(() => 0) };
      groups.set(key, g);
    }
    const m = metric(c.summary);
    if (Number.isFinite(m)) {
      g.sum[xi] = (g.sum[xi] ?? 0) + m;
      g.n[xi] = (g.n[xi] ?? 0) + 1;
    }
  }
  const series: ChartSeries[] = [...groups.entries()].map(([key, g]) => ({
    name: key || 'all cells',
    values: g.sum.map((s, i) => ((g.n[i] ?? 0) > 0 ? s / (g.n[i] as number) : null)),
  }));
  return { categories: values.map((v) => (typeof v === 'number' ? fmt(v) : v)), series };
}

function axisCharts(sw: SweepResult, axis: string): string[] {
  const label = axisLabel(axis);
  const safe = axis.replace(/[^A-Za-z0-9_-]/g, '_');
  const rate = sweepAxisSeries(sw, axis, (s) => s.upstream.ratePerSec);
  const p99 = sweepAxisSeries(sw, axis, (s) => s.latencyMs.p99);
  if (rate.categories.length < 2) {
    return [
      `<p class="note">${escapeXml(label)}: one value only (${escapeXml(rate.categories.join(''))}), no chart.</p>`,
    ];
  }
  return [
    figure(
      `IoT Hub rate against ${label}`,
      lineChartSvg({
        id: `sweep-${safe}-rate`,
        title: `IoT Hub rate against ${label}`,
        xLabel: label,
        yLabel: 'IoT Hub rate (msg/s)',
        x: { categories: rate.categories },
        series: rate.series,
        showPoints: true,
      }),
    ),
    figure(
      `p99 latency against ${label}`,
      lineChartSvg({
        id: `sweep-${safe}-p99`,
        title: `p99 latency against ${label}`,
        xLabel: label,
        yLabel: 'p99 latency (ms)',
        x: { categories: p99.categories },
        series: p99.series,
        showPoints: true,
      }),
    ),
  ];
}

// ---- HTML helpers ----------------------------------------------------------------------------

type Cell = string | { text: string; cls?: string; href?: string };

function table(caption: string, head: readonly string[], rows: readonly (readonly Cell[])[]): string {
  const cell = (c: Cell, tag: 'td' | 'th') => {
    if (typeof c === 'string') return `<${tag}>${escapeXml(c)}</${tag}>`;
    const text = c.href ? `<a href="${escapeXml(c.href)}">${escapeXml(c.text)}</a>` : escapeXml(c.text);
    return `<${tag}${c.cls ? ` class="${c.cls}"` : ''}>${text}</${tag}>`;
  };
  return [
    '<div class="table-wrap"><table>',
    caption ? `<caption>${escapeXml(caption)}</caption>` : '',
    `<thead><tr>${head.map((h) => cell(h, 'th')).join('')}</tr></thead>`,
    `<tbody>${rows.map((r) => `<tr>${r.map((c, i) => cell(c, i === 0 && r.length > 1 && head[0] === '' ? 'th' : 'td')).join('')}</tr>`).join('')}</tbody>`,
    '</table></div>',
  ].join('');
}

function figure(caption: string, svg: string, note?: string): string {
  return `<figure>${svg}<figcaption>${escapeXml(caption)}${note ? ` — ${escapeXml(note)}` : ''}</figcaption></figure>`;
}

function fmt(n: number): string {
  if (!Number.isFinite(n)) return '–';
  return Number.isInteger(n)
    ? n.toLocaleString('en-US')
    : n.toLocaleString('en-US', { maximumFractionDigits: 1 });
}

const CSS = `
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1100px; padding: 24px; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; color: #111; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 28px 0 6px; border-bottom: 1px solid #ccc; padding-bottom: 4px; }
h3 { font-size: 16px; margin: 16px 0 6px; }
.meta, .config, .note, figcaption { color: #444; }
.mode { font-weight: normal; color: #555; }
.label { display: inline-block; border: 1px solid #bbb; border-radius: 3px; padding: 0 5px; margin-right: 4px; font-size: 12px; }
.warning { border-left: 4px solid #B00020; background: #fdecee; padding: 6px 10px; }
.tables { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
/* wide sweep tables scroll on screen rather than push the page wider */
.table-wrap { max-width: 100%; overflow-x: auto; }
table { border-collapse: collapse; margin: 8px 0; font-variant-numeric: tabular-nums; }
caption { text-align: left; font-weight: 600; padding-bottom: 4px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f3f3f3; font-weight: 600; }
tbody th { text-align: left; }
td.bad { color: #B00020; font-weight: 600; }
figure { margin: 16px 0; break-inside: avoid; page-break-inside: avoid; }
figcaption { font-size: 13px; margin-top: 2px; }
svg.chart { display: block; width: 100%; max-width: 760px; height: auto; }
details.cell { margin: 6px 0; border: 1px solid #ddd; padding: 4px 10px; }
details.cell > summary { cursor: pointer; font-weight: 600; }
@media print {
  body { padding: 0; max-width: none; font-size: 11px; }
  section.run, section.sweep { break-before: auto; }
  h2 { break-after: avoid; }
  details.cell > summary { list-style: none; }
  a { color: inherit; text-decoration: none; }
  .table-wrap { overflow: visible; }
  th, td { padding: 2px 4px; }
}
@page { margin: 14mm; }
`;
