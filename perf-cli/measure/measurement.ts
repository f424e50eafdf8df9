import { randomUUID } from 'node:crypto';
import { EventHubConsumerClient, type ReceivedEventData, type Subscription } from '@azure/event-hubs';
import { EdgePerfError, type Logger } from '../../modules/common/index.js';
import type { FaultReport, RunConfigSummary, RunSummary } from '../analysis/summary-types.js';
import { type ServiceClient, serviceClient } from '../iothub-service.js';
import { AsaRowsCollector } from './asa-rows-collector.js';
import { EventCollector, type HubEvent } from './event-collector.js';
import { scrape, sumMetric } from './prometheus-text.js';

/** What a measurement needs: the same for Azure (`run`) and the local runtime (`local`). */
export interface MeasurementOptions {
  readonly mode: 'local' | 'run';
  readonly runId?: string;
  /** IoT Hub service connection string (iothubowner or a policy with ServiceConnect). */
  readonly iothubConnectionString: string;
  /**
   * IoT Hub built-in endpoint (Event Hub-compatible) connection string, with EntityPath or
   * `eventHubName`. Required unless `results.kind` is `asa` (then not read).
   */
  readonly eventHubConnectionString?: string;
  readonly eventHubName?: string;
  readonly consumerGroup: string;
  readonly deviceId: string;
  readonly simulatorModule: string;
  readonly translatorModule: string;
  /** Further translator instances (multi-module manifests); source figures add up over all of them. */
  readonly moreTranslatorModules?: readonly string[];
  /** PEM of a private CA the service API's certificate chains to (the local runtime's). */
  readonly caPem?: string;
  /** edgeHub `/metrics` URL; when reachable, the queue series and TTL expiries come from it. */
  readonly metricsUrl?: string;
  readonly burst: {
    readonly burstLength: number;
    readonly bursts: number;
    readonly burstWaitMs: number;
    readonly targetRate: number;
    readonly payloadLength: number;
    readonly format: 'json' | 'sparkplug';
    readonly devices: number;
  };
  /** Stop after this many seconds without new messages of the run (then the result is partial). */
  readonly timeoutSecs: number;
  readonly config: RunConfigSummary;
  /** Called once a second with live counts (progress bar). */
  readonly onProgress?: (p: { sent: number; delivered: number; expected: number; queue: number }) => void;
  /** Scheduled faults: run at `atSecs` after the burst started; each returns what it did. */
  readonly faults?: readonly {
    readonly name: string;
    readonly atSecs: number;
    readonly run: () => Promise<string>;
  }[];
  /** Aborting ends the run early (Ctrl-C) with partial results. */
  readonly signal?: AbortSignal;
  readonly logger: Logger;
  /** Called when the consumer must start over (the local runtime was restarted and its log is new). */
  readonly resubscribe?: { on: (listener: () => void) => void };
  /**
   * Where the results come from. Default `{ kind: 'builtin' }`: every logical message read from
   * the built-in endpoint (exact). `asa`: the ASA job's per-window rows read from its output
   * event hub *instead of* the built-in endpoint (then `eventHubConnectionString` is not read), see
   * {@link AsaRowsCollector} for what rows can and cannot tell. Instead, not in addition: the
   * point of the ASA path is that the measuring machine reads a few rows a second rather than
   * every message (the built-in endpoint's egress, and a consumer that cannot keep up at high
   * rates, are what it avoids), and mixing the two would give figures from neither.
   */
  readonly results?: MeasurementResultsOptions;
}

/** {@link MeasurementOptions.results}. */
export type MeasurementResultsOptions =
  | { readonly kind: 'builtin' }
  | {
      readonly kind: 'asa';
      /** The ASA output event hub's connection string, with `EntityPath`. */
      readonly connectionString: string;
      /** Consumer group on that event hub; the summary takes only rows whose `sid` is the run id. */
      readonly consumerGroup: string;
    };

interface TranslatorStats {
  sentRecords?: number;
  sentBytes?: number;
  firstReceivedAtMs?: number;
  lastSentAtMs?: number;
}

