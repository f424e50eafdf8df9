import { describe, expect, it } from 'vitest';
import { latencyHistogram } from '../../perf-cli/analysis/latency-histogram.js';
import type { RunSummary } from '../../perf-cli/analysis/summary-types.js';
import { parseReportInput, parseReportJson } from '../../perf-cli/render/html-input.js';
import { renderHtmlReport, sweepAxisSeries } from '../../perf-cli/render/html-report.js';
import { sampleRun, sampleSweep } from './report-fixtures.js';

const at = new Date('2026-11-22T12:00:00Z');

function charts(html: string): string[] {
  return [...html.matchAll(/data-chart="([^"]+)"/g)].map((m) => m[1] as string);
}

function seriesPoints(html: string, chart: string): Record<string, number> {
  const svg = new RegExp(`<svg[^>]*data-chart="${chart}"[\\s\\S]*?</svg>`).exec(html)?.[0] ?? '';
  return Object.fromEntries(
    [...svg.matchAll(/<path data-series="([^"]*)" data-points="(\d+)"/g)].map((m) => [m[1], Number(m[2])]),
  );
}

describe('renderHtmlReport', () => {
  it('renders a run: charts over time, distribution, every table', () => {
    const s = sampleRun();
    const html = renderHtmlReport(s, { generatedAt: at });
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(charts(html)).toEqual(['run-rate', 'run-queue', 'run-latency', 'run-latency-dist']);
    expect(seriesPoints(html, 'run-rate')).toEqual({ 'source ⇒ edgeHub': 30, 'edgeHub ⇒ IoT Hub': 30 });
    expect(seriesPoints(html, 'run-queue')).toEqual({ edgehub_queue_length: 30 });
    // p50/p99 have nulls at 12–13 s and before upstream starts: points = non-null values
    const nonNull = s.series?.latencyP50.filter((v) => v !== null).length;
    expect(seriesPoints(html, 'run-latency')).toEqual({ p50: nonNull, p99: nonNull });
    expect(html).toMatch(/<rect class="bar"/);
    for (const text of [
      'lost',
      'duplicates',
      'out of order',
      'expired',
      'queue peak',
      'p95',
      'metered 4 KB units',
      'Faults injected',
      'link down 3 s',
      'desired 2,000',
      'time since start (s)',
      'rate (msg/s)',
      'queue length (messages)',
      'latency (ms)',
      '2026-11-22T12:00:00Z',
    ]) {
      expect(html).toContain(text);
    }
    expect(html).toContain('10 message(s) lost');
  });

  it('is self-contained: no scripts, no external resources', () => {
    for (const html of [renderHtmlReport(sampleRun()), renderHtmlReport(sampleSweep())]) {
      expect(html).not.toMatch(/<script|<link|<img|<iframe|@import|url\(/i);
      // the only URL is the SVG namespace, which is an identifier, not a fetch
      const urls = [...html.matchAll(/https?:\/\/[^\s"')]+/g)].map((m) => m[0]);
      expect(new Set(urls)).toEqual(new Set(['http://www.w3.org/2000/svg']));
    }
  });

  it('escapes every string from the summary', () => {
    const s = sampleRun({
      runId: '<img src=x onerror=alert(1)>',
      faults: [{ fault: '<b>', atSecs: 1, detail: '"quoted" & <tag>' }],
    });
    const html = renderHtmlReport(s);
    expect(html).not.toContain('<img');
    expect(html).not.toContain('<b>');
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(html).toContain('&quot;quoted&quot; &amp; &lt;tag&gt;');
    expect(html).toContain('host=laptop &lt;&amp;&gt;');
  });

  it('falls back to a percentile chart without a histogram and says when there is no series', () => {
    const { series: _s, latencyHistogram: _h, ...bare } = sampleRun();
    const html = renderHtmlReport(bare as RunSummary);
    expect(charts(html)).toEqual(['run-latency-dist']);
    expect(html).toContain('no per-second series');
    expect(html).toContain('no latency histogram');
    expect([...html.matchAll(/<rect class="bar"/g)]).toHaveLength(5);
  });

  it('reads Prometheus-style upper-bound histograms too', () => {
    const html = renderHtmlReport(
      sampleRun({ series: undefined, latencyHistogram: { boundsMs: [10, 100, 1000], counts: [5, 3, 2] } }),
    );
    expect([...html.matchAll(/<rect class="bar" data-value="([\d.]+)"/g)].map((m) => Number(m[1]))).toEqual([
      50, 30, 20,
    ]);
  });

  it('renders several runs with a comparison table and distinct chart ids', () => {
    const html = renderHtmlReport([sampleRun(), sampleRun({ runId: 'second', partial: true })]);
    expect(html).toContain('Runs compared');
    expect(html).toContain('PARTIAL');
    const ids = charts(html);
    expect(ids).toHaveLength(8);
    expect(new Set(ids).size).toBe(8);
    expect(ids).toContain('run2-latency');
  });

  it('renders a sweep: one rate and one p99 chart per varying axis, a line per other-axes combination', () => {
    const html = renderHtmlReport(sampleSweep());
    const sweepCharts = charts(html).filter((c) => c.startsWith('sweep-'));
    expect(sweepCharts).toEqual([
      'sweep-payloadLength-rate',
      'sweep-payloadLength-p99',
      'sweep-modules-rate',
      'sweep-modules-p99',
    ]);
    expect(seriesPoints(html, 'sweep-payloadLength-rate')).toEqual({ 'modules=1': 4, 'modules=3': 4 });
    expect(Object.keys(seriesPoints(html, 'sweep-modules-p99'))).toHaveLength(4);
    expect(html).toContain('transport: one value only (mqtt), no chart.');
    expect(html).toContain('payload length (bytes)');
    // every cell's own run, collapsed
    expect(html.match(/<details class="cell">/g)).toHaveLength(8);
    expect(charts(html)).toContain('cell8-rate');
  });
});

describe('sweepAxisSeries', () => {
  it('sorts numeric values, averages repeated cells and leaves missing cells as gaps', () => {
    const base = sampleRun({}, 2);
    const cell = (payloadLength: number, transport: string, rate: number) => ({
      params: { payloadLength, transport },
      summary: { ...base, upstream: { ...base.upstream, ratePerSec: rate } },
    });
    const sw = {
      kind: 'sweep' as const,
      axes: ['payloadLength', 'transport'],
      cells: [cell(4096, 'mqtt', 10), cell(1024, 'mqtt', 30), cell(1024, 'mqtt', 50), cell(1024, 'amqp', 7)],
    };
    const r = sweepAxisSeries(sw, 'payloadLength', (s) => s.upstream.ratePerSec);
    expect(r.categories).toEqual(['1,024', '4,096']);
    expect(r.series).toEqual([
      { name: 'transport=mqtt', values: [40, 10] },
      { name: 'transport=amqp', values: [7, null] },
    ]);
    const byTransport = sweepAxisSeries(sw, 'transport', (s) => s.upstream.ratePerSec);
    expect(byTransport.categories).toEqual(['mqtt', 'amqp']);
  });
});

describe('parseReportInput', () => {
  it('accepts a run, an array of runs and a sweep, unchanged', () => {
    const run = sampleRun();
    expect(parseReportInput(run, 'a.json')).toBe(run);
    const arr = [run, run];
    expect(parseReportInput(arr, 'a.json')).toBe(arr);
    const sw = sampleSweep();
    expect(parseReportInput(JSON.parse(JSON.stringify(sw)), 'a.json')).toEqual(sw);
  });

  it('rejects anything else with one line naming the file, what was expected and the field', () => {
    const cases: [unknown, RegExp][] = [
      [{ hello: 1 }, /^results\.json: expected the --json summary .*; at mode: /],
      [[], /^results\.json: expected .*at \(top level\)/],
      [{ ...sampleRun(), latencyMs: { p50: 'x' } }, /at latencyMs\.min/],
      [{ kind: 'sweep', axes: ['a'], cells: [{ params: {}, summary: {} }] }, /at cells\.0\.summary\.mode/],
      [{ ...sampleRun(), series: { t: [0], sourceRate: ['a'] } }, /at series\.sourceRate\.0/],
    ];
    for (const [value, re] of cases) {
      try {
        parseReportInput(value, 'results.json');
        expect.unreachable();
      } catch (err) {
        expect(err).toMatchObject({ code: 'E_ARGS', exitCode: 2 });
        expect((err as Error).message).toMatch(re);
        expect((err as Error).message).not.toContain('\n');
      }
    }
    expect(() => parseReportJson('{"mode":', 'r.json')).toThrow(/^r\.json: not JSON \(.*\); expected/);
  });
});

describe('latencyHistogram', () => {
  it('buckets samples on log-spaced edges covering the maximum', () => {
    const h = latencyHistogram([0, 0.5, 1, 1.2, 2.9, 3, 99, 100, -3, Number.NaN]);
    expect(h.boundsMs.slice(0, 8)).toEqual([0, 1, 1.5, 2, 3, 5, 7, 10]);
    expect(h.boundsMs.at(-1)).toBe(150);
    expect(h.counts).toHaveLength(h.boundsMs.length - 1);
    expect(h.counts.reduce((a, b) => a + b, 0)).toBe(9);
    expect(h.counts.slice(0, 4)).toEqual([3, 2, 0, 1]); // [0,1): 0, 0.5, -3; [1,1.5): 1, 1.2; [2,3): 2.9
    expect(h.counts.at(-2)).toBe(1); // 99 in [70, 100)
    expect(h.counts.at(-1)).toBe(1); // 100 in [100, 150)
    expect(latencyHistogram([])).toEqual({ boundsMs: [], counts: [] });
    expect(latencyHistogram([0, 0])).toEqual({ boundsMs: [0, 1], counts: [2] });
  });
});
