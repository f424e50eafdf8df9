import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { markdownTable, resultsTable, sweepTable, targetsTable } from '../../bench/markdown.js';
import { fileLoader, renderReadme, sameFile } from '../../bench/readme.js';
import { type BenchReport, type BenchResult, checkTargets, computeRatios } from '../../bench/report.js';
import type { SweepResult } from '../../perf-cli/analysis/sweep-types.js';

const ROOT = resolve(import.meta.dirname, '..', '..');

function row(
  kind: BenchResult['kind'],
  payloadBytes: number,
  msgPerSec: number,
  extra: Partial<BenchResult> = {},
) {
  return {
    kind,
    name: kind,
    payloadBytes,
    messages: 1000,
    published: 1000,
    durationMs: 1000,
    msgPerSec,
    logicalMBps: 1.5,
    wireMBps: 0,
    cpuMsPer1000: 20,
    peakRssMB: 100,
    latencyMs: null,
    ...extra,
  } satisfies BenchResult;
}

function report(translatorRate: number, overloadRss = 130): BenchReport {
  const results: BenchResult[] = [
    row('naive', 1024, 1000),
    row('translator', 1024, translatorRate, {
      transport: 'raw-mqtt',
      wireMBps: 9,
      runtimeCpuMsPer1000: 9.7,
      latencyMs: { p50: 14, p99: 54, samples: 10 },
    }),
    row('translator', 1024, 5000, { transport: 'sdk-amqp', wireMBps: 5 }),
    row('ingest-limit', 1024, 10_000, { msgPerSecRuns: [10_500, 9_000, 10_000] }),
    row('wire-limit', 260_096, 100, { wireMBps: 20 }),
    row('overload', 1024, 224, { transport: 'raw-mqtt', peakRssMB: overloadRss }),
    row('measurer', 1024, 1983, { published: 40_000, cpuPercent: 4.4, cpuMsPer1000: 22.2 }),
  ];
  const ratios = computeRatios(results);
  return {
    startedAt: '2026-11-23T00:00:00.000Z',
    host: { cpus: 2, loadAvgStart: [1], loadAvgEnd: [1], node: 'v20' },
    config: { overloadSecs: 60, link: { rttMs: 0, bandwidthMbps: 'unlimited' } },
    results,
    ratios,
    targets: checkTargets(ratios, results),
    notes: [],
  };
}