/**
 * Runs one measured burst session: subscribes to IoT Hub's built-in endpoint, starts the simulator
 * through the service API, accounts for every logical message by its sequence number, samples
 * edgeHub's queue each second, and summarises. Ends when every message arrived, after
 * `timeoutSecs` without new data, or on abort. With `results: { kind: 'asa', … }` it reads the ASA
 * job's rows instead (see {@link AsaRowsCollector}); rows appear only once a window closes (the
 * job's late-arrival delay after it), which the no-data timeout must allow for.
 *
 * @throws EdgePerfError when the hub cannot be reached, the simulator does not answer, or the
 *   built-in endpoint's connection string is missing in builtin mode (E_ARGS, exit 2).
 */
export async function runMeasurement(o: MeasurementOptions): Promise<RunSummary> {
  const runId =
    o.runId ??
    `run-${new Date()
      .toISOString()
      .replace(/[-:.TZ]/g, '')
      .slice(0, 14)}-${randomUUID().slice(0, 6)}`;
  const asaResults = o.results?.kind === 'asa' ? o.results : undefined;
  const builtinCs = o.eventHubConnectionString ?? '';
  if (!asaResults && builtinCs === '')
    throw new EdgePerfError('E_ARGS', 'missing eventHubConnectionString (the built-in endpoint)', {
      exitCode: 2,
    });
  const service = serviceClient(o.iothubConnectionString, o.caPem);
  const startedAtMs = Date.now();
  const collector = new EventCollector({
    sessionId: runId,
    burstLength: o.burst.burstLength,
    bursts: o.burst.bursts,
    startedAtMs,
  });
  const expected = o.burst.burstLength * o.burst.bursts;
  const asa = asaResults
    ? new AsaRowsCollector({
        sessionId: runId,
        burstLength: o.burst.burstLength,
        bursts: o.burst.bursts,
        startedAtMs,
      })
    : undefined;
  // What the loop watches, whichever source counts the messages.
  const tally = asa ?? {
    get delivered() {
      return collector.integrity.deliveredCount;
    },
    get complete() {
      return collector.integrity.complete;
    },
    get lastArrivalAtMs() {
      return collector.lastArrivalAtMs;
    },
  };
  const consumer = asaResults
    ? new EventHubConsumerClient(asaResults.consumerGroup, asaResults.connectionString)
    : o.eventHubName
      ? new EventHubConsumerClient(o.consumerGroup, builtinCs, o.eventHubName)
      : new EventHubConsumerClient(o.consumerGroup, builtinCs);
  let subscription: Subscription | undefined;
  const subscribe = (from: Date) => {
    subscription = consumer.subscribe(
      {
        processEvents: async (events: ReceivedEventData[]) => {
          if (asa) for (const e of events) asa.addEvent(e.body);
          else for (const e of events) collector.add(toHubEvent(e));
        },
        processError: async (err) => {
          o.logger.debug({ err: err.message }, 'event hub consumer error (retried)');
        },
      },
      {
        startPosition: { enqueuedOn: from },
        maxBatchSize: 500,
        // How long a receive waits on a partition with nothing new before it is issued again: events
        // are handed over as they come either way. The built-in endpoint has several partitions and
        // one device writes to one, so with 1 s the idle ones cost about 0.2% of a core (paired
        // `edgeperf local` runs at 100 and 2,000 msg/s, 1 s against 10 s).
        maxWaitTimeInSeconds: 10,
        // Take the bytes: ASA packs line-separated rows into one body (not one JSON value), and a
        // translator batch would otherwise be parsed by the SDK, re-serialised and parsed again.
        skipParsingBodyAsJson: true,
      },
    );
  };
  try {
    await withTimeout(
      consumer.getPartitionIds(),
      15_000,
      () =>
        new EdgePerfError(
          'E_EVENTHUB',
          asa
            ? 'cannot reach the ASA output event hub within 15 s'
            : 'cannot reach the IoT Hub built-in endpoint (Event Hubs) within 15 s',
        ),
    );
    subscribe(new Date(startedAtMs - 2000));
    o.resubscribe?.on(() => {
      void subscription?.close().then(() => subscribe(new Date(0)));
    });

    const expiredAtStart = await ttlExpired(o.metricsUrl);
    for (const m of o.moreTranslatorModules ?? [])
      await invoke(service, o, m, 'resetStats', {}).catch(() => undefined);
    await invoke(service, o, o.translatorModule, 'resetStats', {}).catch((err: Error) => {
      o.logger.info(
        { err: err.message },
        'translator has no resetStats; source figures come from the simulator',
      );
    });
    const started = await invoke(service, o, o.simulatorModule, 'start', {
      sessionId: runId,
      burstLength: o.burst.burstLength,
      burstNumber: o.burst.bursts,
      burstWaitMs: o.burst.burstWaitMs,
      targetRate: o.burst.targetRate,
      payloadLength: o.burst.payloadLength,
      format: o.burst.format,
      devices: o.burst.devices,
    });
    if (started.status >= 300) {
      throw new EdgePerfError(
        'E_SIMULATOR',
        `simulator module ${o.simulatorModule} refused start: ${JSON.stringify(started.payload)}`,
      );
    }
    const burstStartMs = Date.now();
    // edgeperf's own CPU counts from here: connecting and the SDKs' first-use loading (about
    // 0.3 s of CPU, measured with --cpu-prof) are set-up, not the cost of watching a burst.
    const cpuAtBurst = process.cpuUsage();

    const queueSeries: number[] = [];
    const sourceSeries: number[] = [];
    const faultReports: FaultReport[] = [];
    const pendingFaults = [...(o.faults ?? [])].sort((a, b) => a.atSecs - b.atSecs);
    let peakQueue = 0;
    let lastSent = 0;
    let lastProgressMs = Date.now();
    let partial = false;
    for (;;) {
      await sleep(1000, o.signal);
      if (o.signal?.aborted) {
        partial = true;
        break;
      }
      const now = Date.now();
      while (pendingFaults.length > 0 && (pendingFaults[0]?.atSecs ?? 0) * 1000 <= now - burstStartMs) {
        const f = pendingFaults.shift() as NonNullable<(typeof pendingFaults)[number]>;
        const detail = await f.run().catch((err: Error) => `failed: ${err.message}`);
        faultReports.push({ fault: f.name, atSecs: Math.round((now - burstStartMs) / 100) / 10, detail });
        o.logger.warn({ fault: f.name, detail }, 'fault injected');
      }
      const text = o.metricsUrl ? await scrape(o.metricsUrl) : undefined;
      const queue = text ? sumMetric(text, 'edgehub_queue_length') : 0;
      peakQueue = Math.max(peakQueue, queue);
      const stats = await translatorStats(service, o);
      const sent = stats?.sentRecords ?? 0;
      const t = Math.floor((now - startedAtMs) / 1000);
      while (queueSeries.length < t) queueSeries.push(queueSeries.at(-1) ?? 0);
      while (sourceSeries.length < t) sourceSeries.push(0);
      queueSeries[t] = queue;
      sourceSeries[t] = Math.max(0, sent - lastSent);
      // Progress = the translator's counter moved (it restarts from 0 after a kill); an unchanged
      // counter must not count, or a run that lost messages never reaches its idle timeout.
      const sourceMoved = sent !== lastSent;
      lastSent = sent;
      const delivered = tally.delivered;
      o.onProgress?.({ sent, delivered, expected, queue });
      if (tally.complete) break;
      if (tally.lastArrivalAtMs > lastProgressMs) lastProgressMs = tally.lastArrivalAtMs;
      if (sourceMoved) lastProgressMs = Math.max(lastProgressMs, now - 1000);
      const idleSecs =
        (now - Math.max(lastProgressMs, burstStartMs + o.burst.bursts * o.burst.burstWaitMs)) / 1000;
      if (idleSecs > o.timeoutSecs) {
        partial = true;
        o.logger.warn({ idleSecs: Math.round(idleSecs) }, 'no new messages: ending with partial results');
        break;
      }
    }

    const measurerCpuPercent = cpuPercent(cpuAtBurst, burstStartMs);
    const final = await translatorStats(service, o);
    const expired = Math.max(0, (await ttlExpired(o.metricsUrl)) - expiredAtStart);
    if (asa) {
      return asaSummary(o, runId, asa, {
        final,
        burstStartMs,
        expired,
        peakQueue,
        queueSeries,
        sourceSeries,
        faultReports,
        partial,
      });
    }
    const up = collector.upstream();
    const source = sourceFigures(final, burstStartMs, up.lastEnqueuedMs);
    const series = collector.seriesUpstream();
    const len = Math.max(series.upstreamRate.length, queueSeries.length, sourceSeries.length);
    const pad = <T>(a: T[], v: T) => [...a, ...new Array<T>(Math.max(0, len - a.length)).fill(v)];
    return {
      mode: o.mode,
      runId,
      config: o.config,
      source,
      upstream: {
        messages: up.messages,
        hubMessages: up.hubMessages,
        ratePerSec: up.ratePerSec,
        throughputKBps: up.throughputKBps,
        meteredUnits4KB: up.meteredUnits4KB,
      },
      latencyMs: collector.latency(),
      latencyHistogram: collector.histogram(),
      queue: { peakLength: peakQueue, samples: queueSeries.length },
      integrity: collector.integrity.figures(expired),
      ...(faultReports.length > 0 ? { faults: faultReports } : {}),
      ...(partial ? { partial: true } : {}),
      bursts: collector.bursts(),
      measurerCpuPercent,
      series: {
        t: Array.from({ length: len }, (_, i) => i),
        sourceRate: pad(sourceSeries, 0),
        upstreamRate: pad(series.upstreamRate, 0),
        queueLength: pad(queueSeries, queueSeries.at(-1) ?? 0),
        latencyP50: pad(series.latencyP50, null),
        latencyP99: pad(series.latencyP99, null),
      },
    };
  } finally {
    await subscription?.close().catch(() => undefined);
    await consumer.close().catch(() => undefined);
    await service.close().catch(() => undefined);
  }
}

