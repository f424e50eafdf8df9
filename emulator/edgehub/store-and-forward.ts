import type { Logger } from '../../modules/common/index.js';
import { toError } from '../../modules/common/index.js';
import { type InputDelivery, type MessageIntake, StoreFullError, type UpstreamSink } from './contracts.js';
import { type EdgeMessage, identityKey } from './message.js';
import type { EdgeHubMetrics } from './metrics.js';
import { type Route, type RouteSink, routeMessage, UPSTREAM_ENDPOINT_ID } from './routes/index.js';
import type { EdgeHubDesiredSettings, EdgeHubEnvSettings } from './settings.js';
import { type EnqueueRequest, MessageStore, messageSizeBytes } from './store/message-store.js';
import {
  backoffDelayMs,
  type RetryOptions,
  UpstreamPump,
  type UpstreamPumpStats,
  Wakeup,
} from './upstream-pump.js';

/** Options for {@link StoreAndForward}. */
export interface StoreAndForwardOptions extends RetryOptions {
  /** edgeHub env settings (storage, batching, cleanup, ack timeout). */
  readonly env: EdgeHubEnvSettings;
  /** `$edgeHub` desired settings (routes, TTL, store limit). */
  readonly desired: EdgeHubDesiredSettings;
  /** IoT Hub side of the upstream hop (the link model). */
  readonly upstream: UpstreamSink;
  /** Module inputs (the hub core). */
  readonly inputs: InputDelivery;
  readonly metrics?: EdgeHubMetrics;
  readonly logger?: Logger;
  /** Wall clock, unix ms (TTL stamps and cleanup). Default `Date.now`. */
  readonly clockMs?: () => number;
  /** Persistent store: fsync every commit (survives power loss, much slower). Default false. */
  readonly syncToDisk?: boolean;
  /** Longest wait between module delivery retries, ms. Default 5000 (a module that reconnects gets its input soon). */
  readonly moduleRetryMaxMs?: number;
}

/**
 * edgeHub's routing + store-and-forward: routes each accepted message, stores it once per matching
 * endpoint (with the route's priority and TTL) and resolves once it is durable; pumps the upstream
 * queue to IoT Hub and each module-input queue to its module, one message per ack. Runs the TTL
 * cleanup every MessageCleanupIntervalSecs. Routes and settings can change while running
 * ({@link reconfigure}); queued messages are kept and drained.
 */
export class StoreAndForward implements MessageIntake {
  /** The message store (exposed for queue inspection and tests). */
  readonly store: MessageStore;
  private readonly options: StoreAndForwardOptions;
  private env: EdgeHubEnvSettings;
  private desired: EdgeHubDesiredSettings;
  private routes: readonly Route[];
  private upstreamPump: UpstreamPump | undefined;
  private readonly modulePumps = new Map<string, ModulePump>();
  private cleanupTimer: NodeJS.Timeout | undefined;
  private started = false;

  constructor(options: StoreAndForwardOptions) {
    this.options = options;
    this.env = options.env;
    this.desired = options.desired;
    this.routes = options.desired.routes;
    this.store = new MessageStore({
      ...storeOptions(options.env, options.desired),
      ...(options.syncToDisk !== undefined ? { syncToDisk: options.syncToDisk } : {}),
    });
  }

  /** Opens the store, starts the pumps for queued messages and the cleanup task. */
  async start(): Promise<void> {
    await this.store.start();
    this.options.metrics?.setQueueLengthSource(() => this.store.queueLengths());
    this.started = true;
    for (const endpoint of this.store.endpoints()) this.pumpFor(endpoint)?.notify();
    this.scheduleCleanup();
  }

  /** Stops the pumps (in-flight sends finish), the cleanup task, and closes (or backs up) the store. */
  async stop(): Promise<void> {
    this.started = false;
    if (this.cleanupTimer !== undefined) clearInterval(this.cleanupTimer);
    this.cleanupTimer = undefined;
    const pumps: Promise<void>[] = [...this.modulePumps.values()].map((p) => p.stop());
    if (this.upstreamPump !== undefined) pumps.push(this.upstreamPump.stop());
    await Promise.all(pumps);
    this.modulePumps.clear();
    this.upstreamPump = undefined;
    await this.store.stop();
  }

