import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { RuntimeReadyInfo } from '../../emulator/index.js';
import { createLogger, EdgePerfError, type Logger } from '../../modules/common/index.js';
import { action, intInRange, numberInRange } from '../cli-errors.js';
import { withoutIncrementalMarking } from '../gc-tuning.js';
import { withFewerOptimisations } from '../jit-tuning.js';
import { freePort, freePorts, relocatePorts } from '../local-ports.js';
import { LocalRuntimeProcess } from '../local-runtime-process.js';
import type { DeploymentManifest } from '../manifest/manifest-types.js';
import { runMeasurement } from '../measure/measurement.js';
import { waitForModules } from '../module-readiness.js';
import { MosquittoBroker } from '../mosquitto-broker.js';
import { buildRunManifest, runConfigSummary, translatorModules } from '../run-manifest.js';
import { addMeasureFlags, burstOf, type MeasureFlags } from './measure-flags.js';
import { emitResults, progressBar } from './measure-output.js';

/** A fault to inject during the burst. */
export type FaultSpec =
  | { readonly kind: 'kill-translator'; readonly atSecs: number }
  | { readonly kind: 'kill-runtime'; readonly atSecs: number }
  | { readonly kind: 'restart-source-broker'; readonly atSecs: number }
  | { readonly kind: 'outage'; readonly atSecs: number; readonly durationSecs: number };

/** Parses `kill-translator:AT_S`, `kill-runtime:AT_S`, `outage:AT_S:DUR_S` (repeatable). */
export function parseFault(value: string, previous: FaultSpec[] = []): FaultSpec[] {
  const [kind, at, dur, ...rest] = value.split(':');
  const num = (s: string | undefined) =>
    s !== undefined && /^\d+(\.\d+)?$/.test(s) ? Number(s) : Number.NaN;
  const atSecs = num(at);
  if (rest.length > 0 || !Number.isFinite(atSecs)) {
    throw new InvalidArgumentError(
      'must be kill-translator:AT_S, kill-runtime:AT_S, restart-source-broker:AT_S or outage:AT_S:DURATION_S (seconds after the burst starts)',
    );
  }
  if (kind === 'kill-translator' || kind === 'kill-runtime' || kind === 'restart-source-broker') {
    if (dur !== undefined) throw new InvalidArgumentError(`${kind} takes one time: ${kind}:AT_S`);
    return [...previous, { kind, atSecs }];
  }
  if (kind === 'outage') {
    const durationSecs = num(dur);
    if (!Number.isFinite(durationSecs) || durationSecs <= 0)
      throw new InvalidArgumentError('outage needs a duration: outage:AT_S:DURATION_S');
    return [...previous, { kind, atSecs, durationSecs }];
  }
  throw new InvalidArgumentError(
    `unknown fault "${kind}"; allowed: kill-translator, kill-runtime, restart-source-broker, outage`,
  );
}

export interface LocalFlags extends MeasureFlags {
  manifest?: string;
  profile: string;
  set: string[];
  stateDir?: string;
  linkRttMs?: number;
  linkBandwidthMbps?: number;
  hubTier?: 'S1' | 'S2' | 'S3';
  hubUnits?: number;
  outage?: FaultSpec[];
  fault: FaultSpec[];
  maxUpstreamBatchSize?: number;
  transport?: string;
  appBatchMaxMessages?: number;
  appBatchMaxBytes?: number;
  appBatchMaxWaitMs?: number;
  appBatch: boolean;
  keepState: boolean;
  sourceBroker?: 'embedded' | 'mosquitto';
}