/**
 * The summary from the ASA rows: the same shape as the built-in endpoint's, with
 * `latencyExact: false`, no histogram, and `hubMessages`/`meteredUnits4KB` 0 (rows count logical
 * messages, not IoT Hub messages).
 */
function asaSummary(
  o: MeasurementOptions,
  runId: string,
  asa: AsaRowsCollector,
  run: {
    final: TranslatorStats | undefined;
    burstStartMs: number;
    expired: number;
    peakQueue: number;
    queueSeries: number[];
    sourceSeries: number[];
    faultReports: FaultReport[];
    partial: boolean;
  },
): RunSummary {
  const ignored = asa.ignored;
  if (ignored.malformed + ignored.unexpected + ignored.repeated > 0)
    o.logger.warn(ignored, 'ASA output rows ignored (not rows, burst out of range, or repeats)');
  const up = asa.upstream();
  const series = asa.seriesUpstream();
  const { queueSeries, sourceSeries } = run;
  const len = Math.max(series.upstreamRate.length, queueSeries.length, sourceSeries.length);
  const pad = <T>(a: T[], v: T) => [...a, ...new Array<T>(Math.max(0, len - a.length)).fill(v)];
  return {
    mode: o.mode,
    runId,
    config: o.config,
    source: sourceFigures(run.final, run.burstStartMs, up.lastEnqueuedMs),
    upstream: {
      messages: up.messages,
      hubMessages: 0,
      ratePerSec: up.ratePerSec,
      throughputKBps: up.throughputKBps,
      meteredUnits4KB: 0,
    },
    latencyMs: asa.latency(),
    latencyExact: false,
    queue: { peakLength: run.peakQueue, samples: queueSeries.length },
    integrity: asa.integrity(run.expired),
    ...(run.faultReports.length > 0 ? { faults: run.faultReports } : {}),
    ...(run.partial ? { partial: true } : {}),
    bursts: asa.bursts(),
    series: {
      t: Array.from({ length: len }, (_, i) => i),
      sourceRate: pad(sourceSeries, 0),
      upstreamRate: pad(series.upstreamRate, 0),
      queueLength: pad(queueSeries, queueSeries.at(-1) ?? 0),
      latencyP50: pad(series.latencyP50, null),
      latencyP99: pad(series.latencyP99, null),
    },
  };
}

