import { statfsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname } from 'node:path';
import { Counter, Gauge, Registry, Summary } from 'prom-client';

/** Options for {@link EdgeHubMetrics}. */
export interface EdgeHubMetricsOptions {
  /** `iothub` label: the IoT Hub host name. */
  readonly iothub: string;
  /** `edge_device` label: the edge device id. */
  readonly edgeDevice: string;
  /** `instance_number` label: distinguishes edgeHub restarts. Default a random id per process. */
  readonly instanceNumber?: string;
  /** Folder whose disk `edgeAgent_available_disk_space_bytes` reports (edgeHub's storage folder). */
  readonly storageFolder: string;
}

/** Why edgeHub dropped messages (`edgehub_messages_dropped_total{reason}`). */
export type DropReason = 'no_route' | 'ttl_expiry' | 'store_full';

/** A queue's length, as the store reports it. */
export interface QueueLengthSample {
  readonly endpoint: string;
  readonly priority: number;
  readonly length: number;
}

/**
 * edgeHub's built-in metrics (edge-facts §5) in a registry of their own (never prom-client's
 * global one, so several runtimes can live in one process), served as Prometheus text on
 * `/metrics` by a small HTTP server on 127.0.0.1.
 */
export class EdgeHubMetrics {
  /** The registry holding every metric below. */
  readonly registry: Registry;
  private readonly options: EdgeHubMetricsOptions;
  private readonly received: Counter<'id' | 'route_output'>;
  private readonly sent: Counter<'from' | 'to' | 'from_route_output' | 'to_route_input' | 'priority'>;
  private readonly dropped: Counter<'reason' | 'from' | 'from_route_output'>;
  private readonly size: Summary<'id'>;
  private readonly sendDuration: Summary<'from' | 'to'>;
  private queueSource: () => readonly QueueLengthSample[] = () => [];
  private server: Server | undefined;
  private listenUrl: string | undefined;

  constructor(options: EdgeHubMetricsOptions) {
    this.options = options;
    this.registry = new Registry();
    this.registry.setDefaultLabels({
      iothub: options.iothub,
      edge_device: options.edgeDevice,
      instance_number: options.instanceNumber ?? Math.random().toString(16).slice(2, 10),
    });
    const registers = [this.registry];
    const self = this;
    new Gauge({
      name: 'edgehub_queue_length',
      help: 'Messages waiting in each endpoint and priority queue',
      labelNames: ['endpoint', 'priority'] as const,
      registers,
      collect() {
        this.reset();
        for (const q of self.queueSource())
          this.set({ endpoint: q.endpoint, priority: String(q.priority) }, q.length);
      },
    });
    this.received = new Counter({
      name: 'edgehub_messages_received_total',
      help: 'Messages received from clients',
      labelNames: ['id', 'route_output'] as const,
      registers,
    });
    this.sent = new Counter({
      name: 'edgehub_messages_sent_total',
      help: 'Messages sent to clients or upstream',
      labelNames: ['from', 'to', 'from_route_output', 'to_route_input', 'priority'] as const,
      registers,
    });
    this.dropped = new Counter({
      name: 'edgehub_messages_dropped_total',
      help: 'Messages removed because of reason',
      labelNames: ['reason', 'from', 'from_route_output'] as const,
      registers,
    });
    this.size = new Summary({
      name: 'edgehub_message_size_bytes',
      help: 'Size of messages received from clients',
      labelNames: ['id'] as const,
      percentiles: [0.5, 0.9, 0.99],
      registers,
    });
    this.sendDuration = new Summary({
      name: 'edgehub_message_send_duration_seconds',
      help: 'Time taken to send a message (upstream: one batch round trip)',
      labelNames: ['from', 'to'] as const,
      percentiles: [0.5, 0.9, 0.99],
      registers,
    });
    new Gauge({
      name: 'edgeAgent_available_disk_space_bytes',
      help: 'Free disk space under the edgeHub storage folder',
      labelNames: ['disk_name'] as const,
      registers,
      collect() {
        this.reset();
        const free = freeBytes(self.options.storageFolder);
        if (free !== undefined) this.set({ disk_name: self.options.storageFolder }, free);
      },
    });
  }

  /** URL of `/metrics` once started. */
  get url(): string | undefined {
    return this.listenUrl;
  }

  /** Sets where queue lengths come from (the store), read at each scrape. */
  setQueueLengthSource(source: () => readonly QueueLengthSample[]): void {
    this.queueSource = source;
  }

  /** Counts one message received from `sender` (`device/module`) and observes its size. */
  messageReceived(sender: string, routeOutput: string, sizeBytes: number): void {
    this.received.inc({ id: sender, route_output: routeOutput });
    this.size.observe({ id: sender }, sizeBytes);
  }

  /** Counts `count` messages delivered to `to` (`upstream` or `module/input`). */
  messagesSent(
    labels: { from: string; to: string; fromOutput: string; toInput: string; priority: number },
    count: number,
  ): void {
    this.sent.inc(
      {
        from: labels.from,
        to: labels.to,
        from_route_output: labels.fromOutput,
        to_route_input: labels.toInput,
        priority: String(labels.priority),
      },
      count,
    );
  }

  /** Counts dropped messages. */
  messagesDropped(reason: DropReason, count: number, from = '', fromOutput = ''): void {
    if (count > 0) this.dropped.inc({ reason, from, from_route_output: fromOutput }, count);
  }

  /** Observes one send (an upstream batch or a module delivery), seconds. */
  observeSendDuration(from: string, to: string, seconds: number): void {
    this.sendDuration.observe({ from, to }, seconds);
  }

  /** The Prometheus text exposition of every metric. */
  metricsText(): Promise<string> {
    return this.registry.metrics();
  }

  /**
   * Serves `/metrics` on `host:port` (port 0 = ephemeral). Resolves with the URL.
   * @throws when the port is taken.
   */
  async start(port: number, host = '127.0.0.1'): Promise<string> {
    const server = createServer((req, res) => {
      if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
        res.writeHead(404).end();
        return;
      }
      this.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(text),
        (err: unknown) => res.writeHead(500).end(String(err)),
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    const addr = server.address() as AddressInfo;
    this.listenUrl = `http://${host}:${addr.port}/metrics`;
    return this.listenUrl;
  }

  /** Stops the HTTP server. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server === undefined) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

// The storage folder may not exist yet: report the disk of its nearest existing ancestor.
function freeBytes(folder: string): number | undefined {
  let dir = folder;
  for (;;) {
    try {
      const s = statfsSync(dir);
      return s.bavail * s.bsize;
    } catch {
      const parent = dirname(dir);
      if (parent === dir) return undefined;
      dir = parent;
    }
  }
}
