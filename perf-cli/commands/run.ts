import { type Command, Option } from 'commander';
import { createLogger, EdgePerfError } from '../../modules/common/index.js';
import { action } from '../cli-errors.js';
import { withoutIncrementalMarking } from '../gc-tuning.js';
import { withFewerOptimisations } from '../jit-tuning.js';
import { runMeasurement } from '../measure/measurement.js';
import { waitForModules } from '../module-readiness.js';
import {
  addHubConnectionFlags,
  type HubConnectionFlags,
  requireValues,
  resolveHubConnection,
} from './hub-connection.js';
import { addMeasureFlags, burstOf, type MeasureFlags } from './measure-flags.js';
import { emitResults, progressBar } from './measure-output.js';

interface RunFlags extends MeasureFlags, HubConnectionFlags {
  maxUpstreamBatchSize?: string;
  transport: string;
  results: 'builtin' | 'asa';
  asaEventhubConnectionString?: string;
  asaConsumerGroup?: string;
}

/** `edgeperf run`: the measurement against Azure (or any runtime reachable by connection strings). */
export function registerRunCommand(program: Command): void {
  const cmd = addHubConnectionFlags(
    program
      .command('run')
      .description(
        "run a measured burst against a deployed device: waits (up to 60 s) until the simulator and translator answer getStats and the translator reads its source, starts the simulator through IoT Hub and reads the built-in endpoint (or, with --results asa, the ASA job's rows)",
      ),
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
      withoutIncrementalMarking();
      withFewerOptimisations();
      const env = process.env;
      const asa = flags.results === 'asa';
      // With asa the built-in endpoint is not read (see MeasurementOptions.results), so not required.
      const hub = resolveHubConnection(flags, { eventHub: !asa });
      const [asaOutput] = asa
        ? requireValues([
            {
              value: flags.asaEventhubConnectionString ?? env.EDGEPERF_ASA_EVENTHUB_CONNECTION_STRING,
              flag: '--asa-eventhub-connection-string',
              env: 'EDGEPERF_ASA_EVENTHUB_CONNECTION_STRING',
            },
          ])
        : [];
      if (asaOutput !== undefined && !/(^|;)\s*EntityPath=[^;]+/i.test(asaOutput)) {
        throw new EdgePerfError(
          'E_ARGS',
          '--asa-eventhub-connection-string must include EntityPath=<the ASA output event hub>',
          { exitCode: 2 },
        );
      }
      const abort = new AbortController();
      process.once('SIGINT', () => abort.abort());
      const logger = createLogger('edgeperf');
      // A burst started before the translator has subscribed to its source is lost at the broker
      // (seen as a run with no messages when the runtime had only just started): wait, as `local` does.
      await waitForModules({
        iothubConnectionString: hub.iothubConnectionString,
        ...(hub.caPem === undefined ? {} : { caPem: hub.caPem }),
        deviceId: hub.deviceId,
        modules: [flags.simulatorModule, flags.translatorModule],
        readers: new Set([flags.translatorModule]),
        logger,
      });
      const summary = await runMeasurement({
        mode: 'run',
        ...hub,
        ...(asaOutput
          ? {
              results: {
                kind: 'asa' as const,
                connectionString: asaOutput,
                consumerGroup: flags.asaConsumerGroup ?? env.EDGEPERF_ASA_CONSUMER_GROUP ?? '$Default',
              },
            }
          : {}),
        simulatorModule: flags.simulatorModule,
        translatorModule: flags.translatorModule,
        burst: burstOf(flags),
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
        logger,
      });
      await emitResults(summary, flags);
    }),
  );
}
