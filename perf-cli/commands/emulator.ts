import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type Command, Option } from 'commander';
import { LocalEdgeRuntime, loadDeployment } from '../../emulator/index.js';
import { createLogger } from '../../modules/common/index.js';
import { action, intInRange, numberInRange } from '../cli-errors.js';
import { defaultManifestPath } from '../default-manifest.js';
import { handleControlMessages } from '../emulator-control.js';
import { withoutIncrementalMarking } from '../gc-tuning.js';

interface EmulatorFlags {
  manifest?: string;
  stateDir?: string;
  json: boolean;
  listenHost: string;
  mqttPort: number;
  amqpPort: number;
  metricsPort?: number;
  iothubPort: number;
  eventhubsPort: number;
  linkRttMs?: number;
  linkBandwidthMbps?: number;
  hubTier?: 'S1' | 'S2' | 'S3';
  hubUnits?: number;
  modules: boolean;
}

/** `edgeperf emulator`: keeps a local edge runtime up for development until SIGINT/SIGTERM. */
export function registerEmulatorCommand(program: Command): void {
  program
    .command('emulator')
    .description(
      'start the local edge runtime (edgeHub, IoT Hub, Event Hubs endpoint, agent) and keep it up until Ctrl-C',
    )
    .option('--manifest <file>', 'deployment manifest or template to run (default: the high-rate profile)')
    .option(
      '--state-dir <dir>',
      'certificates, identities, module logs and edgeHub storage (default: a new temp dir)',
    )
    .option('--json', 'print one JSON line with every connection string once ready', false)
    .option('--listen-host <addr>', 'address every server listens on', '127.0.0.1')
    .option('--mqtt-port <port>', 'edgeHub MQTT/TLS port (0 = any free)', intInRange(0, 65535), 8883)
    .option('--amqp-port <port>', 'edgeHub AMQP/TLS port (0 = any free)', intInRange(0, 65535), 5671)
    .option(
      '--metrics-port <port>',
      'edgeHub /metrics port (default: Metrics__Listener__Port, else 9600)',
      intInRange(0, 65535),
    )
    .option(
      '--iothub-port <port>',
      'IoT Hub service REST (HTTPS) port (0 = any free)',
      intInRange(0, 65535),
      0,
    )
    .option(
      '--eventhubs-port <port>',
      'Event Hubs-compatible AMQP port (0 = any free)',
      intInRange(0, 65535),
      5672,
    )
    .option(
      '--link-rtt-ms <ms>',
      'edgeHub → IoT Hub round trip per batch, ms (default: calibrated 15)',
      numberInRange(0, 60_000),
    )
    .option(
      '--link-bandwidth-mbps <mbps>',
      'edgeHub → IoT Hub bandwidth, Mbit/s (default 100)',
      numberInRange(0.001, 100_000),
    )
    .addOption(
      new Option('--hub-tier <tier>', 'IoT Hub tier whose D2C throttle applies (default: none)').choices([
        'S1',
        'S2',
        'S3',
      ]),
    )
    .option('--hub-units <n>', 'IoT Hub units of the tier', intInRange(1, 200))
    .option('--no-modules', 'register the manifest’s modules but do not start any')
    .action(
      action(async (flags: EmulatorFlags) => {
        withoutIncrementalMarking();
        const logger = createLogger('emulator');
        const manifest = resolve(flags.manifest ?? defaultManifestPath());
        const deployment = await loadDeployment(manifest);
        const stateDir = resolve(flags.stateDir ?? mkdtempSync(join(tmpdir(), 'edgeperf-')));
        const runtime = new LocalEdgeRuntime({
          deployment,
          stateDir,
          listenHost: flags.listenHost,
          ports: {
            mqtt: flags.mqttPort,
            amqp: flags.amqpPort,
            iothub: flags.iothubPort,
            eventHubs: flags.eventhubsPort,
            ...(flags.metricsPort === undefined ? {} : { metrics: flags.metricsPort }),
          },
          link: {
            ...(flags.linkRttMs === undefined ? {} : { rttMs: flags.linkRttMs }),
            ...(flags.linkBandwidthMbps === undefined ? {} : { bandwidthMbps: flags.linkBandwidthMbps }),
          },
          hub: {
            ...(flags.hubTier === undefined ? {} : { tier: flags.hubTier }),
            ...(flags.hubUnits === undefined ? {} : { units: flags.hubUnits }),
          },
          startModules: flags.modules,
          logger,
        });
        const ready = await runtime.start();
        const stop = new Promise<void>((res) => {
          process.once('SIGINT', () => res());
          process.once('SIGTERM', () => res());
          process.once('disconnect', () => res());
        });
        handleControlMessages(runtime, logger);
        if (flags.json) {
          process.stdout.write(`${JSON.stringify({ ...ready, stateDir, manifest })}\n`);
        } else {
          printReady(ready, stateDir);
        }
        await stop;
        logger.info('stopping the local edge runtime');
        await runtime.stop();
        process.exit(process.exitCode ?? 0);
      }),
    );
}

function printReady(ready: Awaited<ReturnType<LocalEdgeRuntime['start']>>, stateDir: string): void {
  const lines = [
    'local edge runtime ready (Ctrl-C to stop)',
    `  state dir     ${stateDir}`,
    `  CA file       ${ready.caFile}`,
    `  edgeHub       ${ready.edgeHub.mqtt}  ${ready.edgeHub.amqp}`,
    `  metrics       ${ready.edgeHub.metrics}`,
    `  IoT Hub       ${ready.iothub}`,
    `  Event Hubs    ${ready.eventHubs.builtin}`,
    '  modules:',
    ...Object.entries(ready.modules).map(([name, cs]) => `    ${name.padEnd(12)} ${cs}`),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}
