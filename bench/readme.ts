#!/usr/bin/env node
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { resultsTable, type SavedReport, targetsTable } from './markdown.js';
import type { BenchReport } from './report.js';

// `npm run bench:readme`: re-renders the README's bench tables from the saved reports their
// markers name, so the performance section is regenerated from bench output (issue 7).
//
//   <!-- bench:results bench/results/<run>.json -->   … <!-- /bench:results -->
//   <!-- bench:targets bench/results/<a>.json … -->   … <!-- /bench:targets -->

const BLOCK = /<!-- bench:(\w+) ([^>]*?) -->\n[\s\S]*?<!-- \/bench:\1 -->/g;
const OPENER = /<!-- bench:(\w+)\b/g;

/** Reads one saved report; throws a one-line error naming the file. */
export type ReportLoader = (file: string) => BenchReport;

/** Loads `file` (relative to `root`) as a saved bench report. */
export function fileLoader(root: string): ReportLoader {
  return (file) => {
    let report: Partial<BenchReport>;
    try {
      report = JSON.parse(readFileSync(join(root, file), 'utf8')) as Partial<BenchReport>;
    } catch (err) {
      throw new Error(`${file}: not a readable bench report (${(err as Error).message})`);
    }
    if (!Array.isArray(report.results) || !Array.isArray(report.targets) || !report.ratios) {
      throw new Error(`${file}: not a bench report (needs results, ratios and targets, as --save writes)`);
    }
    return report as BenchReport;
  };
}

function render(kind: string, files: readonly string[], load: ReportLoader): string {
  if (files.length === 0) throw new Error(`bench:${kind} block names no report`);
  if (kind === 'results') {
    if (files.length !== 1) throw new Error(`bench:results takes one report, got ${files.length}`);
    return resultsTable(load(files[0] as string));
  }
  if (kind === 'targets') {
    return targetsTable(files.map((file): SavedReport => ({ file, report: load(file) })));
  }
  throw new Error(`unknown block bench:${kind} (allowed: bench:results, bench:targets)`);
}

/**
 * Re-renders every bench block of a Markdown text. Throws on a block without its closing marker,
 * an unknown block kind, or a report that cannot be read.
 */
export function renderReadme(text: string, load: ReportLoader): string {
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
    return `<!-- bench:${kind} ${files.join(' ')} -->\n${render(kind, files, load)}\n<!-- /bench:${kind} -->`;
  });
}

async function main(): Promise<void> {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const program = new Command('edgeperf-bench-readme')
    .description("Re-render the README's bench tables from the saved reports their markers name")
    .option('--check', 'change nothing; exit 1 if a table differs from what its reports give')
    .option('--file <path>', 'the Markdown file to update', join(root, 'README.md'))
    .parse();
  const { check, file } = program.opts<{ check?: boolean; file: string }>();
  const before = readFileSync(file, 'utf8');
  const after = renderReadme(before, fileLoader(root));
  if (after === before) {
    console.log(`${file}: bench tables match their reports`);
    return;
  }
  if (check) {
    console.error(`${file}: bench tables differ from their reports; run npm run bench:readme`);
    process.exitCode = 1;
    return;
  }
  writeFileSync(file, after);
  console.log(`${file}: bench tables re-rendered`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    console.error(`bench:readme: ${(err as Error).message}`);
    process.exitCode = 1;
  });
}
