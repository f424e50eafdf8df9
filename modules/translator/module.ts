import { createLogger, EdgePerfError, type Logger, toError } from '../common/index.js';
import { TranslatorConfig } from './config/live-config.js';
import type { SettingsSection, TranslatorSettings } from './config/settings.js';
import { TranslatorControl } from './control.js';
import { metricLabelsFromEnv, TranslatorMetrics } from './metrics.js';
import { Pipeline, type PipelineOptions, type PipelineStats } from './pipeline.js';
import { backoffDelayMs, type ControllableTransport } from './transports/control-channel.js';
import { RawMqttTransport, rawMqttOptionsFromEnv } from './transports/raw-mqtt.js';
import { SdkTransport } from './transports/sdk.js';
import type { TransportName, UpstreamMessage, UpstreamTransport } from './upstream-transport.js';

/** Options for {@link createTransport}. */
export interface CreateTransportOptions {
  /** Environment with `EdgeHubConnectionString` / `EdgeModuleCACertificateFile`; default `process.env`. */
  readonly env?: NodeJS.ProcessEnv;
  readonly logger?: Logger;
}

/**
 * Builds (does not connect) the named upstream transport from the module environment.
 * `sdk-*` use `ModuleClient.fromEnvironment` unless `EdgeHubConnectionString` is in `env`.
 * @throws EdgePerfError `E_CONFIG` when raw-mqtt lacks `EdgeHubConnectionString` or the CA file is unreadable.
 */
export async function createTransport(
  name: TransportName,
  options: CreateTransportOptions = {},
): Promise<ControllableTransport> {
  const env = options.env ?? process.env;
  const logger = options.logger?.child({ component: name });
  switch (name) {
    case 'sdk-mqtt':
    case 'sdk-amqp': {
      const cs =
        env === process.env ? undefined : (env.EdgeHubConnectionString ?? env.IotHubConnectionString);
      return new SdkTransport({
        protocol: name === 'sdk-mqtt' ? 'mqtt' : 'amqp',
        env,
        ...(cs === undefined ? {} : { connectionString: cs }),
        ...(logger ? { logger } : {}),
      });
    }
    case 'raw-mqtt':
      return new RawMqttTransport({ ...(await rawMqttOptionsFromEnv(env)), ...(logger ? { logger } : {}) });
  }
}

/** Options for {@link TranslatorModule}. */
export interface TranslatorModuleOptions {
  /** Environment to configure from; default `process.env`. */
  readonly env?: NodeJS.ProcessEnv;
  /** Builds transports; default {@link createTransport}. */
  readonly transportFactory?: (name: TransportName) => Promise<ControllableTransport>;
  /** First delay between edgeHub connect attempts at start or after a transport switch; default 1000 ms. */
  readonly connectRetryMinDelayInMs?: number;
  /** Longest such delay; default 30000 ms. */
  readonly connectRetryMaxDelayInMs?: number;
  readonly logger?: Logger;
}

/** `getStats` payload: pipeline counters and gauges plus what the module runs with. */
export interface TranslatorStats extends PipelineStats {
  readonly transport: TransportName;
  readonly outputName: string;
  /** Unix ms of start or the last `resetStats`. */
  readonly sinceMs: number;
  readonly uptimeMs: number;
}

/**
 * What the pipeline holds instead of a transport, so a transport switch swaps the connection
 * under a running pipeline (no source restart, nothing read is dropped). While no transport is
 * in place, sends wait; the batcher's retry covers a send that fails during the swap.
 */
class TransportSlot implements UpstreamTransport {
  private current: ControllableTransport | undefined;
  private ready: Deferred<ControllableTransport> = deferred();

  get name(): TransportName {
    return this.current?.name ?? 'sdk-mqtt';
  }

  /** Puts a connected transport in place and releases waiting sends. */
  set(transport: ControllableTransport): void {
    this.current = transport;
    this.ready.resolve(transport);
  }

