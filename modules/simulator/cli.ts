import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import {
  ConfigError,
  createLogger,
  EdgePerfError,
  type Logger,
  redactSecrets,
  toError,
} from '../common/index.js';
import { BurstEngine, type SimulatorStats } from './burst.js';
import { MqttPublisher } from './mqtt-publisher.js';
import {
  BURST_DEFAULTS,
  type BurstSettings,
  connectionSettingsFromEnv,
  DEFAULT_BROKER_URL,
  DEFAULT_MAX_IN_FLIGHT,
  parseBurstSettings,
} from './settings.js';

/** What the standalone run prints: one JSON line on stdout. */
export interface StandaloneSummary extends SimulatorStats {
  readonly broker: string;
  readonly topic: string;
  /** Messages acknowledged over the summed burst durations (waits excluded), msg/s. */
  readonly overallRatePerSec: number;
}

/** Options of {@link runStandalone}. */
export interface StandaloneOptions {
  readonly settings: BurstSettings;
  readonly brokerUrl: string;
  readonly topic?: string;
  readonly maxInFlight: number;
  readonly username?: string;
  readonly password?: string;
  readonly logger: Logger;
  /** Stops the run early (SIGINT/SIGTERM). */
  readonly signal?: AbortSignal;
}

/**
 * Runs the bursts against a broker with no edgeHub (tests, benchmarks) and returns the summary.
 * @throws EdgePerfError `E_SOURCE_BROKER` when the broker cannot be reached.
 */
export async function runStandalone(o: StandaloneOptions): Promise<StandaloneSummary> {
  const publisher = new MqttPublisher({
    brokerUrl: o.brokerUrl,
    logger: o.logger,
    ...(o.username === undefined ? {} : { username: o.username }),
    ...(o.password === undefined ? {} : { password: o.password }),
  });
  await publisher.start({ waitForBroker: true });
  try {
    const engine = new BurstEngine({
      publisher,
      maxInFlight: o.maxInFlight,
      ...(o.topic === undefined ? {} : { topic: o.topic }),
      onError: (err) => o.logger.warn({ err: err.message }, 'publish failed'),
      onBurstEnd: (r) =>
        o.logger.info(
          { burst: r.burst, messages: r.acknowledged, ratePerSec: r.ratePerSec, violations: r.violations },
          'burst done',
        ),
    });
    const run = engine.start(o.settings);
    const onAbort = () => void engine.stop();
    o.signal?.addEventListener('abort', onAbort, { once: true });
    const bursts = await run.done;
    o.signal?.removeEventListener('abort', onAbort);
    const stats = engine.stats();
    const totalMs = bursts.reduce((a, b) => a + b.durationMs, 0);
    return {
      ...stats,
      broker: redactSecrets(o.brokerUrl),
      topic: o.topic ?? '(format default)',
      overallRatePerSec: totalMs > 0 ? Math.round((stats.messagesSent / (totalMs / 1000)) * 10) / 10 : 0,
    };
  } finally {
    await publisher.stop();
  }
}

/** Runs the IoT Edge module until SIGTERM/SIGINT: edgeHub from the environment, broker from env vars. */
export async function runModule(logger: Logger, signal: AbortSignal): Promise<void> {
  // Loaded here so standalone runs do not pay for the IoT SDK's start-up (~1 s on a busy box).
  const { SimulatorController, SimulatorModule } = await import('./module.js');
  const conn = connectionSettingsFromEnv();
  const publisher = new MqttPublisher({
    brokerUrl: conn.brokerUrl,
    logger,
    ...(conn.username === undefined ? {} : { username: conn.username }),
    ...(conn.password === undefined ? {} : { password: conn.password }),
  });
  // Wired in one place: the controller reports through the module, the engine through the controller.
  let module: InstanceType<typeof SimulatorModule> | undefined;
  let controller: InstanceType<typeof SimulatorController> | undefined;
  const engine = new BurstEngine({
    publisher,
    maxInFlight: conn.maxInFlight,
    ...(conn.topic === undefined ? {} : { topic: conn.topic }),
    onError: (err) => logger.warn({ err: err.message }, 'publish failed'),
    onBurstEnd: (r) => controller?.onBurstEnd(r),
  });
  controller = new SimulatorController({ engine, logger, report: (patch) => module?.report(patch) });
  module = new SimulatorModule({ controller, logger });
  await publisher.start({ waitForBroker: false });
  try {
    await module.start();
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      else signal.addEventListener('abort', () => resolve(), { once: true });
    });
    logger.info('stopping');
  } finally {
    await engine.stop();
    await module
      .stop()
      .catch((err: unknown) => logger.warn({ err: toError(err).message }, 'edgeHub close failed'));
    await publisher.stop();
  }
}

function number(flag: string): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n))
      throw new InvalidArgumentError(`${flag} must be a number`);
    return n;
  };
}

interface CliFlags {
  standalone?: boolean;
  broker: string;
  topic?: string;
  sessionId?: string;
  burstLength: number;
  burstNumber: number;
  burstWaitMs: number;
  targetRate: number;
  payloadLength: number;
  format: string;
  devices: number;
  lateToleranceMs: number;
  maxInFlight: number;
}

const kebab = (camel: string) => camel.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/**
 * The simulator's command line. Without `--standalone` it runs as an IoT Edge module
 * (edgeHub from `EdgeHubConnectionString`/IOTEDGE_* env vars, broker from `SourceBrokerUrl`).
 * With `--standalone` it runs the bursts once and prints one JSON summary line on stdout.
 * Exit codes: 0 all acknowledged, 3 some messages not acknowledged, 2 bad arguments, 1 other.
 */
