import { randomBytes } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import { EdgePerfError, type Logger, quietMqttLog, redactSecrets, toError } from '../common/index.js';
import type { BurstPublisher } from './burst.js';

/** Options of {@link MqttPublisher}. */
export interface MqttPublisherOptions {
  /** Broker URL, e.g. `mqtt://127.0.0.1:1883`. */
  readonly brokerUrl: string;
  readonly username?: string;
  readonly password?: string;
  /** MQTT client id; default `edgeperf-sim-<random>`. */
  readonly clientId?: string;
  /** Delay between reconnect attempts, ms; default 1000. */
  readonly reconnectPeriodMs?: number;
  /** Connection failures and reconnects are logged here. */
  readonly logger?: Logger;
}

/**
 * Publishes to the source broker with MQTT.js at QoS 1; `publish` resolves on PUBACK.
 * While the broker is away MQTT.js queues publishes and resends them after reconnecting; the
 * burst engine's in-flight bound keeps that queue small.
 */
export class MqttPublisher implements BurstPublisher {
  private readonly options: MqttPublisherOptions;
  private client: MqttClient | undefined;

  constructor(options: MqttPublisherOptions) {
    this.options = options;
  }

  /**
   * Connects. With `waitForBroker` (the CLI) it fails fast when the broker is unreachable; without
   * it (the module) it returns at once and MQTT.js keeps retrying in the background.
   * @throws EdgePerfError `E_SOURCE_BROKER` when `waitForBroker` and the first connection fails.
   */
  async start(options: { waitForBroker: boolean }): Promise<void> {
    const o = this.options;
    const opts: mqtt.IClientOptions = {
      clientId: o.clientId ?? `edgeperf-sim-${randomBytes(4).toString('hex')}`,
      protocolVersion: 4,
      clean: true,
      reconnectPeriod: o.reconnectPeriodMs ?? 1000,
      connectTimeout: 10_000,
      ...quietMqttLog(),
      ...(o.username === undefined ? {} : { username: o.username }),
      ...(o.password === undefined ? {} : { password: o.password }),
    };
    const log = o.logger;
    if (options.waitForBroker) {
      try {
        this.client = await mqtt.connectAsync(o.brokerUrl, { ...opts, reconnectPeriod: 0 }, false);
      } catch (err) {
        throw new EdgePerfError(
          'E_SOURCE_BROKER',
          `cannot connect to the source broker ${redactSecrets(o.brokerUrl)}: ${toError(err).message}`,
          { cause: err },
        );
      }
      // Connected: from now on ride out broker restarts like the module does.
      this.client.options.reconnectPeriod = opts.reconnectPeriod ?? 1000;
    } else {
      this.client = mqtt.connect(o.brokerUrl, opts);
    }
    this.client.on('error', (err) => log?.warn({ err: toError(err).message }, 'source broker error'));
    this.client.on('offline', () => log?.warn('source broker offline; publishes are queued'));
    this.client.on('connect', () =>
      log?.info({ broker: redactSecrets(o.brokerUrl) }, 'connected to source broker'),
    );
  }

  /** True while connected to the broker. */
  get connected(): boolean {
    return this.client?.connected === true;
  }

  /** @throws EdgePerfError `E_NOT_STARTED` (as a rejection) before `start`. */
  async publish(topic: string, body: Buffer): Promise<void> {
    if (this.client === undefined) throw new EdgePerfError('E_NOT_STARTED', 'publisher not started');
    await this.client.publishAsync(topic, body, { qos: 1 });
  }

  /** Disconnects; publishes not yet acknowledged are dropped. */
  async stop(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    if (c !== undefined) await c.endAsync(true);
  }
}
