import { readFile, writeFile } from 'node:fs/promises';
import { Command } from 'commander';
import { EdgePerfError } from '../../modules/common/index.js';
import { action } from '../cli-errors.js';
import { parseReportJson, type ReportInput } from '../render/html-input.js';
import { type HtmlReportOptions, renderHtmlReport } from '../render/html-report.js';

interface ReportFlags {
  readonly output?: string;
  readonly title?: string;
}

/** Default output: the input's name with `.html` instead of `.json` (or appended). */
function defaultOutput(input: string): string {
  return input === '-' ? 'report.html' : `${input.replace(/\.json$/i, '')}.html`;
}

async function readInput(file: string): Promise<string> {
  if (file !== '-') {
    try {
      return await readFile(file, 'utf8');
    } catch (err) {
      throw new EdgePerfError(
        'E_ARGS',
        `${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
        {
          exitCode: 2,
        },
      );
    }
  }
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Renders `input` with {@link renderHtmlReport} and writes it to `file` (for `local`/`run
 * --report FILE`). Returns the bytes written.
 * @throws EdgePerfError(E_ARGS, exit 2) naming the file when the file cannot be written.
 */
export async function writeHtmlReport(
  file: string,
  input: ReportInput,
  options: HtmlReportOptions = {},
): Promise<number> {
  const html = renderHtmlReport(input, options);
  try {
    await writeFile(file, html, 'utf8');
  } catch (err) {
    throw new EdgePerfError(
      'E_ARGS',
      `report ${file}: cannot write (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      { exitCode: 2 },
    );
  }
  return Buffer.byteLength(html);
}

/**
 * `edgeperf report results.json -o report.html`: renders the `--json` summary of `local`/`run`,
 * an array of them, or a sweep result as a self-contained HTML page with charts (no network when
 * viewed). `-` reads stdin. A file that is not one of those exits 2 with one line naming it.
 */
export function reportCommand(): Command {
  return new Command('report')
    .description(
      'Render results (edgeperf local/run --json, an array of them, or a sweep result) as a self-contained HTML page with charts.',
    )
    .argument('<results.json>', "results file, or '-' for stdin")
    .option('-o, --output <file.html>', 'where to write the page (default: the input name with .html)')
    .option('--title <text>', 'page title', 'edgeperf report')
    .action(
      action(async (file: string, flags: ReportFlags) => {
        const input = parseReportJson(await readInput(file), file === '-' ? 'stdin' : file);
        const out = flags.output ?? defaultOutput(file);
        const bytes = await writeHtmlReport(out, input, flags.title ? { title: flags.title } : {});
        process.stdout.write(`report written to ${out} (${Math.round(bytes / 1024)} KiB)\n`);
      }),
    );
}