describe("the README's bench tables", () => {
  it('pads every column to one width', () => {
    expect(markdownTable(['a', 'long head'], [['×1', 'b']]).split('\n')).toEqual([
      '| a   | long head |',
      '| --- | --------- |',
      '| ×1  | b         |',
    ]);
  });

  it("renders a report's rows, with the target figures in bold", () => {
    const table = resultsTable(report(9000));
    expect(table).toContain('| **translator, raw-mqtt** ');
    expect(table).toContain('| **9,000** ');
    expect(table).toContain('| translator, sdk-amqp ');
    expect(table).toContain('| 14 / 54 ');
    expect(table).toContain('| 10,000 (9,000–10,500) ');
    expect(table).toContain('| **130 MB** ');
    expect(table).toContain('22 (**4.4%** of a core)');
    expect(table).toContain('overload: translator (raw-mqtt), source at 10× the link for 60 s');
    expect(table).toContain('| 224 up ');
    expect(resultsTable(report(9001))).not.toBe(table);
  });

  it('lists the targets of several runs and counts the runs that met each', () => {
    const table = targetsTable([
      { file: 'bench/results/new.json', report: report(9000) },
      { file: 'bench/results/old.json', report: report(6000, 250) },
    ]);
    const lines = table.split('\n');
    expect(lines[2]).toMatch(
      /^\| `new\.json` +\| instant +\| raw-mqtt +\| 9\.00× +\| 0\.90 +\| 0\.45 ✗ +\| 130 +\| 4\.4 +\|$/,
    );
    expect(lines[3]).toMatch(/^\| `old\.json` .*\| 6\.00× ✗ +\| 0\.60 ✗ .*\| 250 ✗ /);
    expect(lines[4]).toMatch(
      /^\| met in +\| +\| +\| 1 of 2 +\| 1 of 2 +\| 0 of 2 +\| 1 of 2 +\| 2 of 2 +\|$/,
    );
  });

  it("renders a sweep's cells with the settings each run resolved", () => {
    const sweep = JSON.parse(
      readFileSync(join(ROOT, 'bench/results/blog-sizes.json'), 'utf8'),
    ) as SweepResult;
    const lines = sweepTable([{ file: 'bench/results/blog-sizes.json', sweep }]).split('\n');
    expect(lines).toHaveLength(2 + sweep.cells.length);
    const first = sweep.cells[0]?.summary;
    expect(lines[2]).toContain(`| ${first?.config.labels?.profile} `);
    expect(lines[2]).toContain(` ${Math.round(first?.source.ratePerSec ?? -1).toLocaleString('en-US')} `);
    // A profile's own settings, not the word "profile": the high-rate rows batch 256 KiB in the app.
    expect(
      lines.filter((l) => l.includes('| high-rate ')).every((l) => l.includes('| 256 KiB, 200 ms ')),
    ).toBe(true);
    expect(lines.filter((l) => l.includes('| baseline ')).every((l) => l.includes('| off '))).toBe(true);
  });

  it('re-renders only the blocks between the markers, from the reports they name', () => {
    const reports: Record<string, BenchReport> = { 'a.json': report(9000), 'b.json': report(7000) };
    const load = (file: string) => reports[file] as BenchReport;
    const text = [
      'intro',
      '<!-- bench:results a.json -->',
      'stale table',
      '<!-- /bench:results -->',
      'middle',
      '<!-- bench:targets a.json b.json -->',
      '<!-- /bench:targets -->',
      'end',
    ].join('\n');
    const out = renderReadme(text, load);
    expect(out).toContain(
      `intro\n<!-- bench:results a.json -->\n${resultsTable(report(9000))}\n<!-- /bench:results -->\nmiddle`,
    );
    expect(out).toContain('`b.json`');
    expect(out.endsWith('<!-- /bench:targets -->\nend')).toBe(true);
    expect(renderReadme(out, load)).toBe(out);
  });

  it('draws the charts into the files the markers name and links them', () => {
    const old = report(7000);
    const reports: Record<string, BenchReport> = {
      'a.json': report(9000),
      'b.json': { ...old, config: { ...old.config, link: { rttMs: 1, bandwidthMbps: 10_000 } } },
    };
    const load = (file: string) => reports[file] as BenchReport;
    const charts = new Map<string, string>();
    const out = renderReadme(
      [
        '<!-- bench:chart-throughput c/t.svg a.json -->',
        '<!-- /bench:chart-throughput -->',
        '<!-- bench:chart-ratios c/r.svg a.json b.json -->',
        '<!-- /bench:chart-ratios -->',
      ].join('\n'),
      load,
      charts,
    );
    expect(out).toContain('](c/t.svg)\n<!-- /bench:chart-throughput -->');
    expect(out).toContain('](c/r.svg)\n<!-- /bench:chart-ratios -->');
    const bars = charts.get('c/t.svg') ?? '';
    // naive, two transports and the ingest limit at 1 KB: four bars, the translator's labelled.
    expect(bars.match(/<rect class="bar"/g)).toHaveLength(4);
    expect(bars).toContain('>9,000</text>');
    const lines = charts.get('c/r.svg') ?? '';
    expect(lines).toContain('data-chart="bench-ratios"');
    expect(lines.match(/data-points="2"/g)).toHaveLength(2);
    expect(lines).toContain('goal 0.8');
    expect(lines).toContain('instant link');
    expect(() =>
      renderReadme('<!-- bench:chart-ratios a.json -->\n<!-- /bench:chart-ratios -->', load),
    ).toThrow('bench:chart-ratios takes the .svg file to write, then the reports to draw');
  });

  it('names the block or the file that is wrong', () => {
    const load = fileLoader(mkdtempSync(join(tmpdir(), 'bench-readme-')));
    expect(() => renderReadme('<!-- bench:results a.json -->\nno end\n', load)).toThrow(
      'bench:results block has no <!-- /bench:results --> after it',
    );
    expect(() => renderReadme('<!-- bench:plots a.json -->\n<!-- /bench:plots -->', load)).toThrow(
      'unknown block bench:plots (allowed: bench:results, bench:targets, bench:sweep, bench:chart-throughput, bench:chart-ratios)',
    );
    expect(() => renderReadme('<!-- bench:results missing.json -->\n<!-- /bench:results -->', load)).toThrow(
      /^missing\.json: not a readable JSON file/,
    );
    const dir = mkdtempSync(join(tmpdir(), 'bench-readme-'));
    writeFileSync(join(dir, 'x.json'), '{"results":[]}');
    expect(() =>
      renderReadme('<!-- bench:targets x.json -->\n<!-- /bench:targets -->', fileLoader(dir)),
    ).toThrow('x.json: not a bench report (needs results, ratios and targets');
    expect(() => renderReadme('<!-- bench:sweep x.json -->\n<!-- /bench:sweep -->', fileLoader(dir))).toThrow(
      'x.json: not an edgeperf sweep result',
    );
  });

  it('the README matches the saved reports its markers name', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    expect(readme).toMatch(/<!-- bench:results bench\/results\/\S+\.json -->/);
    expect(readme).toMatch(/<!-- bench:targets /);
    expect(readme).toMatch(/<!-- bench:sweep /);
    const charts = new Map<string, string>();
    expect(renderReadme(readme, fileLoader(ROOT), charts)).toBe(readme);
    expect([...charts.keys()].sort()).toEqual(['bench/charts/ratios.svg', 'bench/charts/throughput-1kb.svg']);
    for (const [svg, content] of charts) expect(sameFile(join(ROOT, svg), content), svg).toBe(true);
  });
});