  /** Takes the transport out; later sends wait for {@link set}. Returns the old one. */
  take(): ControllableTransport | undefined {
    const old = this.current;
    this.current = undefined;
    this.ready = deferred();
    return old;
  }

  /** Fails waiting and future sends (module stopping). */
  fail(err: Error): void {
    this.ready.reject(err);
    this.ready.promise.catch(() => undefined);
  }

  async connect(): Promise<void> {}

  async send(output: string, message: UpstreamMessage): Promise<void> {
    const transport = this.current ?? (await this.ready.promise);
    await transport.send(output, message);
  }

  async close(): Promise<void> {}
}

interface Deferred<T> {
  readonly promise: Promise<T>;
  readonly resolve: (value: T) => void;
  readonly reject: (err: Error) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

type ModuleState =
  | { readonly kind: 'idle' }
  | { readonly kind: 'starting' }
  | { readonly kind: 'running' }
  | { readonly kind: 'stopping' }
  | { readonly kind: 'stopped' };

/**
 * The translator module wired in one place: configuration (env, then twin), metrics endpoint,
 * upstream transport (which also carries twin and direct methods), control, and the pipeline.
 * Desired-property changes rebuild only what changed: decoder, batch, buffer and output apply to
 * the running pipeline; source, embedded broker and transport changes restart it (flushing first).
 */
export class TranslatorModule {
  private readonly opts: TranslatorModuleOptions;
  private readonly env: NodeJS.ProcessEnv;
  private readonly log: Logger;
  private stateValue: ModuleState = { kind: 'idle' };
  private config: TranslatorConfig | undefined;
  private metrics: TranslatorMetrics | undefined;
  private metricsPort: number | undefined;
  private transport: ControllableTransport | undefined;
  private readonly slot = new TransportSlot();
  private pipeline: Pipeline | undefined;
  private control: TranslatorControl | undefined;
  private readonly stopController = new AbortController();
  private readonly startedAtMs = Date.now();
  private sinceMs = Date.now();
  // Rebuilds and stop run one at a time.
  private lifecycle: Promise<unknown> = Promise.resolve();

  constructor(options: TranslatorModuleOptions = {}) {
    this.opts = options;
    this.env = options.env ?? process.env;
    this.log = options.logger ?? createLogger('translator');
  }

  /** Lifecycle state. */
  get state(): ModuleState {
    return this.stateValue;
  }

  /** Settings in force (after `start`). */
  get settings(): TranslatorSettings | undefined {
    return this.config?.settings;
  }

  /** Port the metrics endpoint listens on (after `start`). */
  get boundMetricsPort(): number | undefined {
    return this.metricsPort;
  }

  /** URL of the embedded broker when it runs. */
  get embeddedBrokerUrl(): string | undefined {
    return this.pipeline?.embeddedBrokerUrl;
  }

  /**
   * Reads configuration, starts metrics, connects to edgeHub (retrying with backoff until it
   * answers or {@link stop} is called), applies the twin, starts the pipeline, serves methods.
   * @throws ConfigError for invalid env vars; Error when the metrics port or embedded broker port is taken.
   */
  start(): Promise<void> {
    if (this.stateValue.kind !== 'idle') return Promise.resolve();
    this.stateValue = { kind: 'starting' };
    // Queued so that a stop() during start runs after it (start gives up early once stop aborts).
    return this.enqueue(() => this.startInner());
  }