  /**
   * Routes and stores a message. Resolves once durable per the storage settings; a message no
   * route matches is dropped (`no_route`) and still resolves, as edgeHub acknowledges it.
   * @throws StoreFullError when the in-memory store limit is reached.
   */
  async accept(message: EdgeMessage): Promise<void> {
    const metrics = this.options.metrics;
    const sender = senderOf(message);
    const output = message.system.outputName ?? '';
    metrics?.messageReceived(sender, output, messageSizeBytes(message));
    const targets = routeMessage(this.routes, message);
    if (targets.length === 0) {
      metrics?.messagesDropped('no_route', 1, sender, output);
      return;
    }
    const now = (this.options.clockMs ?? Date.now)();
    const requests: EnqueueRequest[] = targets.map((t) => {
      const ttl = t.timeToLiveSecs ?? this.desired.timeToLiveSecs;
      return {
        endpoint: t.sink.endpointId,
        priority: t.priority,
        message,
        expiresAtMs: ttl === undefined ? Number.POSITIVE_INFINITY : now + ttl * 1000,
      };
    });
    try {
      await this.store.enqueue(requests);
    } catch (err) {
      if (err instanceof StoreFullError) metrics?.messagesDropped('store_full', 1, sender, output);
      throw err;
    }
    for (const t of targets) this.pumpFor(t.sink.endpointId, t.sink)?.notify();
  }

  /**
   * Applies new routes/TTL/store limit and/or batching settings while running. Queues of endpoints
   * no route names any more keep draining; nothing queued is dropped.
   */
  reconfigure(update: { desired?: EdgeHubDesiredSettings; env?: EdgeHubEnvSettings }): void {
    if (update.desired !== undefined) {
      this.desired = update.desired;
      this.routes = update.desired.routes;
      this.store.setMaxSizeBytes(update.desired.maxSizeBytes);
    }
    if (update.env !== undefined) {
      this.env = update.env;
      this.upstreamPump?.updateSettings(pumpSettings(update.env));
    }
  }

  /**
   * Tells store-and-forward a module (re)connected or subscribed to its inputs, so queued input
   * messages are delivered now instead of after the current retry delay.
   */
  moduleConnected(moduleId: string): void {
    for (const pump of this.modulePumps.values()) if (pump.moduleId === moduleId) pump.retryNow();
  }

  /** The routes in force. */
  get currentRoutes(): readonly Route[] {
    return this.routes;
  }

  /** The upstream pump's counters (zeros before the first upstream message). */
  get upstreamStats(): UpstreamPumpStats {
    return (
      this.upstreamPump?.stats ?? { messagesSent: 0, batchesSent: 0, failedAttempts: 0, messagesRejected: 0 }
    );
  }

  /**
   * One cleanup pass (normally run every MessageCleanupIntervalSecs): deletes expired messages and
   * counts them as `ttl_expiry`. Returns how many were deleted.
   */
  runCleanup(): number {
    const now = (this.options.clockMs ?? Date.now)();
    const { expired } = this.store.cleanup(now, this.env.checkEntireQueueOnCleanup);
    this.options.metrics?.messagesDropped('ttl_expiry', expired.length);
    if (expired.length > 0)
      this.options.logger?.info({ expired: expired.length }, 'expired messages deleted');
    return expired.length;
  }

  private scheduleCleanup(): void {
    this.cleanupTimer = setInterval(() => {
      try {
        this.runCleanup();
      } catch (err) {
        this.options.logger?.error({ err: toError(err).message }, 'message cleanup failed');
      }
    }, this.env.messageCleanupIntervalSecs * 1000);
    this.cleanupTimer.unref();
  }

  private pumpFor(endpoint: string, sink?: RouteSink): { notify(): void } | undefined {
    if (!this.started) return undefined;
    if (endpoint === UPSTREAM_ENDPOINT_ID) {
      if (this.upstreamPump === undefined) {
        this.upstreamPump = new UpstreamPump({
          store: this.store,
          sink: this.options.upstream,
          endpoint,
          settings: pumpSettings(this.env),
          ...retryOf(this.options),
          ...(this.options.metrics ? { metrics: this.options.metrics } : {}),
          ...(this.options.logger ? { logger: this.options.logger } : {}),
        });
        this.upstreamPump.start();
      }
      return this.upstreamPump;
    }
    let pump = this.modulePumps.get(endpoint);
    if (pump === undefined) {
      const target = sink?.kind === 'module' ? sink : parseModuleEndpoint(endpoint);
      if (target === undefined) return undefined;
      pump = new ModulePump(
        this.store,
        endpoint,
        target.moduleId,
        target.input,
        this.options,
        () => this.env,
      );
      this.modulePumps.set(endpoint, pump);
      pump.start();
    }
    return pump;
  }
}

