import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { parseConnectionString } from '../common/index.js';
import type { BatchInfo } from './batcher/index.js';
import type { DeadLetterReason } from './decoders/index.js';
import { DEAD_LETTER_REASONS } from './decoders/index.js';
import type { PipelineHooks, PipelineStats } from './pipeline.js';

/** Labels on every series, as on IoT Edge built-in metrics (edge-facts §5). */
export interface MetricLabels {
  readonly iothub: string;
  readonly edge_device: string;
  readonly module: string;
}

/** Options for {@link TranslatorMetrics}. */
export interface TranslatorMetricsOptions {
  readonly labels: MetricLabels;
  /** Listen address; default 127.0.0.1 (the module's settings pass 0.0.0.0 inside a container). */
  readonly host?: string;
  /** TCP port; default 9600; 0 picks a free one (tests). */
  readonly port?: number;
}

/**
 * Labels from the module's environment: IOTEDGE_IOTHUBHOSTNAME / IOTEDGE_DEVICEID /
 * IOTEDGE_MODULEID as edgeAgent sets them, else the fields of `EdgeHubConnectionString`.
 */
export function metricLabelsFromEnv(env: NodeJS.ProcessEnv = process.env): MetricLabels {
  let cs: Record<string, string> = {};
  try {
    cs = parseConnectionString(env.EdgeHubConnectionString ?? '');
  } catch {
    // A malformed string is reported by the transport; labels just fall back.
  }
  return {
    iothub: env.IOTEDGE_IOTHUBHOSTNAME ?? cs.HostName ?? 'unknown',
    edge_device: env.IOTEDGE_DEVICEID ?? cs.DeviceId ?? 'unknown',
    module: env.IOTEDGE_MODULEID ?? cs.ModuleId ?? 'translator',
  };
}

const LABELS = ['iothub', 'edge_device', 'module'] as const;
// Batch sizes from the naive 1 record up to a 256 KiB envelope of small records.
const MESSAGE_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000];
const BYTE_BUCKETS = [256, 1024, 4096, 8192, 16_384, 32_768, 65_536, 131_072, 262_144];
const SECOND_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * The translator's Prometheus metrics (prom-client, own registry) and the HTTP endpoint serving
 * them at `/metrics`, named in the style of edgeHub's built-in metrics:
 *
 * - `translator_messages_received_total`, `translator_messages_sent_total` (records acknowledged
 *   by edgeHub), `translator_batches_total`, `translator_send_errors_total`;
 * - histograms `translator_batch_size_messages`, `translator_batch_size_bytes`,
 *   `translator_send_duration_seconds`;
 * - gauges `translator_buffered_messages`, `translator_buffered_bytes`, `translator_inflight_batches`;
 * - `translator_messages_deadlettered_total{reason}`, `translator_messages_dropped_total{reason}`.
 *
 * Counters are monotonic; `resetStats` resets only the `getStats` view, never these series (a
 * reset would read as a counter restart to `rate()`).
 */
export class TranslatorMetrics {
  /** The registry; exposed so tests and other collectors can read it. */
  readonly registry = new Registry();
  /** Wire these into {@link PipelineOptions.hooks}. */
  readonly hooks: PipelineHooks;
  private readonly options: TranslatorMetricsOptions;
  private readonly received: Counter<(typeof LABELS)[number]>;
  private readonly sent: Counter<(typeof LABELS)[number]>;
  private readonly batches: Counter<(typeof LABELS)[number] | 'encoding' | 'trigger'>;
  private readonly sendErrors: Counter<(typeof LABELS)[number]>;
  private readonly deadLettered: Counter<(typeof LABELS)[number] | 'reason'>;
  private readonly dropped: Counter<(typeof LABELS)[number] | 'reason'>;
  private readonly batchMessages: Histogram<(typeof LABELS)[number]>;
  private readonly batchBytes: Histogram<(typeof LABELS)[number]>;
  private readonly sendDuration: Histogram<(typeof LABELS)[number]>;
  private statsSource: (() => PipelineStats | undefined) | undefined;
  private server: Server | undefined;

