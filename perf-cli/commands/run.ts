import { readFileSync } from 'node:fs';
import { type Command, Option } from 'commander';
import { createLogger, EdgePerfError } from '../../modules/common/index.js';
import { action } from '../cli-errors.js';
import { runMeasurement } from '../measure/measurement.js';
import { addMeasureFlags, type MeasureFlags } from './measure-flags.js';
import { emitResults, progressBar } from './measure-output.js';

interface RunFlags extends MeasureFlags {
  iothubConnectionString?: string;
  eventhubConnectionString?: string;
  eventhubName?: string;
  consumerGroup?: string;
  deviceId?: string;
  caFile?: string;
  metricsUrl?: string;
  maxUpstreamBatchSize?: string;
  transport: string;
  results: 'builtin' | 'asa';
  asaEventhubConnectionString?: string;
  asaConsumerGroup?: string;
}

/** `edgeperf run`: the measurement against Azure (or any runtime reachable by connection strings). */
export function registerRunCommand(program: Command): void {
  const cmd = program
    .command('run')
    .description(
      "run a measured burst against a deployed device: starts the simulator through IoT Hub and reads the built-in endpoint (or, with --results asa, the ASA job's rows)",
    )
    .option(
      '--iothub-connection-string <cs>',
      'IoT Hub service connection string (env EDGEPERF_IOTHUB_CONNECTION_STRING)',
    )
    .option(
      '--eventhub-connection-string <cs>',
      "IoT Hub's built-in Event Hub-compatible endpoint connection string (env EDGEPERF_EVENTHUB_CONNECTION_STRING)",
    )
    .option(
      '--eventhub-name <name>',
      'Event Hub-compatible name when the connection string has no EntityPath (env EDGEPERF_EVENTHUB_NAME)',
    )
    .option(
      '--consumer-group <name>',
      'consumer group on the built-in endpoint (env EDGEPERF_CONSUMER_GROUP)',
      '$Default',
    )
    .option('--device-id <id>', 'IoT Edge device id (env EDGEPERF_DEVICE_ID)')
    .option(
      '--ca-file <pem>',
      'CA the IoT Hub service API chains to, for a local runtime (env EDGEPERF_CA_FILE)',
    )
    .option(
      '--metrics-url <url>',
      "edgeHub's /metrics URL when reachable, for the queue series (env EDGEPERF_METRICS_URL)",
    )
    .option(
      '--max-upstream-batch-size <n>',
      'label only: the MaxUpstreamBatchSize deployed on the device',
      '10',
    )
    .option('--transport <name>', "label only: the translator's upstream transport", 'sdk-mqtt')
    .addOption(
      new Option(
        '--results <source>',
        "where the figures come from: 'builtin' reads every message from the built-in endpoint (exact); " +
          "'asa' reads the ASA job's per-window rows (few reads at any rate; latency percentiles are upper bounds)",
      )
        .choices(['builtin', 'asa'])
        .default('builtin'),
    )
    .option(
      '--asa-eventhub-connection-string <cs>',
      "with --results asa: the ASA job's output event hub, including EntityPath (env EDGEPERF_ASA_EVENTHUB_CONNECTION_STRING)",
    )
    .option(
      '--asa-consumer-group <name>',
      'with --results asa: consumer group on the ASA output event hub (env EDGEPERF_ASA_CONSUMER_GROUP; default $Default)',
    );
  addMeasureFlags(cmd, { burstLength: 20_000, targetRate: 2000 }).action(
    action(async (flags: RunFlags) => {
      const env = process.env;
      const need = (value: string | undefined, flag: string, name: string): string => {
        if (value) return value;
        throw new EdgePerfError('E_ARGS', `missing ${flag} (or env ${name})`, { exitCode: 2 });
      };
      const iothub = need(
        flags.iothubConnectionString ?? env.EDGEPERF_IOTHUB_CONNECTION_STRING,
        '--iothub-connection-string',
        'EDGEPERF_IOTHUB_CONNECTION_STRING',
      );
      const asa = flags.results === 'asa';
      // With asa the built-in endpoint is not read (see MeasurementOptions.results), so not required.
      const eventHub = asa
        ? undefined
        : need(
            flags.eventhubConnectionString ?? env.EDGEPERF_EVENTHUB_CONNECTION_STRING,
            '--eventhub-connection-string',
            'EDGEPERF_EVENTHUB_CONNECTION_STRING',
          );
      const asaOutput = asa
        ? need(
            flags.asaEventhubConnectionString ?? env.EDGEPERF_ASA_EVENTHUB_CONNECTION_STRING,
            '--asa-eventhub-connection-string',
            'EDGEPERF_ASA_EVENTHUB_CONNECTION_STRING',
          )
        : undefined;
      if (asaOutput !== undefined && !/(^|;)\s*EntityPath=[^;]+/i.test(asaOutput)) {
        throw new EdgePerfError(
          'E_ARGS',
          '--asa-eventhub-connection-string must include EntityPath=<the ASA output event hub>',
          { exitCode: 2 },
        );
      }
      const deviceId = need(flags.deviceId ?? env.EDGEPERF_DEVICE_ID, '--device-id', 'EDGEPERF_DEVICE_ID');
      const caFile = flags.caFile ?? env.EDGEPERF_CA_FILE;
      let caPem: string | undefined;
      if (caFile) {
        try {
          caPem = readFileSync(caFile, 'utf8');
        } catch (err) {
          throw new EdgePerfError('E_ARGS', `--ca-file ${caFile}: ${(err as Error).message}`, {
            exitCode: 2,
          });
        }
      }
      const eventHubName = flags.eventhubName ?? env.EDGEPERF_EVENTHUB_NAME;
      const metricsUrl = flags.metricsUrl ?? env.EDGEPERF_METRICS_URL;
      const abort = new AbortController();
      process.once('SIGINT', () => abort.abort());
      const summary = await runMeasurement({
        mode: 'run',
        iothubConnectionString: iothub,
        ...(eventHub ? { eventHubConnectionString: eventHub } : {}),
        ...(eventHubName ? { eventHubName } : {}),
        consumerGroup: flags.consumerGroup ?? env.EDGEPERF_CONSUMER_GROUP ?? '$Default',
        ...(asaOutput
          ? {
              results: {
                kind: 'asa' as const,
                connectionString: asaOutput,
                consumerGroup: flags.asaConsumerGroup ?? env.EDGEPERF_ASA_CONSUMER_GROUP ?? '$Default',
              },
            }
          : {}),
        deviceId,
        simulatorModule: flags.simulatorModule,
        translatorModule: flags.translatorModule,
        ...(caPem ? { caPem } : {}),
        ...(metricsUrl ? { metricsUrl } : {}),
        burst: {
          burstLength: flags.burstLength,
          bursts: flags.bursts,
          burstWaitMs: flags.burstWaitMs,
          targetRate: flags.targetRate,
          payloadLength: flags.payloadLength,
          format: flags.format,
          devices: flags.devices,
        },
        timeoutSecs: flags.timeout,
        config: {
          burstLength: flags.burstLength,
          bursts: flags.bursts,
          targetRate: flags.targetRate,
          payloadLength: flags.payloadLength,
          maxUpstreamBatchSize: Number(flags.maxUpstreamBatchSize ?? 10),
          appBatch: { maxMessages: 0, maxBytes: 0, maxWaitTimeInMs: 0 },
          transport: flags.transport,
          ...(Object.keys(flags.label).length > 0 ? { labels: flags.label } : {}),
        },
        onProgress: progressBar(!flags.json),
        signal: abort.signal,
        logger: createLogger('edgeperf'),
      });
      await emitResults(summary, flags);
    }),
  );
}