  private async startInner(): Promise<void> {
    const config = TranslatorConfig.fromEnv(this.env);
    this.config = config;
    this.log.level = config.settings.logLevel;
    const metrics = new TranslatorMetrics({
      labels: metricLabelsFromEnv(this.env),
      host: config.settings.metrics.host,
      port: config.settings.metrics.port,
    });
    this.metrics = metrics;
    this.metricsPort = await metrics.start();
    metrics.setStatsSource(() => this.pipeline?.stats());
    this.control = new TranslatorControl({
      config,
      stats: () => this.stats(),
      flush: () => this.pipeline?.flush() ?? Promise.resolve(),
      resetStats: () => {
        this.pipeline?.resetStats();
        this.sinceMs = Date.now();
      },
      apply: (settings, changed) => this.enqueue(() => this.apply(settings, changed)),
      logger: this.log.child({ component: 'control' }),
    });
    const envMetrics = config.settings.metrics;
    let transport = await this.connect(config.settings.transport);
    if (transport === undefined) return;
    try {
      await this.control.loadDesired(transport.control);
    } catch (err) {
      this.log.warn({ err: toError(err).message }, 'cannot read the twin; running with env settings');
    }
    const settings = config.settings;
    this.log.level = settings.logLevel;
    if (settings.transport !== transport.name) {
      await transport.close();
      transport = await this.connect(settings.transport);
      if (transport === undefined) return;
    }
    if (settings.metrics.port !== envMetrics.port || settings.metrics.host !== envMetrics.host) {
      await this.restartMetrics(settings);
    }
    if (this.stopController.signal.aborted) return;
    this.slot.set(transport);
    this.pipeline = this.buildPipeline(settings);
    await this.pipeline.start();
    await this.control.bind(transport.control);
    if (this.stateValue.kind === 'starting') this.stateValue = { kind: 'running' };
    this.log.info(
      { transport: settings.transport, output: settings.outputName, metricsPort: this.metricsPort },
      'translator running',
    );
  }

  /**
   * Stops reading, flushes within `shutdownTimeoutInMs`, closes the transport and the metrics
   * endpoint. What is not acknowledged by then stays at the source broker for redelivery.
   */
  stop(): Promise<void> {
    if (this.stateValue.kind === 'stopping' || this.stateValue.kind === 'stopped')
      return this.lifecycle.then(() => undefined);
    this.stateValue = { kind: 'stopping' };
    this.stopController.abort();
    return this.enqueue(async () => {
      const deadlineMs = this.config?.settings.shutdownTimeoutInMs ?? 10_000;
      try {
        await this.pipeline?.stop({ flush: true, deadlineMs });
      } catch (err) {
        this.log.warn({ err: toError(err).message }, 'pipeline stop failed');
      }
      this.pipeline = undefined;
      this.slot.fail(new EdgePerfError('E_STOPPED', 'translator stopped'));
      await this.transport
        ?.close()
        .catch((err: unknown) => this.log.warn({ err: toError(err).message }, 'transport close failed'));
      this.transport = undefined;
      await this.metrics?.stop();
      this.stateValue = { kind: 'stopped' };
    });
  }

  /** `getStats` payload. */
  stats(): TranslatorStats | { readonly state: string } {
    const settings = this.config?.settings;
    const p = this.pipeline?.stats();
    if (!p || !settings) return { state: this.stateValue.kind };
    return {
      ...p,
      transport: settings.transport,
      outputName: settings.outputName,
      sinceMs: this.sinceMs,
      uptimeMs: Date.now() - this.startedAtMs,
    };
  }

  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    const next = this.lifecycle.then(task);
    this.lifecycle = next.catch(() => undefined);
    return next;
  }

  /** Connects the named transport, retrying with backoff; undefined when stopped meanwhile. */
  private async connect(name: TransportName): Promise<ControllableTransport | undefined> {
    const factory =
      this.opts.transportFactory ??
      ((n: TransportName) => createTransport(n, { env: this.env, logger: this.log }));
    const signal = this.stopController.signal;
    for (let attempt = 0; !signal.aborted; attempt++) {
      const transport = await factory(name);
      try {
        // The SDKs retry open() internally for minutes; stop() must not wait for that.
        await untilAborted(transport.connect(), signal);
        if (signal.aborted) {
          await transport.close().catch(() => undefined);
          return undefined;
        }
        this.transport = transport;
        return transport;
      } catch (err) {
        await transport.close().catch(() => undefined);
        const delay = backoffDelayMs(
          attempt,
          this.opts.connectRetryMinDelayInMs ?? 1000,
          this.opts.connectRetryMaxDelayInMs ?? 30_000,
        );
        this.log.warn(
          { err: toError(err).message, transport: name, retryInMs: delay },
          'cannot connect to edgeHub',
        );
        await sleep(delay, signal);
      }
    }
    return undefined;
  }

