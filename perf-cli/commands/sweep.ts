import { writeFile } from 'node:fs/promises';
import Table from 'cli-table3';
import { type Command, InvalidArgumentError, Option } from 'commander';
import {
  createLogger,
  EdgePerfError,
  type Logger,
  parseConnectionString,
} from '../../modules/common/index.js';
import type { RunSummary } from '../analysis/summary-types.js';
import type { SweepCell, SweepResult } from '../analysis/sweep-types.js';
import { action, intInRange, numberInRange } from '../cli-errors.js';
import { withoutIncrementalMarking } from '../gc-tuning.js';
import { serviceRegistry } from '../iothub-service.js';
import { withFewerOptimisations } from '../jit-tuning.js';
import type { ManifestTarget } from '../manifest/index.js';
import { renderCsv } from '../render/summary-csv.js';
import {
  addHubConnectionFlags,
  HUB_CONNECTION_FLAG_NAMES,
  type HubConnectionFlags,
  resolveHubConnection,
} from './hub-connection.js';
import { type LocalFlags, runLocal } from './local.js';
import { runAzureCell } from './sweep-azure.js';

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

interface SweepFlags extends HubConnectionFlags {
  target: 'local' | 'azure';
  profile: string[];
  modules: number[];
  transport: string[];
  maxUpstreamBatchSize?: number[];
  appBatchMaxBytes?: number[];
  payloadLength: number[];
  targetRate: number[];
  burstLength: number;
  timeout: number;
  linkRttMs?: number;
  registry?: string;
  tag?: string;
  manifestTarget?: ManifestTarget;
  deployTimeout?: number;
  out?: string;
  csv?: string;
  report?: string;
  json: boolean;
}

/** Flags of `--target azure` only (the connection flags and these), keyed as commander stores them. */
const AZURE_ONLY_FLAGS = {
  ...HUB_CONNECTION_FLAG_NAMES,
  registry: '--registry',
  tag: '--tag',
  manifestTarget: '--manifest-target',
  deployTimeout: '--deploy-timeout',
} as const;

/** Defaults of the azure-only flags, applied here (commander's would make them look given). */
const AZURE_DEFAULTS = {
  registry: 'edgeperf',
  tag: 'local',
  deployTimeoutSecs: 600,
} as const;

/**
 * `edgeperf sweep`: a grid over comma lists; every cell is a fresh run (issue 5). `--target local`
 * (default): a new local runtime and state per cell, as `edgeperf local`. `--target azure`: the
 * cell's manifest is deployed to one device through IoT Hub, and once edgeAgent reports it applied
 * the cell is measured as `edgeperf run`. A value of 0 for --app-batch-max-bytes means
 * "application batching off".
 */