  constructor(options: TranslatorMetricsOptions) {
    this.options = options;
    const registers = [this.registry];
    this.registry.setDefaultLabels({ ...options.labels });
    const labelNames = [...LABELS];
    this.received = new Counter({
      name: 'translator_messages_received_total',
      help: 'Source messages read from the field broker',
      labelNames,
      registers,
    });
    this.sent = new Counter({
      name: 'translator_messages_sent_total',
      help: 'Records acknowledged by edgeHub',
      labelNames,
      registers,
    });
    this.batches = new Counter({
      name: 'translator_batches_total',
      help: 'Upstream messages (batches or single records) acknowledged by edgeHub',
      labelNames: [...labelNames, 'encoding', 'trigger'],
      registers,
    });
    this.sendErrors = new Counter({
      name: 'translator_send_errors_total',
      help: 'Failed upstream send attempts (each is retried)',
      labelNames,
      registers,
    });
    this.deadLettered = new Counter({
      name: 'translator_messages_deadlettered_total',
      help: 'Source messages or records sent to the deadletter output, by reason',
      labelNames: [...labelNames, 'reason'],
      registers,
    });
    this.dropped = new Counter({
      name: 'translator_messages_dropped_total',
      help: 'Records dropped by the drop-oldest overflow policy, by reason',
      labelNames: [...labelNames, 'reason'],
      registers,
    });
    this.batchMessages = new Histogram({
      name: 'translator_batch_size_messages',
      help: 'Records per upstream message',
      labelNames,
      buckets: MESSAGE_BUCKETS,
      registers,
    });
    this.batchBytes = new Histogram({
      name: 'translator_batch_size_bytes',
      help: 'Upstream message bytes as IoT Hub counts them (encoded body plus properties)',
      labelNames,
      buckets: BYTE_BUCKETS,
      registers,
    });
    this.sendDuration = new Histogram({
      name: 'translator_send_duration_seconds',
      help: 'Time from send to edgeHub acknowledgement of an upstream message',
      labelNames,
      buckets: SECOND_BUCKETS,
      registers,
    });
    const gauge = (name: string, help: string, read: (s: PipelineStats) => number) =>
      new Gauge({
        name,
        help,
        labelNames,
        registers,
        collect: () => {
          const stats = this.statsSource?.();
          // Read at scrape time so the gauge is never stale.
          gaugeOf(name, this.registry)?.set(stats === undefined ? 0 : read(stats));
        },
      });
    gauge('translator_buffered_messages', 'Records held: buffered plus in flight', (s) => s.bufferedRecords);
    gauge(
      'translator_buffered_bytes',
      'Bytes of records held: buffered plus in flight',
      (s) => s.bufferedBytes,
    );
    gauge(
      'translator_inflight_batches',
      'Upstream messages awaiting edgeHub acknowledgement',
      (s) => s.inFlightBatches,
    );
    // Zero series per reason so dashboards show 0 rather than "no data".
    for (const reason of DEAD_LETTER_REASONS) this.deadLettered.inc({ reason }, 0);
    this.dropped.inc({ reason: 'buffer-full' }, 0);

    this.hooks = {
      onReceived: () => this.received.inc(),
      onBatchSent: (info) => this.recordBatch(info),
      onDeadLetter: (reason) => this.recordDeadLetter(reason),
      onDrop: (records) => this.dropped.inc({ reason: 'buffer-full' }, records),
      onSendError: () => this.sendErrors.inc(),
    };
  }

  /** Where the buffered gauges read from at scrape time (the pipeline in force, which may be rebuilt). */
  setStatsSource(source: (() => PipelineStats | undefined) | undefined): void {
    this.statsSource = source;
  }

  /** Prometheus text of every series. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /**
   * Starts the HTTP endpoint (`GET /metrics`); resolves with the bound port. `address` overrides
   * the constructor's host and port (a twin change restarts the endpoint elsewhere).
   * @throws Error when the port is taken.
   */
  async start(address?: { host: string; port: number }): Promise<number> {
    if (this.server) return (this.server.address() as AddressInfo).port;
    const server = createServer((req, res) => {
      if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
        res.writeHead(404).end();
        return;
      }
      this.registry.metrics().then(
        (body) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(body),
        (err: unknown) => res.writeHead(500).end(String(err)),
      );
    });
    server.listen(
      address?.port ?? this.options.port ?? 9600,
      address?.host ?? this.options.host ?? '127.0.0.1',
    );
    // events.once rejects on 'error' (port taken).
    await once(server, 'listening');
    this.server = server;
    return (server.address() as AddressInfo).port;
  }

  /** Stops the HTTP endpoint. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private recordBatch(info: BatchInfo): void {
    this.sent.inc(info.records);
    this.batches.inc({ encoding: info.encoding, trigger: info.trigger });
    this.batchMessages.observe(info.records);
    this.batchBytes.observe(info.messageBytes);
    this.sendDuration.observe(info.sendDurationMs / 1000);
  }

  private recordDeadLetter(reason: DeadLetterReason): void {
    this.deadLettered.inc({ reason });
  }
}

function gaugeOf(name: string, registry: Registry): Gauge | undefined {
  return registry.getSingleMetric(name) as Gauge | undefined;
}
