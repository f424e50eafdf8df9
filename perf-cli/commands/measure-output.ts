import { writeFile } from 'node:fs/promises';
import type { RunSummary } from '../analysis/summary-types.js';
import { progressBarText } from '../render/progress-bar.js';
import { renderCsv } from '../render/summary-csv.js';
import { renderSummary } from '../render/summary-table.js';
import type { MeasureFlags } from './measure-flags.js';

/** Prints a run's results as asked and sets the exit code (3 when messages were lost or expired). */
export async function emitResults(summary: RunSummary, flags: MeasureFlags): Promise<void> {
  if (flags.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  else process.stdout.write(renderSummary(summary));
  if (flags.csv) await writeFile(flags.csv, renderCsv(summary));
  if (flags.report) {
    const { writeHtmlReport } = await import('./report.js');
    await writeHtmlReport(flags.report, summary);
  }
  const i = summary.integrity;
  if (i.lost > 0 || i.expired > 0) process.exitCode = 3;
}

/** A one-line progress bar on stderr, redrawn in place; silent when stderr is not a terminal or with --json. */
export function progressBar(
  enabled: boolean,
): (p: { sent: number; delivered: number; expected: number; queue: number }) => void {
  if (!enabled || !process.stderr.isTTY) return () => undefined;
  return ({ sent, delivered, expected, queue }) => {
    const done = expected > 0 ? Math.min(1, delivered / expected) : 0;
    const bar = progressBarText(done);
    process.stderr.write(
      `\r[${bar}] ${(done * 100).toFixed(0).padStart(3)}%  sent ${sent}  delivered ${delivered}/${expected}  queue ${queue}   `,
    );
    if (done >= 1) process.stderr.write('\n');
  };
}