export function registerSweepCommand(program: Command): void {
  const cmd = program
    .command('sweep')
    .description(
      "run a grid of measurements and compare them; each cell is a fresh run: a new local runtime, or (--target azure) the cell's manifest redeployed to a device",
    )
    .addOption(
      new Option(
        '--target <where>',
        "local: a fresh local runtime per cell; azure: redeploy each cell's manifest to --device-id through IoT Hub, then measure as edgeperf run",
      )
        .choices(['local', 'azure'])
        .default('local'),
    )
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
    .option(
      '--link-rtt-ms <ms>',
      'local only: edgeHub → IoT Hub round trip per batch, ms (default: calibrated 14)',
      numberInRange(0, 60_000),
    );
  addHubConnectionFlags(cmd, 'azure only: ')
    .option(
      '--registry <prefix>',
      `azure only: image repository prefix for \${MODULES.x} in each cell's manifest (default ${AZURE_DEFAULTS.registry})`,
    )
    .option(
      '--tag <tag>',
      `azure only: image tag for \${MODULES.x} in each cell's manifest (default ${AZURE_DEFAULTS.tag})`,
    )
    .addOption(
      new Option(
        '--manifest-target <where>',
        'azure only: where the device runs its modules: device = IoT Edge on Docker, modules reach each other by name; local = edgeperf emulator on this machine, loopback ports moved to free ones (default: local when the IoT Hub HostName has a port, as edgeperf emulator prints it, else device)',
      ).choices(['device', 'local']),
    )
    .option(
      '--deploy-timeout <secs>',
      `azure only: how long edgeAgent may take to apply each cell's manifest (image pulls included) and its modules to answer, s (default ${AZURE_DEFAULTS.deployTimeoutSecs})`,
      intInRange(1, 86_400),
    )
    .option('--out <file>', 'write the sweep as JSON (input of edgeperf report)')
    .option('--csv <file>', 'write one CSV row per cell')
    .option('--report <file>', 'write an HTML report with rate and latency against each swept setting')
    .option('--json', 'print the sweep as one JSON object on stdout', false)
    .action(
      action(async (flags: SweepFlags) => {
        withoutIncrementalMarking();
        withFewerOptimisations();
        const logger = createLogger('edgeperf');
        const runCell = cellRunner(flags, logger);
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
          const prefix = `sweep cell ${i + 1}/${grid.length}`;
          process.stderr.write(`${prefix}: ${JSON.stringify(params)}\n`);
          const summary = await runCell(cellFlags(params, flags), (line) =>
            process.stderr.write(`${prefix}: ${line}\n`),
          );
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

type CellRunner = (cell: LocalFlags, progress: (line: string) => void) => Promise<RunSummary>;

/**
 * Checks that the flags fit the target and returns how a cell runs there: before any cell, so a
 * misspelt sweep fails at once rather than after the first cells.
 * @throws EdgePerfError `E_ARGS` (exit 2): a flag of the other target, or a missing connection value.
 */
function cellRunner(flags: SweepFlags, logger: Logger): CellRunner {
  if (flags.target === 'local') {
    const given = Object.entries(AZURE_ONLY_FLAGS)
      .filter(([key]) => flags[key as keyof typeof AZURE_ONLY_FLAGS] !== undefined)
      .map(([, name]) => name);
    if (given.length > 0) {
      throw new EdgePerfError(
        'E_ARGS',
        `${given.join(', ')} ${given.length === 1 ? 'applies' : 'apply'} to --target azure only`,
        { exitCode: 2 },
      );
    }
    return (cell) => runLocal(cell, logger);
  }
  if (flags.linkRttMs !== undefined) {
    throw new EdgePerfError(
      'E_ARGS',
      '--link-rtt-ms applies to --target local only (in Azure the link to IoT Hub is the real one)',
      { exitCode: 2 },
    );
  }
  const connection = resolveHubConnection(flags, { eventHub: true });
  const registry = serviceRegistry(connection.iothubConnectionString, connection.caPem);
  // IoT Hub's HostName never has a port; the local runtime's does (its REST port is not 443).
  const localHub = (parseConnectionString(connection.iothubConnectionString).HostName ?? '').includes(':');
  const manifestTarget = flags.manifestTarget ?? (localHub ? 'local' : 'device');
  return async (cell, progress) => {
    const abort = new AbortController();
    const onSignal = () => abort.abort();
    process.once('SIGINT', onSignal);
    try {
      return await runAzureCell(cell, {
        connection,
        registry,
        images: {
          registry: flags.registry ?? AZURE_DEFAULTS.registry,
          tag: flags.tag ?? AZURE_DEFAULTS.tag,
        },
        manifestTarget,
        deployTimeoutSecs: flags.deployTimeout ?? AZURE_DEFAULTS.deployTimeoutSecs,
        progress,
        signal: abort.signal,
        logger,
      });
    } finally {
      process.removeListener('SIGINT', onSignal);
    }
  };
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
    ...(flags.linkRttMs === undefined ? {} : { linkRttMs: flags.linkRttMs }),
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