export function buildSimulatorProgram(): Command {
  const program = new Command('simulator')
    .description('edgeperf burst source: publishes paced telemetry bursts to the source MQTT broker')
    .option('--standalone', 'run the bursts without edgeHub and print one JSON stats line')
    .addOption(
      new Option('--broker <url>', 'source broker URL').env('SourceBrokerUrl').default(DEFAULT_BROKER_URL),
    )
    .addOption(
      new Option(
        '--topic <template>',
        'topic template; {device} and {session} are replaced (default: sim/{device}/telemetry, or spBv1.0/edgeperf/DDATA/simulator/{device} for sparkplug)',
      ).env('SimulatorTopic'),
    )
    .option('--session-id <id>', 'session id carried as perf.sid (default: random UUID)')
    .option('--burst-length <n>', 'messages per burst', number('--burst-length'), BURST_DEFAULTS.burstLength)
    .option('--burst-number <n>', 'bursts in the run', number('--burst-number'), BURST_DEFAULTS.burstNumber)
    .option(
      '--burst-wait-ms <ms>',
      'pause between bursts, milliseconds',
      number('--burst-wait-ms'),
      BURST_DEFAULTS.burstWaitMs,
    )
    .option(
      '--target-rate <msgPerSec>',
      'target rate in messages per second; 0 = unpaced',
      number('--target-rate'),
      BURST_DEFAULTS.targetRate,
    )
    .option(
      '--payload-length <bytes>',
      'size of each message body in bytes (padded with random text)',
      number('--payload-length'),
      BURST_DEFAULTS.payloadLength,
    )
    .addOption(
      new Option('--format <format>', 'body format')
        .choices(['json', 'sparkplug'])
        .default(BURST_DEFAULTS.format),
    )
    .option(
      '--devices <n>',
      'simulated devices, messages round-robin',
      number('--devices'),
      BURST_DEFAULTS.devices,
    )
    .option(
      '--late-tolerance-ms <ms>',
      'a message sent later than this after its due time is a timing violation, milliseconds',
      number('--late-tolerance-ms'),
      BURST_DEFAULTS.lateToleranceMs,
    )
    .addOption(
      new Option('--max-in-flight <n>', 'publishes awaiting PUBACK at once')
        .argParser(number('--max-in-flight'))
        .env('SimulatorMaxInFlight')
        .default(DEFAULT_MAX_IN_FLIGHT),
    )
    .addHelpText(
      'after',
      '\nBroker credentials come from env SourceBrokerUsername / SourceBrokerPassword (never flags).\n' +
        'Without --standalone the process is an IoT Edge module: direct methods start, stop, getStats;\n' +
        'twin desired "config" with autoStart.',
    )
    .action(async (flags: CliFlags) => {
      await runFromFlags(flags);
    });
  return program;
}

async function runFromFlags(flags: CliFlags): Promise<void> {
  const logger = createLogger('simulator');
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    if (!flags.standalone) {
      await runModule(logger, stop.signal);
      return;
    }
    const settings = settingsFromFlags(flags);
    const maxInFlight = flags.maxInFlight;
    if (!Number.isInteger(maxInFlight) || maxInFlight < 1 || maxInFlight > 65_535) {
      throw new EdgePerfError('E_CONFIG', '--max-in-flight: must be an integer from 1 to 65535', {
        exitCode: 2,
      });
    }
    const summary = await runStandalone({
      settings,
      brokerUrl: flags.broker,
      maxInFlight,
      logger,
      signal: stop.signal,
      ...(flags.topic === undefined ? {} : { topic: flags.topic }),
      ...(process.env.SourceBrokerUsername ? { username: process.env.SourceBrokerUsername } : {}),
      ...(process.env.SourceBrokerPassword ? { password: process.env.SourceBrokerPassword } : {}),
    });
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    const total = settings.burstLength * settings.burstNumber;
    if (summary.messagesSent < total) process.exitCode = 3;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function settingsFromFlags(flags: CliFlags): BurstSettings {
  const input = {
    ...(flags.sessionId === undefined ? {} : { sessionId: flags.sessionId }),
    burstLength: flags.burstLength,
    burstNumber: flags.burstNumber,
    burstWaitMs: flags.burstWaitMs,
    targetRate: flags.targetRate,
    payloadLength: flags.payloadLength,
    format: flags.format,
    devices: flags.devices,
    lateToleranceMs: flags.lateToleranceMs,
  };
  try {
    return parseBurstSettings(input, 'flag');
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    // Name the flag the user typed, not the settings key.
    const issues = err.issues.map((i) => ({ ...i, field: `--${kebab(i.field.replace(/^flag\./, ''))}` }));
    throw new ConfigError('flags', issues);
  }
}

/**
 * The process entry point: parses argv, runs, maps errors to one stderr line and an exit code.
 * Never throws.
 */
export async function main(argv: readonly string[] = process.argv): Promise<void> {
  try {
    await buildSimulatorProgram()
      .exitOverride()
      .parseAsync([...argv]);
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander already printed its message (or the help).
      process.exitCode = err.code === 'commander.helpDisplayed' || err.code === 'commander.version' ? 0 : 2;
      return;
    }
    const e = toError(err);
    process.stderr.write(`simulator: ${redactSecrets(e.message)}\n`);
    process.exitCode = e instanceof EdgePerfError ? e.exitCode : 1;
  }
}
