import { writeFile } from 'node:fs/promises';
import Table from 'cli-table3';
import { type Command, InvalidArgumentError } from 'commander';
import { createLogger } from '../../modules/common/index.js';
import type { SweepCell, SweepResult } from '../analysis/sweep-types.js';
import { action, intInRange } from '../cli-errors.js';
import { renderCsv } from '../render/summary-csv.js';
import { type LocalFlags, runLocal } from './local.js';

/** Swept settings, in the order the grid expands them. */
const AXES = [
  'profile',
  'modules',
  'transport',
  'maxUpstreamBatchSize',
  'appBatchMaxBytes',
  'payloadLength',
  'targetRate',
] as const;
type Axis = (typeof AXES)[number];

function list<T>(parse: (s: string) => T): (value: string) => T[] {
  return (value: string) => {
    const items = value
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
    if (items.length === 0) throw new InvalidArgumentError('must be a comma-separated list');
    return items.map(parse);
  };
}

function intList(min: number, max: number) {
  return list((s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(`each value must be an integer from ${min} to ${max}`);
    return n;
  });
}

function choiceList(allowed: readonly string[]) {
  return list((s) => {
    if (!allowed.includes(s))
      throw new InvalidArgumentError(`each value must be one of ${allowed.join(', ')}`);
    return s;
  });
}

interface SweepFlags {
  profile: string[];
  modules: number[];
  transport: string[];
  maxUpstreamBatchSize?: number[];
  appBatchMaxBytes?: number[];
  payloadLength: number[];
  targetRate: number[];
  burstLength: number;
  timeout: number;
  linkRttMs?: string;
  out?: string;
  csv?: string;
  report?: string;
  json: boolean;
}

/**
 * `edgeperf sweep`: a grid over comma lists; every cell is a fresh `edgeperf local` run (new runtime,
 * new state). A value of 0 for --app-batch-max-bytes means "application batching off".
 */
export function registerSweepCommand(program: Command): void {
  program
    .command('sweep')
    .description('run a grid of local measurements (each cell a fresh runtime) and compare them')
    .option(
      '--profile <list>',
      'manifest profiles, e.g. baseline,high-rate',
      choiceList(['baseline', 'high-rate', 'offline-tolerant']),
      ['high-rate'],
    )
    .option(
      '--modules <list>',
      'translator instances: 1 (the profile) or 3 (the multi-module profile)',
      intList(1, 3),
      [1],
    )
    .option('--transport <list>', 'translator transports', choiceList(['sdk-mqtt', 'sdk-amqp', 'raw-mqtt']), [
      'sdk-mqtt',
    ])
    .option(
      '--max-upstream-batch-size <list>',
      "edgeHub MaxUpstreamBatchSize values (default: each profile's)",
      intList(1, 10_000),
    )
    .option(
      '--app-batch-max-bytes <list>',
      'translator batch sizes in bytes; 0 = batching off (default: profile)',
      intList(0, 262_144),
    )
    .option('--payload-length <list>', 'message sizes, bytes', intList(100, 262_144), [1024])
    .option('--target-rate <list>', 'source rates, messages/s', intList(1, 1_000_000), [2000])
    .option('--burst-length <n>', 'messages per cell', intInRange(1, 10_000_000), 5000)
    .option('--timeout <secs>', 'per-cell no-data timeout, s', intInRange(1, 3600), 30)
    .option('--link-rtt-ms <ms>', 'edgeHub → IoT Hub round trip per batch, ms (default: calibrated)')
    .option('--out <file>', 'write the sweep as JSON (input of edgeperf report)')
    .option('--csv <file>', 'write one CSV row per cell')
    .option('--report <file>', 'write an HTML report with rate and latency against each swept setting')
    .option('--json', 'print the sweep as one JSON object on stdout', false)
    .action(
      action(async (flags: SweepFlags) => {
        const logger = createLogger('edgeperf');
        const values: Record<Axis, (string | number)[]> = {
          profile: flags.profile,
          modules: flags.modules,
          transport: flags.transport,
          maxUpstreamBatchSize: flags.maxUpstreamBatchSize ?? ['profile'],
          appBatchMaxBytes: flags.appBatchMaxBytes ?? ['profile'],
          payloadLength: flags.payloadLength,
          targetRate: flags.targetRate,
        };
        const grid = expand(values);
        const axes = AXES.filter((a) => values[a].length > 1);
        const cells: SweepCell[] = [];
        const table = new Table({
          head: ['cell', ...AXES, 'source msg/s', 'IoT Hub msg/s', 'p50 ms', 'p99 ms', 'lost'],
          style: { head: [], border: [] },
        });
        for (const [i, params] of grid.entries()) {
          process.stderr.write(`sweep cell ${i + 1}/${grid.length}: ${JSON.stringify(params)}\n`);
          const summary = await runLocal(cellFlags(params, flags), logger);
          cells.push({ params, summary });
          table.push([
            i + 1,
            ...AXES.map((a) => String(params[a])),
            summary.source.ratePerSec,
            summary.upstream.ratePerSec,
            summary.latencyMs.p50,
            summary.latencyMs.p99,
            summary.integrity.lost,
          ]);
        }
        const result: SweepResult = { kind: 'sweep', axes, cells };
        if (flags.out) await writeFile(flags.out, JSON.stringify(result, null, 2));
        if (flags.csv)
          await writeFile(flags.csv, cells.map((c, i) => renderCsv(c.summary, i === 0)).join(''));
        if (flags.report) {
          const { writeHtmlReport } = await import('./report.js');
          await writeHtmlReport(flags.report, result);
        }
        if (flags.json) process.stdout.write(`${JSON.stringify(result)}\n`);
        else process.stdout.write(`${table.toString()}\n`);
        if (cells.some((c) => c.summary.integrity.lost > 0 || c.summary.integrity.expired > 0))
          process.exitCode = 3;
      }),
    );
}

function expand(values: Record<Axis, (string | number)[]>): Record<string, string | number>[] {
  let out: Record<string, string | number>[] = [{}];
  for (const axis of AXES) out = out.flatMap((cell) => values[axis].map((v) => ({ ...cell, [axis]: v })));
  return out;
}

function cellFlags(p: Record<string, string | number>, flags: SweepFlags): LocalFlags {
  const batchBytes = p.appBatchMaxBytes;
  return {
    profile: p.modules === 3 ? 'multi-module' : String(p.profile),
    set: [],
    fault: [],
    appBatch: batchBytes !== 0,
    keepState: false,
    transport: String(p.transport),
    ...(typeof p.maxUpstreamBatchSize === 'number' ? { maxUpstreamBatchSize: p.maxUpstreamBatchSize } : {}),
    ...(typeof batchBytes === 'number' && batchBytes > 0 ? { appBatchMaxBytes: batchBytes } : {}),
    ...(flags.linkRttMs === undefined ? {} : { linkRttMs: Number(flags.linkRttMs) }),
    burstLength: flags.burstLength,
    bursts: 1,
    burstWaitMs: 1000,
    targetRate: Number(p.targetRate),
    payloadLength: Number(p.payloadLength),
    format: 'json',
    devices: p.modules === 3 ? 3 : 1,
    timeout: flags.timeout,
    json: true,
    label: Object.fromEntries(Object.entries(p).map(([k, v]) => [k, String(v)])),
    simulatorModule: 'simulator',
    translatorModule: 'translator',
  };
}