/** `edgeperf local`: starts the local runtime, then measures exactly as `edgeperf run` does against Azure. */
export function registerLocalCommand(program: Command): void {
  const cmd = program
    .command('local')
    .description(
      'run a measured burst end to end on this machine: local edge runtime, translator, simulator, IoT Hub, Event Hubs',
    )
    .option('--manifest <file>', 'deployment manifest or template (default: generated from --profile)')
    .option(
      '--profile <name>',
      'profile for the generated manifest: baseline, high-rate, offline-tolerant, multi-module',
      'high-rate',
    )
    .option(
      '--set <assignment>',
      'change the manifest, TARGET.PATH=VALUE (repeatable), e.g. $edgeHub.env.MaxUpstreamBatchSize=50',
      (v: string, p: string[]) => [...p, v],
      [],
    )
    .option(
      '--max-upstream-batch-size <n>',
      "edgeHub's MaxUpstreamBatchSize (default: the manifest's)",
      intInRange(1, 10_000),
    )
    .addOption(
      new Option('--transport <name>', "translator's upstream transport (default: the manifest's)").choices([
        'sdk-mqtt',
        'sdk-amqp',
        'raw-mqtt',
      ]),
    )
    .option(
      '--app-batch-max-messages <n>',
      'translator batch: max records per upstream message',
      intInRange(1, 100_000),
    )
    .option(
      '--app-batch-max-bytes <bytes>',
      'translator batch: max bytes per upstream message (≤ 262144)',
      intInRange(1024, 262_144),
    )
    .option(
      '--app-batch-max-wait-ms <ms>',
      'translator batch: linger before sending a partial batch, ms',
      intInRange(0, 60_000),
    )
    .option(
      '--no-app-batch',
      'turn application batching off: one upstream message per source message (the naive behaviour)',
    )
    .option(
      '--link-rtt-ms <ms>',
      'edgeHub → IoT Hub round trip per batch, ms (default: calibrated 14)',
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
    .option('--hub-units <n>', 'IoT Hub units of the tier (default 1)', intInRange(1, 200))
    .option(
      '--outage <at:duration>',
      'uplink outage AT_S:DURATION_S seconds after the burst starts (repeatable)',
      (v: string, p: FaultSpec[] = []) => parseFault(`outage:${v}`, p),
    )
    .option(
      '--fault <spec>',
      'inject kill-translator:AT_S, kill-runtime:AT_S, restart-source-broker:AT_S or outage:AT_S:DUR_S (repeatable)',
      parseFault,
      [],
    )
    .addOption(
      new Option(
        '--source-broker <kind>',
        "field broker: the translator's embedded one, or a Mosquitto that edgeperf starts (needed for restart-source-broker)",
      )
        .choices(['embedded', 'mosquitto'])
        .default('embedded'),
    )
    .option(
      '--state-dir <dir>',
      'runtime state (certificates, storage, module logs); default: a new temp dir',
    )
    .option('--keep-state', 'keep the state dir after the run', false);
  addMeasureFlags(cmd, { burstLength: 10_000, targetRate: 2000 }).action(
    action(async (flags: LocalFlags) => {
      withoutIncrementalMarking();
      withFewerOptimisations();
      const logger = createLogger('edgeperf');
      const summary = await runLocal(flags, logger);
      await emitResults(summary, flags);
    }),
  );
}

/** Runs one local measurement (a fresh runtime per call); used by `local` and `sweep`. */
export async function runLocal(flags: LocalFlags, logger: Logger) {
  const stateDir = resolve(flags.stateDir ?? mkdtempSync(join(tmpdir(), 'edgeperf-local-')));
  const manifest = buildRunManifest(flags);
  const reserved = await freePorts(8);
  relocatePorts(manifest as unknown as Record<string, unknown>, () => reserved.shift() ?? 0);
  const wantsBrokerRestart = flags.fault.some((f) => f.kind === 'restart-source-broker');
  if (wantsBrokerRestart && flags.sourceBroker !== 'mosquitto') {
    throw new EdgePerfError('E_ARGS', '--fault restart-source-broker needs --source-broker mosquitto', {
      exitCode: 2,
    });
  }
  let broker: MosquittoBroker | undefined;
  if (flags.sourceBroker === 'mosquitto') {
    broker = new MosquittoBroker(join(stateDir, 'mosquitto'), reserved.shift() ?? (await freePort()));
    useExternalBroker(manifest, broker.url);
    await broker.start();
  }
  const manifestFile = join(stateDir, 'deployment.json');
  writeFileSync(manifestFile, JSON.stringify(manifest, null, 2));
  // The runtime binds its own servers on port 0 (no window in which another process can take a
  // port picked for it); a restart (kill-runtime drill) reuses the ports it got, because the Event
  // Hubs consumer and the fault driver stay connected to them.
  const args = (ports: RuntimePorts) => [
    '--manifest',
    manifestFile,
    '--state-dir',
    stateDir,
    '--mqtt-port',
    String(ports.mqtt),
    '--amqp-port',
    String(ports.amqp),
    '--metrics-port',
    String(ports.metrics),
    '--eventhubs-port',
    String(ports.eventhubs),
    '--iothub-port',
    '0',
    ...(flags.linkRttMs === undefined ? [] : ['--link-rtt-ms', String(flags.linkRttMs)]),
    ...(flags.linkBandwidthMbps === undefined
      ? []
      : ['--link-bandwidth-mbps', String(flags.linkBandwidthMbps)]),
    ...(flags.hubTier === undefined ? [] : ['--hub-tier', flags.hubTier]),
    ...(flags.hubUnits === undefined ? [] : ['--hub-units', String(flags.hubUnits)]),
  ];
  const runtime = new LocalRuntimeProcess({
    args: args({ mqtt: 0, amqp: 0, metrics: 0, eventhubs: 0 }),
    logger,
  });
  const abort = new AbortController();
  const onSignal = () => abort.abort();
  process.once('SIGINT', onSignal);
  try {
    let ready = await runtime.start();
    runtime.args = args(portsOf(ready));
    const caPem = readFileSync(ready.caFile, 'utf8');
    const translators = translatorModules(manifest, flags.translatorModule);
    await waitForModules({
      iothubConnectionString: ready.iothub,
      caPem,
      deviceId: ready.edgeDeviceId,
      modules: [flags.simulatorModule, ...translators],
      readers: new Set(translators),
      logger,
    });
    const restartListeners: (() => void)[] = [];
    const faults = [...flags.fault, ...(flags.outage ?? [])].map((f) => ({
      name: f.kind === 'outage' ? `outage ${f.durationSecs}s` : f.kind,
      atSecs: f.atSecs,
      run: async (): Promise<string> => {
        if (f.kind === 'kill-translator')
          return (await runtime.control({ op: 'kill-module', module: flags.translatorModule }))
            .detail as string;
        if (f.kind === 'outage')
          return (await runtime.control({ op: 'outage', durationMs: f.durationSecs * 1000 }))
            .detail as string;
        if (f.kind === 'restart-source-broker')
          return (await broker?.restart()) ?? 'no source broker to restart';
        const t0 = Date.now();
        runtime.kill();
        ready = await runtime.start();
        await waitForModules({
          iothubConnectionString: ready.iothub,
          caPem,
          deviceId: ready.edgeDeviceId,
          modules: [flags.translatorModule],
          logger,
        });
        for (const l of restartListeners) l();
        return `runtime SIGKILLed and restarted in ${((Date.now() - t0) / 1000).toFixed(1)} s`;
      },
    }));
    return await runMeasurement({
      mode: 'local',
      iothubConnectionString: ready.iothub,
      eventHubConnectionString: ready.eventHubs.builtin,
      consumerGroup: '$Default',
      deviceId: ready.edgeDeviceId,
      simulatorModule: flags.simulatorModule,
      translatorModule: flags.translatorModule,
      moreTranslatorModules: translators.slice(1),
      caPem,
      metricsUrl: ready.edgeHub.metrics,
      burst: burstOf(flags),
      timeoutSecs: flags.timeout,
      config: runConfigSummary(manifest, flags),
      onProgress: progressBar(!flags.json),
      faults,
      signal: abort.signal,
      logger,
      resubscribe: { on: (l) => restartListeners.push(l) },
    });
  } finally {
    process.removeListener('SIGINT', onSignal);
    await runtime.stop();
    await broker?.stop();
    if (!flags.keepState && flags.stateDir === undefined) {
      const { rmSync } = await import('node:fs');
      rmSync(stateDir, { recursive: true, force: true });
    }
  }
}

/** The runtime's four server ports. */
interface RuntimePorts {
  readonly mqtt: number;
  readonly amqp: number;
  readonly metrics: number;
  readonly eventhubs: number;
}

/** The ports a started runtime bound, read back from its ready line. */
export function portsOf(ready: RuntimeReadyInfo): RuntimePorts {
  const port = (url: string, field: string): number => {
    const n = Number(new URL(url).port);
    if (!Number.isInteger(n) || n <= 0)
      throw new EdgePerfError('E_RUNTIME', `ready line: no port in ${field}`);
    return n;
  };
  const endpoint = /Endpoint=([^;]+)/.exec(ready.eventHubs.builtin)?.[1] ?? '';
  return {
    mqtt: port(ready.edgeHub.mqtt, 'edgeHub.mqtt'),
    amqp: port(ready.edgeHub.amqp, 'edgeHub.amqp'),
    metrics: port(ready.edgeHub.metrics, 'edgeHub.metrics'),
    eventhubs: port(endpoint, 'eventHubs.builtin'),
  };
}

/** Points every module at an external field broker instead of the translator's embedded one. */
function useExternalBroker(manifest: DeploymentManifest, url: string): void {
  const agent = manifest.modulesContent.$edgeAgent['properties.desired'] as unknown as {
    modules: Record<string, { env?: Record<string, { value: unknown }> }>;
  };
  for (const m of Object.values(agent.modules)) {
    const env = m.env ?? {};
    if (env.EmbeddedBrokerEnabled !== undefined) env.EmbeddedBrokerEnabled = { value: 'false' };
    if (env.EmbeddedBrokerEnabled !== undefined || env.SourceUrl !== undefined)
      env.SourceUrl = { value: url };
    if (env.SourceBrokerUrl !== undefined) env.SourceBrokerUrl = { value: url };
    m.env = env;
  }
}
