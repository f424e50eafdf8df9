import { readFile } from 'node:fs/promises';
import Table from 'cli-table3';
import { Command } from 'commander';
import { resolvePlaceholders } from '../../emulator/agent/manifest.js';
import { EdgePerfError } from '../../modules/common/index.js';
import { action, intInRange, numberInRange } from '../cli-errors.js';
import { LINT_RULES } from '../manifest/lint-rules.js';
import { DEFAULT_RAM_GB, type LintResult, lintExitCode, lintManifest } from '../manifest/linter.js';

interface LintFlags {
  readonly diskGb?: number;
  readonly rate?: number;
  readonly payloadLength?: number;
  readonly ramGb: number;
  readonly strict: boolean;
  readonly json: boolean;
}

/** The human report of a lint: one row per finding, then skipped rules and a verdict. */
export function renderLint(file: string, r: LintResult): string {
  const out: string[] = [];
  if (r.findings.length > 0) {
    const t = new Table({
      head: ['severity', 'rule', 'where / what / fix'],
      style: { head: [], border: [] },
      colWidths: [10, 28, 104],
      wordWrap: true,
    });
    for (const f of r.findings)
      t.push([f.severity, f.rule, `${f.pointer || '/'}\n${f.message}\nfix: ${f.fix}`]);
    out.push(t.toString());
  }
  for (const s of r.skipped) out.push(`skipped ${s.rule}: ${s.reason}`);
  const rate =
    r.inputs.ratePerSec !== undefined
      ? ` (${r.inputs.ratePerSec} msg/s × ${r.inputs.payloadLength} B from ${r.inputs.rateSource})`
      : '';
  out.push(`${file}: ${r.errors} error(s), ${r.warnings} warning(s)${rate}`);
  return `${out.join('\n')}\n`;
}

/** `edgeperf lint FILE`: a manifest doctor for performance and disk safety. */
export function lintCommand(): Command {
  return new Command('lint')
    .description(
      `Check a deployment manifest for performance and disk-safety problems. Exit 0 clean, 1 warnings with --strict, 2 errors. Rules: ${LINT_RULES.map((r) => r.id).join(', ')}.`,
    )
    .argument('<file>', `deployment manifest (JSON); a template with \${MODULES.x} is resolved first`)
    .option(
      '--disk-gb <GB>',
      "disk for edgeHub's store, GB = 10^9 bytes, 0.001–1000000 (default: disk rule skipped)",
      numberInRange(0.001, 1_000_000),
    )
    .option(
      '--rate <msg/s>',
      "source messages per second, 0.001–1000000 (default: the simulator's desired config.targetRate, else rate rules skipped)",
      numberInRange(0.001, 1_000_000),
    )
    .option(
      '--payload-length <bytes>',
      "bytes per source message, 1–262144 (default: the simulator's desired config.payloadLength, else 1024)",
      intInRange(1, 262_144),
    )
    .option(
      '--ram-gb <GB>',
      'RAM an in-memory store may use when storeLimits.maxSizeBytes is absent, GB, 0.001–100000',
      numberInRange(0.001, 100_000),
      DEFAULT_RAM_GB,
    )
    .option('--strict', 'exit 1 on warnings', false)
    .option('--json', 'print one JSON object', false)
    .action(
      action(async (file: string, flags: LintFlags) => {
        let text: string;
        try {
          text = await readFile(file, 'utf8');
        } catch (err) {
          throw new EdgePerfError('E_MANIFEST', `manifest ${file}: cannot read (${(err as Error).message})`, {
            exitCode: 2,
          });
        }
        const template = /\$\{MODULES\./.test(text);
        let json: unknown;
        try {
          json = JSON.parse(template ? resolvePlaceholders(text) : text);
        } catch (err) {
          throw new EdgePerfError(
            'E_MANIFEST',
            `manifest ${file}: not valid JSON (${(err as Error).message})`,
            { exitCode: 2 },
          );
        }
        const result = lintManifest(json, {
          ...(flags.diskGb !== undefined ? { diskGb: flags.diskGb } : {}),
          ...(flags.rate !== undefined ? { ratePerSec: flags.rate } : {}),
          ...(flags.payloadLength !== undefined ? { payloadLength: flags.payloadLength } : {}),
          ramGb: flags.ramGb,
          template,
        });
        const exitCode = lintExitCode(result, flags.strict);
        process.stdout.write(
          flags.json ? `${JSON.stringify({ file, exitCode, ...result })}\n` : renderLint(file, result),
        );
        process.exitCode = exitCode;
      }),
    );
}
