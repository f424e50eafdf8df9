import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Client } from 'azure-iothub';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { createLocalHubAgent, resolvePlaceholders, useLocalHubAgent } from '../../emulator/index.js';
import { createLogger, EdgePerfError, type Logger } from '../../modules/common/index.js';
import type { RunConfigSummary } from '../analysis/summary-types.js';
import { action, intInRange, numberInRange } from '../cli-errors.js';
import { freePort, relocatePorts } from '../local-ports.js';
import { LocalRuntimeProcess } from '../local-runtime-process.js';
import { generateManifest } from '../manifest/index.js';
import type { DeploymentManifest } from '../manifest/manifest-types.js';
import { applyAssignments, parseSetAssignment } from '../manifest/set-path.js';
import { runMeasurement } from '../measure/measurement.js';
import { MosquittoBroker } from '../mosquitto-broker.js';
import { addMeasureFlags, type MeasureFlags } from './measure-flags.js';
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
      const logger = createLogger('edgeperf');
      const summary = await runLocal(flags, logger);
      await emitResults(summary, flags);
    }),
  );
}

/** Runs one local measurement (a fresh runtime per call); used by `local` and `sweep`. */
export async function runLocal(flags: LocalFlags, logger: Logger) {
  const stateDir = resolve(flags.stateDir ?? mkdtempSync(join(tmpdir(), 'edgeperf-local-')));
  const manifest = buildManifest(flags);
  const ports = {
    mqtt: await freePort(),
    amqp: await freePort(),
    metrics: await freePort(),
    eventhubs: await freePort(),
  };
  const used = new Set(Object.values(ports));
  const reserved: number[] = [];
  for (let i = 0; i < 8; i++) {
    let p = await freePort();
    while (used.has(p)) p = await freePort();
    used.add(p);
    reserved.push(p);
  }
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
  const args = [
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
  const runtime = new LocalRuntimeProcess({ args, logger });
  const abort = new AbortController();
  const onSignal = () => abort.abort();
  process.once('SIGINT', onSignal);
  try {
    let ready = await runtime.start();
    const caPem = readFileSync(ready.caFile, 'utf8');
    await waitForModules(
      ready.iothub,
      caPem,
      ready.edgeDeviceId,
      [flags.simulatorModule, ...translatorModules(manifest, flags.translatorModule)],
      logger,
      new Set(translatorModules(manifest, flags.translatorModule)),
    );
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
        await waitForModules(ready.iothub, caPem, ready.edgeDeviceId, [flags.translatorModule], logger);
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
      moreTranslatorModules: translatorModules(manifest, flags.translatorModule).slice(1),
      caPem,
      metricsUrl: ready.edgeHub.metrics,
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
      config: configSummary(manifest, flags),
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

/** The translator instances of a manifest: the named one first, then every module with translator env. */
export function translatorModules(manifest: DeploymentManifest, first: string): string[] {
  const agent = manifest.modulesContent.$edgeAgent['properties.desired'] as unknown as {
    modules: Record<string, { env?: Record<string, unknown> }>;
  };
  const others = Object.entries(agent.modules)
    .filter(
      ([name, m]) =>
        name !== first && (m.env?.BatchEnabled !== undefined || m.env?.UpstreamTransport !== undefined),
    )
    .map(([name]) => name);
  return agent.modules[first] === undefined ? others : [first, ...others];
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

/** The manifest to run: a file, or a generated profile; then the flag shortcuts as --set assignments. */
function buildManifest(flags: LocalFlags): DeploymentManifest {
  let manifest: DeploymentManifest;
  if (flags.manifest) {
    try {
      manifest = JSON.parse(resolvePlaceholders(readFileSync(flags.manifest, 'utf8'))) as DeploymentManifest;
    } catch (err) {
      throw new EdgePerfError('E_MANIFEST', `--manifest ${flags.manifest}: ${(err as Error).message}`, {
        exitCode: 2,
      });
    }
  } else {
    manifest = generateManifest({
      profile: flags.profile as 'high-rate',
      ratePerSec: Math.max(1, flags.targetRate),
      payloadLength: flags.payloadLength,
      target: 'local',
    });
  }
  const sets = [...flags.set];
  if (flags.maxUpstreamBatchSize !== undefined)
    sets.push(`$edgeHub.env.MaxUpstreamBatchSize=${flags.maxUpstreamBatchSize}`);
  // Translator flags apply to every instance, so a multi-module run compares like with like.
  for (const t of translatorModules(manifest, flags.translatorModule)) {
    if (flags.transport !== undefined) sets.push(`${t}.env.UpstreamTransport=${flags.transport}`);
    if (!flags.appBatch) sets.push(`${t}.env.BatchEnabled=false`);
    if (flags.appBatchMaxMessages !== undefined)
      sets.push(`${t}.env.BatchMaxMessages=${flags.appBatchMaxMessages}`);
    if (flags.appBatchMaxBytes !== undefined) sets.push(`${t}.env.BatchMaxBytes=${flags.appBatchMaxBytes}`);
    if (flags.appBatchMaxWaitMs !== undefined)
      sets.push(`${t}.env.BatchMaxWaitTimeInMs=${flags.appBatchMaxWaitMs}`);
  }
  applyAssignments(manifest, sets.map(parseSetAssignment));
  return manifest;
}

function configSummary(manifest: DeploymentManifest, flags: LocalFlags): RunConfigSummary {
  const agent = manifest.modulesContent.$edgeAgent['properties.desired'] as unknown as {
    systemModules: { edgeHub: { env?: Record<string, { value: unknown }> } };
    modules: Record<string, { env?: Record<string, { value: unknown }> }>;
  };
  const hubEnv = agent.systemModules.edgeHub.env ?? {};
  const tEnv = agent.modules[flags.translatorModule]?.env ?? {};
  const v = (env: Record<string, { value: unknown }>, k: string) =>
    env[k] === undefined ? undefined : String(env[k]?.value);
  const batching = v(tEnv, 'BatchEnabled') !== 'false';
  const translators = Object.values(agent.modules).filter(
    (m) => m.env?.UpstreamTransport !== undefined || m.env?.BatchEnabled !== undefined,
  ).length;
  return {
    burstLength: flags.burstLength,
    bursts: flags.bursts,
    targetRate: flags.targetRate,
    payloadLength: flags.payloadLength,
    maxUpstreamBatchSize: Number(v(hubEnv, 'MaxUpstreamBatchSize') ?? 10),
    appBatch: batching
      ? {
          maxMessages: Number(v(tEnv, 'BatchMaxMessages') ?? 500),
          maxBytes: Number(v(tEnv, 'BatchMaxBytes') ?? 262_144),
          maxWaitTimeInMs: Number(v(tEnv, 'BatchMaxWaitTimeInMs') ?? 50),
        }
      : { maxMessages: 0, maxBytes: 0, maxWaitTimeInMs: 0 },
    transport: v(tEnv, 'UpstreamTransport') ?? 'sdk-mqtt',
    modules: Math.max(1, translators),
    ...(Object.keys(flags.label).length > 0 ? { labels: flags.label } : {}),
  };
}

/** Waits until each module answers `getStats` through the service API (they connect after start-up). */
async function waitForModules(
  iothub: string,
  caPem: string,
  deviceId: string,
  modules: readonly string[],
  logger: Logger,
  /** Modules that must also report a connected source (translators). */
  readers: ReadonlySet<string> = new Set(),
): Promise<void> {
  const client = useLocalHubAgent(Client.fromConnectionString(iothub), createLocalHubAgent({ caPem }));
  const deadline = Date.now() + 60_000;
  try {
    for (const m of modules) {
      for (;;) {
        try {
          const res = await client.invokeDeviceMethod(deviceId, m, {
            methodName: 'getStats',
            payload: {},
            responseTimeoutInSeconds: 5,
          });
          // A translator answers before its source is subscribed; messages published before that
          // would have no subscriber (found as 15 lost in a three-module run), so wait for it.
          const stats = (res.result as { payload?: { source?: { connected?: boolean }; state?: string } })
            .payload;
          const reading = stats?.source?.connected === true;
          if (!readers.has(m) || reading) break;
          throw new Error(`${m} is not reading its source yet`);
        } catch (err) {
          if (Date.now() > deadline) {
            throw new EdgePerfError(
              'E_MODULE',
              `module ${m} did not come up within 60 s: ${(err as Error).message}`,
            );
          }
          logger.debug({ module: m }, 'waiting for module');
          await new Promise((r) => setTimeout(r, 300));
        }
      }
    }
  } finally {
    await client.close().catch(() => undefined);
  }
}
