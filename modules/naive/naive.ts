import deviceSdk, { type ModuleClient } from 'azure-iot-device';
import mqttSdk from 'azure-iot-device-mqtt';
import mqtt, { type IPublishPacket, type MqttClient } from 'mqtt';
import { z } from 'zod';
import { type Logger, parseSettings, toError } from '../common/index.js';

// CommonJS packages: Node's ESM loader cannot name their exports, so take them off the default.
const { Message, ModuleClient: ModuleClientClass } = deviceSdk;
const { Mqtt } = mqttSdk;

/** Settings of the naive module (env vars, validated where they enter). */
export interface NaiveSettings {
  /** Source broker; env `SourceUrl`; default `mqtt://localhost:1883`. */
  readonly sourceUrl: string;
  /** Topic filter; env `SourceTopics` (one filter); default `#`. */
  readonly sourceTopic: string;
  /** Output the messages go to; env `OutputName`; default `output1`. */
  readonly outputName: string;
  /**
   * `sendOutputEvent` calls awaiting edgeHub's ack at once; env `NaiveMaxInFlight`; default 16, 1–1000.
   * 1 is "await each send". The source is read no faster than this window drains, so memory is bounded.
   */
  readonly maxInFlight: number;
}

const envSchema = z.object({
  SourceUrl: z
    .string()
    .regex(/^(mqtts?|tcp|tls):\/\/\S+$/i, { error: 'must be an mqtt:// or mqtts:// URL' })
    .default('mqtt://localhost:1883'),
  SourceTopics: z.string().min(1, { error: 'must be a topic filter' }).default('#'),
  OutputName: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,64}$/, { error: 'must be 1–64 letters, digits, _ . or -' })
    .default('output1'),
  NaiveMaxInFlight: z
    .string()
    .regex(/^\d+$/, { error: 'must be an integer 1–1000' })
    .transform(Number)
    .pipe(
      z
        .number()
        .int()
        .min(1, { error: 'must be an integer 1–1000' })
        .max(1000, { error: 'must be an integer 1–1000' }),
    )
    .default(16),
});

/**
 * Reads {@link NaiveSettings} from env vars; empty values count as unset.
 * @throws ConfigError naming every invalid variable.
 */
export function naiveSettingsFromEnv(env: NodeJS.ProcessEnv): NaiveSettings {
  const input: Record<string, string> = {};
  for (const k of Object.keys(envSchema.shape)) {
    const v = env[k];
    if (v !== undefined && v.trim() !== '') input[k] = v.trim();
  }
  const s = parseSettings(envSchema, input, 'env');
  return {
    sourceUrl: s.SourceUrl,
    sourceTopic: s.SourceTopics,
    outputName: s.OutputName,
    maxInFlight: s.NaiveMaxInFlight,
  };
}

/** `getStats` payload of the naive module. */
export interface NaiveStats {
  /** Source messages received. */
  readonly received: number;
  /** Messages edgeHub acknowledged. */
  readonly acked: number;
  /** Sends that failed (the message is lost: the naive module does not retry). */
  readonly failed: number;
  readonly inFlight: number;
  /** Unix ms of the first received message; 0 before. */
  readonly firstReceivedAtMs: number;
  /** Unix ms of the last ack; 0 before. */
  readonly lastAckedAtMs: number;
}

/** Options for {@link NaiveModule}. */
export interface NaiveModuleOptions {
  readonly settings: NaiveSettings;
  readonly logger: Logger;
}

/**
 * The competitor the benchmark measures the translator against: what the Azure IoT Edge Node
 * samples do. An MQTT.js subscriber to the source broker and one `sendOutputEvent` per source
 * message over SDK MQTT (`ModuleClient.fromEnvironment(Mqtt)`), with at most `maxInFlight`
 * sends awaiting edgeHub's ack (a small fixed window; 1 = await each). No batching, no retry.
 * Direct method `getStats` returns {@link NaiveStats}.
 */
export class NaiveModule {
  private readonly opts: NaiveModuleOptions;
  private client: ModuleClient | undefined;
  private source: MqttClient | undefined;
  private received = 0;
  private acked = 0;
  private failed = 0;
  private inFlight = 0;
  private firstReceivedAtMs = 0;
  private lastAckedAtMs = 0;
  /** Source reads wait here while the window is full (MQTT.js reads no further until `done`). */
  private waiting: (() => void)[] = [];

  constructor(options: NaiveModuleOptions) {
    this.opts = options;
  }

  /** Current counters. */
  stats(): NaiveStats {
    return {
      received: this.received,
      acked: this.acked,
      failed: this.failed,
      inFlight: this.inFlight,
      firstReceivedAtMs: this.firstReceivedAtMs,
      lastAckedAtMs: this.lastAckedAtMs,
    };
  }

  /**
   * Connects to edgeHub (env `EdgeHubConnectionString`/`EdgeModuleCACertificateFile` or the workload
   * API), registers `getStats`, then subscribes to the source.
   * @throws Error when edgeHub or the broker refuses the connection.
   */
  async start(): Promise<void> {
    const { settings, logger } = this.opts;
    const client = await ModuleClientClass.fromEnvironment(Mqtt);
    this.client = client;
    client.on('error', (err: Error) => logger.warn({ err: err.message }, 'module client error'));
    await client.open();
    client.onMethod('getStats', (_req, res) => {
      // The SDK's callback type marks the response optional; it always passes it.
      res
        ?.send(200, this.stats())
        .catch((err: unknown) => logger.warn({ err: toError(err).message }, 'getStats reply failed'));
    });
    const source = mqtt.connect(settings.sourceUrl, {
      clientId: 'edgeperf-naive',
      clean: true,
      reconnectPeriod: 1000,
    });
    // MQTT.js reads no further packet until `done` is called: that is the window's backpressure.
    source.handleMessage = (packet, done) => this.onMessage(packet, done);
    this.source = source;
    source.on('error', (err) => logger.warn({ err: err.message }, 'source error'));
    await new Promise<void>((resolve, reject) => {
      source.once('connect', () => resolve());
      source.once('error', reject);
    });
    await source.subscribeAsync(settings.sourceTopic, { qos: 1 });
    logger.info({ topic: settings.sourceTopic, maxInFlight: settings.maxInFlight }, 'naive module running');
  }

  private onMessage(packet: IPublishPacket, done: (err?: Error) => void): void {
    this.received++;
    if (this.firstReceivedAtMs === 0) this.firstReceivedAtMs = Date.now();
    const client = this.client;
    if (!client) {
      done();
      return;
    }
    const body = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
    const msg = new Message(body);
    msg.contentType = 'application/json';
    msg.contentEncoding = 'utf-8';
    this.inFlight++;
    client
      .sendOutputEvent(this.opts.settings.outputName, msg)
      .then(() => {
        this.acked++;
        this.lastAckedAtMs = Date.now();
      })
      .catch((err: unknown) => {
        this.failed++;
        this.opts.logger.warn({ err: toError(err).message }, 'sendOutputEvent failed');
      })
      .finally(() => {
        this.inFlight--;
        this.waiting.shift()?.();
      });
    // Acknowledge the source (and read the next message) at once while the window has room.
    if (this.inFlight < this.opts.settings.maxInFlight) done();
    else this.waiting.push(() => done());
  }

  /** Stops reading, waits briefly for sends in flight, closes both clients. */
  async stop(): Promise<void> {
    const source = this.source;
    this.source = undefined;
    await source?.endAsync().catch(() => undefined);
    const deadline = Date.now() + 5000;
    while (this.inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const client = this.client;
    this.client = undefined;
    await client?.close().catch(() => undefined);
  }
}
