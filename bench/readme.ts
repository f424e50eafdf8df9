#!/usr/bin/env node
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { isSweepResult, type SweepResult } from '../perf-cli/analysis/sweep-types.js';
import { ratiosChart, throughputChart } from './charts.js';
import { resultsTable, type SavedReport, sweepTable, targetsTable } from './markdown.js';
import type { BenchReport } from './report.js';

// `npm run bench:readme`: re-renders the README's bench tables from the saved reports and sweeps
// their markers name, so the performance section is regenerated from bench output (issue 7).
//
//   <!-- bench:results bench/results/<run>.json -->   … <!-- /bench:results -->
//   <!-- bench:targets bench/results/<a>.json … -->   … <!-- /bench:targets -->
//   <!-- bench:sweep bench/results/<sweep>.json … -->  … <!-- /bench:sweep -->   (edgeperf sweep --out)
//   <!-- bench:chart-throughput <file>.svg <run>.json -->, <!-- bench:chart-ratios <file>.svg <a>.json … -->
//     write the SVG and put its image link between the markers.

const BLOCK = /<!-- bench:([\w-]+) ([^>]*?) -->\n[\s\S]*?<!-- \/bench:\1 -->/g;
const OPENER = /<!-- bench:([\w-]+)/g;

/** Reads one saved JSON file; throws a one-line error naming the file. */
export type JsonLoader = (file: string) => unknown;

/** Loads `file` (relative to `root`) as JSON. */
export function fileLoader(root: string): JsonLoader {
  return (file) => {
    try {
      return JSON.parse(readFileSync(join(root, file), 'utf8')) as unknown;
    } catch (err) {
      throw new Error(`${file}: not a readable JSON file (${(err as Error).message})`);
    }
  };
}

function benchReport(file: string, value: unknown): BenchReport {
  const r = value as Partial<BenchReport> | null;
  if (!Array.isArray(r?.results) || !Array.isArray(r.targets) || !r.ratios) {
    throw new Error(`${file}: not a bench report (needs results, ratios and targets, as --save writes)`);
  }
  return r as BenchReport;
}

function sweep(file: string, value: unknown): SweepResult {
  if (!isSweepResult(value) || !Array.isArray(value.cells)) {
    throw new Error(`${file}: not an edgeperf sweep result (needs kind "sweep" and cells, as --out writes)`);
  }
  return value;
}

function render(
  kind: string,
  files: readonly string[],
  load: JsonLoader,
  charts: Map<string, string>,
): string {
  if (files.length === 0) throw new Error(`bench:${kind} block names no file`);
  switch (kind) {
    case 'results': {
      if (files.length !== 1) throw new Error(`bench:results takes one report, got ${files.length}`);
      const file = files[0] as string;
      return resultsTable(benchReport(file, load(file)));
    }
    case 'targets':
      return targetsTable(
        files.map((file): SavedReport => ({ file, report: benchReport(file, load(file)) })),
      );
    case 'sweep':
      return sweepTable(files.map((file) => ({ file, sweep: sweep(file, load(file)) })));
    case 'chart-throughput':
    case 'chart-ratios': {
      const [svg, ...reports] = files;
      if (svg === undefined || !svg.endsWith('.svg') || reports.length === 0) {
        throw new Error(`bench:${kind} takes the .svg file to write, then the reports to draw`);
      }
      const saved = reports.map((file): SavedReport => ({ file, report: benchReport(file, load(file)) }));
      if (kind === 'chart-throughput') {
        const one = saved[0] as SavedReport;
        if (saved.length !== 1)
          throw new Error(`bench:chart-throughput draws one report, got ${saved.length}`);
        charts.set(svg, throughputChart(one.report, one.file));
        return `![1 KB messages per second into IoT Hub: naive module, translator by transport, ingest limit](${svg})`;
      }
      charts.set(svg, ratiosChart(saved));
      return `![The ratio targets in each bench run against the goal of 0.8](${svg})`;
    }
    default:
      throw new Error(
        `unknown block bench:${kind} (allowed: bench:results, bench:targets, bench:sweep, bench:chart-throughput, bench:chart-ratios)`,
      );
  }
}

/**
 * Re-renders every bench block of a Markdown text. A chart block's SVG goes into `charts` (path →
 * content) for the caller to write. Throws on a block without its closing marker, an unknown
 * block kind, or a report that cannot be read.
 */
export function renderReadme(text: string, load: JsonLoader, charts = new Map<string, string>()): string {
  const opened = [...text.matchAll(OPENER)].map((m) => m[1]);
  const closed = [...text.matchAll(BLOCK)].map((m) => m[1]);
  if (opened.length !== closed.length) {
    const open = opened.find((k, i) => closed[i] !== k);
    throw new Error(
      `bench:${open ?? opened.at(-1)} block has no <!-- /bench:${open ?? opened.at(-1)} --> after it`,
    );
  }
  return text.replace(BLOCK, (_all, kind: string, args: string) => {
    const files = args.split(/\s+/).filter((f) => f.length > 0);
    return `<!-- bench:${kind} ${files.join(' ')} -->\n${render(kind, files, load, charts)}\n<!-- /bench:${kind} -->`;
  });
}

async function main(): Promise<void> {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const program = new Command('edgeperf-bench-readme')
    .description("Re-render the README's bench tables and charts from the saved reports their markers name")
    .option('--check', 'change nothing; exit 1 if a table or chart differs from what its reports give')
    .option('--file <path>', 'the Markdown file to update', join(root, 'README.md'))
    .parse();
  const { check, file } = program.opts<{ check?: boolean; file: string }>();
  const before = readFileSync(file, 'utf8');
  const charts = new Map<string, string>();
  const after = renderReadme(before, fileLoader(root), charts);
  const staleCharts = [...charts].filter(([svg, content]) => !sameFile(join(root, svg), content));
  if (after === before && staleCharts.length === 0) {
    console.log(`${file}: bench tables and charts match their reports`);
    return;
  }
  if (check) {
    const what = [...(after === before ? [] : [file]), ...staleCharts.map(([svg]) => svg)];
    console.error(`${what.join(', ')}: differ from the bench reports; run npm run bench:readme`);
    process.exitCode = 1;
    return;
  }
  writeFileSync(file, after);
  for (const [svg, content] of staleCharts) {
    mkdirSync(dirname(join(root, svg)), { recursive: true });
    writeFileSync(join(root, svg), content);
  }
  console.log(
    `${file}: bench tables re-rendered; charts written: ${staleCharts.map(([svg]) => svg).join(', ') || 'none'}`,
  );
}

/** True when `path` exists and holds exactly `content`. */
export function sameFile(path: string, content: string): boolean {
  try {
    return readFileSync(path, 'utf8') === content;
  } catch {
    return false;
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    console.error(`bench:readme: ${(err as Error).message}`);
    process.exitCode = 1;
  });
}