  private async apply(settings: TranslatorSettings, changed: ReadonlySet<SettingsSection>): Promise<void> {
    if (this.stateValue.kind !== 'running') return;
    if (changed.has('logLevel')) this.log.level = settings.logLevel;
    if (changed.has('metrics')) await this.restartMetrics(settings);
    const pipeline = this.pipeline;
    if (!pipeline) return;
    if (changed.has('transport')) await this.switchTransport(pipeline, settings.transport);
    if (changed.has('source') || changed.has('embeddedBroker')) {
      // The source and broker cannot change under a running pipeline: flush, stop, rebuild.
      await pipeline.stop({ flush: true, deadlineMs: settings.shutdownTimeoutInMs });
      this.pipeline = this.buildPipeline(settings);
      await this.pipeline.start();
      return;
    }
    if (changed.has('decoder')) pipeline.configureDecoder(decoderOptions(settings));
    if (changed.has('batch') || changed.has('output'))
      pipeline.configureBatch(batchOptions(settings), settings.outputName);
    if (changed.has('buffer')) pipeline.configureBuffer(settings.maxBufferedBytes, settings.overflow);
  }

  // Flush what is buffered through the old transport, then swap the connection under the pipeline.
  private async switchTransport(pipeline: Pipeline, name: TransportName): Promise<void> {
    try {
      await pipeline.flush();
    } catch (err) {
      this.log.warn(
        { err: toError(err).message },
        'flush before transport switch failed; unsent records follow on the new transport',
      );
    }
    const old = this.slot.take();
    this.transport = undefined;
    await old
      ?.close()
      .catch((err: unknown) =>
        this.log.warn({ err: toError(err).message }, 'closing the old transport failed'),
      );
    const transport = await this.connect(name);
    if (!transport) return;
    this.slot.set(transport);
    await this.control?.bind(transport.control);
    this.log.info({ transport: name }, 'upstream transport switched');
  }

  private async restartMetrics(settings: TranslatorSettings): Promise<void> {
    const metrics = this.metrics;
    if (!metrics) return;
    await metrics.stop();
    this.metricsPort = await metrics.start({ host: settings.metrics.host, port: settings.metrics.port });
  }

  private buildPipeline(settings: TranslatorSettings): Pipeline {
    const options: PipelineOptions = {
      source: {
        topics: settings.source.topics,
        clientId: settings.source.clientId,
        qos: settings.source.qos,
        ...(settings.source.url === undefined ? {} : { url: settings.source.url }),
      },
      ...(settings.embeddedBroker.enabled
        ? { embeddedBroker: { host: settings.embeddedBroker.host, port: settings.embeddedBroker.port } }
        : {}),
      decoder: decoderOptions(settings),
      batch: batchOptions(settings),
      outputName: settings.outputName,
      maxBufferedBytes: settings.maxBufferedBytes,
      overflow: settings.overflow,
      logger: this.log.child({ component: 'pipeline' }),
      ...(this.metrics ? { hooks: this.metrics.hooks } : {}),
    };
    return new Pipeline(options, this.slot);
  }
}

function decoderOptions(s: TranslatorSettings): NonNullable<PipelineOptions['decoder']> {
  return { format: s.decoder, ...(s.topicTemplate === '' ? {} : { topicTemplate: s.topicTemplate }) };
}

function batchOptions(s: TranslatorSettings): NonNullable<PipelineOptions['batch']> {
  return { ...s.batch };
}

/** Resolves with the promise, or as soon as the signal aborts (the caller then checks `signal.aborted`). */
function untilAborted(promise: Promise<void>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onAbort = () => resolve();
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