/** `getStats` of every translator instance, added up (first receive and last ack across all). */
async function translatorStats(
  service: ServiceClient,
  o: MeasurementOptions,
): Promise<TranslatorStats | undefined> {
  const all = await Promise.all(
    [o.translatorModule, ...(o.moreTranslatorModules ?? [])].map(
      async (m) =>
        (await invoke(service, o, m, 'getStats', {}).catch(() => undefined))?.payload as
          | TranslatorStats
          | undefined,
    ),
  );
  const got = all.filter((s): s is TranslatorStats => s !== undefined);
  if (got.length === 0) return undefined;
  const firsts = got.map((s) => s.firstReceivedAtMs ?? 0).filter((v) => v > 0);
  return {
    sentRecords: got.reduce((a, s) => a + (s.sentRecords ?? 0), 0),
    sentBytes: got.reduce((a, s) => a + (s.sentBytes ?? 0), 0),
    firstReceivedAtMs: firsts.length > 0 ? Math.min(...firsts) : 0,
    lastSentAtMs: Math.max(0, ...got.map((s) => s.lastSentAtMs ?? 0)),
  };
}

function sourceFigures(stats: TranslatorStats | undefined, burstStartMs: number, fallbackEndMs: number) {
  const messages = stats?.sentRecords ?? 0;
  const from =
    stats?.firstReceivedAtMs && stats.firstReceivedAtMs > 0 ? stats.firstReceivedAtMs : burstStartMs;
  const to = stats?.lastSentAtMs && stats.lastSentAtMs > 0 ? stats.lastSentAtMs : fallbackEndMs;
  const secs = (to - from) / 1000;
  return {
    messages,
    ratePerSec: secs > 0 ? Math.round((messages / secs) * 10) / 10 : 0,
    throughputKBps: secs > 0 ? Math.round(((stats?.sentBytes ?? 0) / 1024 / secs) * 10) / 10 : 0,
  };
}