function storeOptions(env: EdgeHubEnvSettings, desired: EdgeHubDesiredSettings) {
  return {
    persistent: env.usePersistentStorage,
    folder: env.storageFolder,
    backupOnStop: env.enableNonPersistentStorageBackup,
    ...(desired.maxSizeBytes !== undefined ? { maxSizeBytes: desired.maxSizeBytes } : {}),
  };
}

function pumpSettings(env: EdgeHubEnvSettings) {
  return { maxUpstreamBatchSize: env.maxUpstreamBatchSize, upstreamFanOutFactor: env.upstreamFanOutFactor };
}

function retryOf(o: RetryOptions): RetryOptions {
  return {
    ...(o.retryBaseMs !== undefined ? { retryBaseMs: o.retryBaseMs } : {}),
    ...(o.retryMaxMs !== undefined ? { retryMaxMs: o.retryMaxMs } : {}),
  };
}

function senderOf(message: EdgeMessage): string {
  const { connectionDeviceId: deviceId, connectionModuleId: moduleId } = message.system;
  return identityKey(moduleId === undefined ? { deviceId } : { deviceId, moduleId });
}

function parseModuleEndpoint(endpoint: string): { moduleId: string; input: string } | undefined {
  const m = /^\/modules\/([^/]+)\/inputs\/([^/]+)$/.exec(endpoint);
  return m ? { moduleId: m[1] ?? '', input: m[2] ?? '' } : undefined;
}

class AckTimeoutError extends Error {}

/** Delivers one module-input queue, one message per ack (edge-facts §2), retrying while the module is away. */
class ModulePump {
  private readonly wakeup = new Wakeup();
  // Separate from `wakeup`: new messages must not cut a retry delay short, a reconnect must.
  private readonly retryWakeup = new Wakeup();
  private controller: AbortController | undefined;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly store: MessageStore,
    private readonly endpoint: string,
    readonly moduleId: string,
    private readonly input: string,
    private readonly options: StoreAndForwardOptions,
    private readonly env: () => EdgeHubEnvSettings,
  ) {}

  start(): void {
    const controller = new AbortController();
    this.controller = controller;
    this.loop = this.run(controller.signal);
  }

  notify(): void {
    this.wakeup.notify();
  }

  retryNow(): void {
    this.retryWakeup.notify();
  }

  async stop(): Promise<void> {
    this.controller?.abort();
    this.wakeup.notify();
    this.retryWakeup.notify();
    await this.loop;
  }

  private async run(signal: AbortSignal): Promise<void> {
    const retry = {
      retryBaseMs: this.options.retryBaseMs ?? 1000,
      retryMaxMs: Math.min(this.options.retryMaxMs ?? 60_000, this.options.moduleRetryMaxMs ?? 5000),
    };
    let attempt = 0;
    while (!signal.aborted) {
      const [entry] = this.store.peek(this.endpoint, 1);
      if (entry === undefined) {
        await this.wakeup.wait(10_000, signal);
        continue;
      }
      const started = performance.now();
      try {
        const message = this.store.messageOf(entry);
        await withTimeout(
          this.options.inputs.deliver(this.moduleId, this.input, message),
          this.env().messageAckTimeoutSecs * 1000,
        );
        this.store.remove([entry]);
        attempt = 0;
        const metrics = this.options.metrics;
        if (metrics !== undefined) {
          const to = `${this.moduleId}/${this.input}`;
          metrics.observeSendDuration(entry.senderKey, to, (performance.now() - started) / 1000);
          metrics.messagesSent(
            {
              from: entry.senderKey,
              to,
              fromOutput: message.system.outputName ?? '',
              toInput: this.input,
              priority: entry.priority,
            },
            1,
          );
        }
      } catch (err) {
        this.options.logger?.debug(
          { err: toError(err).message, endpoint: this.endpoint, attempt },
          'module delivery failed; retrying',
        );
        await this.retryWakeup.wait(backoffDelayMs(attempt++, retry), signal);
      }
    }
  }
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  // A late rejection after the timeout must not become an unhandled rejection.
  promise.catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new AckTimeoutError(`no ack within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