async function invoke(
  service: ServiceClient,
  o: MeasurementOptions,
  moduleId: string,
  methodName: string,
  payload: unknown,
): Promise<{ status: number; payload: unknown }> {
  try {
    const res = await service.invokeDeviceMethod(o.deviceId, moduleId, {
      methodName,
      payload,
      responseTimeoutInSeconds: 10,
    });
    return res.result as { status: number; payload: unknown };
  } catch (err) {
    const e = err as Error & { responseBody?: string };
    const why = e.responseBody ? `${e.message}: ${e.responseBody}` : e.message;
    throw new EdgePerfError(
      'E_METHOD',
      `module ${o.deviceId}/${moduleId} did not answer ${methodName}: ${why}`,
    );
  }
}

async function ttlExpired(metricsUrl: string | undefined): Promise<number> {
  if (!metricsUrl) return 0;
  const text = await scrape(metricsUrl);
  return text ? sumMetric(text, 'edgehub_messages_dropped_total', { reason: 'ttl_expiry' }) : 0;
}

function toHubEvent(e: ReceivedEventData): HubEvent {
  const raw = (e.getRawAmqpMessage?.().body as { content?: Buffer } | Buffer | undefined) ?? undefined;
  const rawBytes = Buffer.isBuffer(raw)
    ? raw.length
    : Buffer.isBuffer(raw?.content)
      ? raw.content.length
      : undefined;
  const body = e.body as unknown;
  const bodyBytes =
    rawBytes ??
    (Buffer.isBuffer(body)
      ? body.length
      : Buffer.byteLength(typeof body === 'string' ? body : JSON.stringify(body)));
  const encoding = e.properties?.['edgeperf-encoding'];
  const deviceId = e.systemProperties?.['iothub-connection-device-id'];
  return {
    body,
    encoding: encoding === undefined ? undefined : String(encoding),
    enqueuedTimeMs: e.enqueuedTimeUtc.getTime(),
    bodyBytes,
    deviceId: typeof deviceId === 'string' ? deviceId : undefined,
  };
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(t);
      resolve();
    };
    // Remove the listener when the timer fires: one sleep per second would otherwise pile them up.
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

async function withTimeout<T>(p: Promise<T>, ms: number, error: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, rej) => (timer = setTimeout(() => rej(error()), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** This process's CPU since `from`, as % of one core over the wall time since `sinceMs`. */
function cpuPercent(from: NodeJS.CpuUsage, sinceMs: number): number {
  const used = process.cpuUsage(from);
  const wallUs = (Date.now() - sinceMs) * 1000;
  return wallUs > 0 ? Math.round(((used.user + used.system) / wallUs) * 1000) / 10 : 0;
}
