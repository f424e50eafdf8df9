import type { Duplex } from 'node:stream';
import type { IClientOptions, IPublishPacket, MqttClient } from 'mqtt';
import mqtt from 'mqtt';
import type { Logger } from '../../common/index.js';
import { EdgePerfError, quietMqttLog, toError } from '../../common/index.js';
import type { TappedPublish } from './publish-tap.js';
import { PublishTap } from './publish-tap.js';

/** One message read from the field broker. */
export interface SourceMessage {
  readonly topic: string;
  readonly payload: Buffer;
  /** Unix ms at which the translator read it. */
  readonly receivedAtMs: number;
  /** QoS it was delivered with. */
  readonly qos: 0 | 1 | 2;
  /** True when the broker marked it as a redelivery (DUP). */
  readonly redelivered: boolean;
  /**
   * Acknowledges it to the broker (PUBACK). Idempotent. Acks go out in arrival order (MQTT
   * 3.1.1 §4.6), so an ack waits for earlier messages' acks. An ack after the connection was
   * lost is dropped: the broker redelivers the message on the new connection.
   */
  ack(): void;
}

/**
 * Receives each message. Return nothing to keep reading; return a promise to hold the read loop
 * (and so the socket) until it settles — that is how the pipeline pushes back on the broker.
 */
export type SourceMessageHandler = (message: SourceMessage) => Promise<void> | undefined;

/** Options for {@link MqttSource}. */
export interface MqttSourceOptions {
  /** Broker URL, e.g. `mqtt://127.0.0.1:1883` (`mqtts://` for TLS). */
  url: string;
  /** Topic filters to subscribe to; at least one. */
  topics: readonly string[];
  /** Stable client id: the broker keys the persistent session on it. Default `edgeperf-translator`. */
  clientId?: string;
  /** Subscription QoS; default 1 (needed for at-least-once). */
  qos?: 0 | 1;
  /** MQTT protocol version; default 4 (3.1.1, what aedes and most field brokers speak). */
  protocolVersion?: 4 | 5;
  /** Persistent session: false keeps unacknowledged messages at the broker across reconnects. Default false. */
  clean?: boolean;
  /**
   * MQTT 5 only: how long the broker keeps the session after a disconnect, seconds. Default
   * 4294967295 (never expires), the 3.1.1 meaning of clean false; v5's own default 0 would drop
   * unacknowledged messages at every disconnect.
   */
  sessionExpiryIntervalSecs?: number;
  username?: string;
  password?: string;
  /** Keepalive, seconds; default 60. */
  keepaliveSecs?: number;
  /** First reconnect delay, ms; doubles per failed attempt up to the max. Default 500. */
  reconnectMinDelayInMs?: number;
  /** Longest reconnect delay, ms; default 30,000. */
  reconnectMaxDelayInMs?: number;
  /** Connect timeout per attempt, ms; default 10,000. */
  connectTimeoutInMs?: number;
  /** Extra MQTT.js options (TLS material, …), applied under ours. */
  clientOptions?: Partial<IClientOptions>;
  logger?: Logger;
}

/** Counters of the source, for stats and metrics. */
export interface MqttSourceStats {
  readonly connected: boolean;
  readonly connects: number;
  readonly received: number;
  readonly redelivered: number;
  /** Messages read but not yet acknowledged to the broker. */
  readonly unacked: number;
  /** Acks dropped because their connection was gone (the broker redelivers those). */
  readonly staleAcks: number;
  /** True while the read loop is held by the handler (back-pressure). */
  readonly paused: boolean;
}

/** Acks of one connection, sent in arrival order. */
interface AckQueue {
  readonly stream: Duplex;
  readonly entries: AckEntry[];
  head: number;
  /** A drain is queued for the end of this tick. */
  drainQueued: boolean;
}

interface AckEntry {
  readonly messageId: number;
  done: boolean;
}

/**
 * MQTT.js rejects the message-handling callback's error silently in 5.x (the packet handler's
 * `done` ignores it), which skips its own PUBACK: we send the PUBACK ourselves once edgeHub has
 * the message. Pinned by mqtt 5.16.0; test/integration/translator-source-*.test.ts guard it.
 */
const DEFER_ACK = new Error('edgeperf: PUBACK deferred until upstream ack');

/**
 * The translator's field-side MQTT client. Subscribes with QoS 1 on a persistent session and
 * defers each PUBACK until the pipeline says the message is safe upstream, so the broker keeps
 * (and after a reconnect redelivers) everything not yet acknowledged by edgeHub.
 */
export class MqttSource {
  private readonly options: MqttSourceOptions;
  private readonly handler: SourceMessageHandler;
  private client: MqttClient | undefined;
  private ackQueue: AckQueue | undefined;
  private reconnectDelay: number;
  private connects = 0;
  private received = 0;
  private redelivered = 0;
  private unacked = 0;
  private staleAcks = 0;
  private paused = false;
  private stopped = false;

  constructor(options: MqttSourceOptions, handler: SourceMessageHandler) {
    this.options = options;
    this.handler = handler;
    this.reconnectDelay = options.reconnectMinDelayInMs ?? 500;
  }

  /** Counters since start. */
  stats(): MqttSourceStats {
    return {
      connected: this.client?.connected ?? false,
      connects: this.connects,
      received: this.received,
      redelivered: this.redelivered,
      unacked: this.unacked,
      staleAcks: this.staleAcks,
      paused: this.paused,
    };
  }

  /**
   * Connects and subscribes; resolves once the first subscription is granted. Keeps retrying with
   * backoff while the broker is unreachable (the promise waits); rejects when {@link stop} is
   * called first or the broker refuses the subscription.
   * @throws EdgePerfError `E_SOURCE_CONFIG` when no topic is given.
   */
  async start(): Promise<void> {
    const o = this.options;
    if (o.topics.length === 0)
      throw new EdgePerfError('E_SOURCE_CONFIG', 'source.topics: at least one topic filter is required', {
        exitCode: 2,
      });
    if (this.client !== undefined) return;
    this.stopped = false;
    const minDelay = o.reconnectMinDelayInMs ?? 500;
    const maxDelay = o.reconnectMaxDelayInMs ?? 30_000;
    const client = mqtt.connect(o.url, {
      ...o.clientOptions,
      clientId: o.clientId ?? 'edgeperf-translator',
      clean: o.clean ?? false,
      protocolVersion: o.protocolVersion ?? 4,
      keepalive: o.keepaliveSecs ?? 60,
      reconnectPeriod: minDelay,
      connectTimeout: o.connectTimeoutInMs ?? 10_000,
      ...quietMqttLog(),
      ...(o.username === undefined ? {} : { username: o.username }),
      ...(o.password === undefined ? {} : { password: o.password }),
      // Subscriptions live in the persistent session; MQTT.js re-subscribes when it was lost.
      resubscribe: true,
      // The stream builder is wrapped below before the first connect.
      manualConnect: true,
      ...((o.protocolVersion ?? 4) === 5
        ? {
            properties: {
              ...o.clientOptions?.properties,
              sessionExpiryInterval: o.sessionExpiryIntervalSecs ?? 0xffff_ffff,
            },
          }
        : {}),
    });
    this.client = client;
    this.tapStreams(client, (o.protocolVersion ?? 4) === 5 ? 5 : 4);
    // Only what the tap passes on arrives here: QoS 2 and anything unusual.
    client.handleMessage = (packet, callback) => this.onPublish(client, packet, callback);
    client.on('connect', () => {
      this.connects++;
      this.reconnectDelay = minDelay;
      client.options.reconnectPeriod = minDelay;
      this.options.logger?.info({ url: o.url, connects: this.connects }, 'source connected');
    });
    client.on('close', () => {
      // Exponential backoff: MQTT.js reads reconnectPeriod each time it schedules a reconnect.
      this.reconnectDelay = Math.min(this.reconnectDelay * 2, maxDelay);
      client.options.reconnectPeriod = this.reconnectDelay;
    });
    client.on('offline', () =>
      this.options.logger?.warn({ url: o.url }, 'source broker unreachable; retrying'),
    );
    client.on('error', (err) => this.options.logger?.warn({ err: err.message }, 'source connection error'));
    client.connect();

    await new Promise<void>((resolve, reject) => {
      const onConnect = (): void => {
        client.off('end', onEnd);
        resolve();
      };
      const onEnd = (): void => {
        client.off('connect', onConnect);
        reject(new EdgePerfError('E_SOURCE_STOPPED', 'source stopped before it connected'));
      };
      client.once('connect', onConnect);
      client.once('end', onEnd);
    });
    const qos = o.qos ?? 1;
    const granted = await client.subscribeAsync(
      o.topics.map((t) => t),
      { qos },
    );
    const refused = granted.filter((g) => g.qos === 128);
    if (refused.length > 0) {
      throw new EdgePerfError(
        'E_SOURCE_SUBSCRIBE',
        `source broker refused subscription to ${refused.map((g) => g.topic).join(', ')}`,
      );
    }
  }

  /**
   * Disconnects without acknowledging what is still pending: the broker keeps those messages in
   * the persistent session and redelivers them on the next start. Idempotent.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    const client = this.client;
    if (client === undefined) return;
    this.client = undefined;
    this.ackQueue = undefined;
    client.removeAllListeners('connect');
    client.removeAllListeners('close');
    client.removeAllListeners('offline');
    // Keep an error listener until the end: a late socket error must not crash the process.
    await client.endAsync(false).catch(() => client.endAsync(true));
  }

  /**
   * Puts a {@link PublishTap} between MQTT.js and every socket it opens (first connect and each
   * reconnect), so QoS 0/1 messages skip MQTT.js's receive path. MQTT.js keeps its stream
   * builder (URL, TLS and WebSocket handling) in a field its types call private; pinned by mqtt
   * 5.16.0 and guarded by test/integration/translator-source-*.test.ts.
   */
  private tapStreams(client: MqttClient, protocolVersion: 4 | 5): void {
    const holder = client as unknown as { streamBuilder?: unknown };
    const build = holder.streamBuilder;
    if (typeof build !== 'function')
      throw new Error('mqtt: MqttClient.streamBuilder is missing; the source needs it');
    const onTapped = (tap: PublishTap, p: TappedPublish): Promise<void> | undefined =>
      this.deliver(tap, p.topic, p.payload, p.qos, p.messageId, p.dup);
    holder.streamBuilder = (c: MqttClient): Duplex =>
      new PublishTap((build as (c: MqttClient) => Duplex)(c), protocolVersion, onTapped);
  }

  /** MQTT.js's path, for what the tap passed on (QoS 2 keeps MQTT.js's own PUBREC flow). */
  private onPublish(client: MqttClient, packet: IPublishPacket, callback: (error?: Error) => void): void {
    const qos = packet.qos;
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
    const hold = this.deliver(client.stream, packet.topic, payload, qos, packet.messageId ?? 0, packet.dup);
    const release = (): void => callback(qos === 1 ? DEFER_ACK : undefined);
    if (hold === undefined) release();
    else void hold.then(release);
  }

  /**
   * Hands one message to the handler with its ack. Returns a promise (that never rejects) while
   * the handler holds the read loop.
   */
  private deliver(
    stream: Duplex,
    topic: string,
    payload: Buffer,
    qos: 0 | 1 | 2,
    messageId: number,
    dup: boolean,
  ): Promise<void> | undefined {
    let ack: () => void;
    if (qos === 1) {
      // One ack queue per connection: acks of an old connection mean nothing to the broker (it
      // redelivers those messages on the new one).
      let queue = this.ackQueue;
      if (queue === undefined || queue.stream !== stream) {
        queue = { stream, entries: [], head: 0, drainQueued: false };
        this.ackQueue = queue;
      }
      const entry: AckEntry = { messageId, done: false };
      queue.entries.push(entry);
      this.unacked++;
      ack = this.ackFor(queue, entry);
    } else {
      ack = noop;
    }
    this.received++;
    if (dup) this.redelivered++;
    const message: SourceMessage = { topic, payload, receivedAtMs: Date.now(), qos, redelivered: dup, ack };
    let hold: Promise<void> | undefined;
    try {
      hold = this.handler(message);
    } catch (err) {
      this.options.logger?.error({ err: toError(err).message }, 'source handler threw');
    }
    return hold === undefined ? undefined : this.holdWhile(hold);
  }

  /** Marks the source paused until `hold` settles; made apart from {@link deliver} (see {@link ackFor}). */
  private holdWhile(hold: Promise<void>): Promise<void> {
    this.paused = true;
    return hold.then(
      () => {
        this.paused = false;
      },
      (err: unknown) => {
        this.paused = false;
        this.options.logger?.error({ err: toError(err).message }, 'source handler failed');
      },
    );
  }

  /**
   * The ack of one message, made outside {@link deliver} on purpose: V8 gives all closures of a
   * call one shared context, so an ack made there would keep MQTT.js's callback, and with it the
   * packet and its payload, alive for as long as the record waits in the buffer (measured: 19k
   * packets and 50 MB of socket buffers retained under overload).
   */
  private ackFor(queue: AckQueue, entry: AckEntry): () => void {
    return () => {
      if (entry.done) return;
      entry.done = true;
      this.unacked--;
      if (queue !== this.ackQueue || this.stopped) this.staleAcks++;
      else if (!queue.drainQueued) this.queueDrain(queue);
    };
  }

  /**
   * Drains once the current tick is done: a batch acks its few hundred messages in one loop, and
   * they leave in one write instead of one write (and one broker read) each.
   */
  private queueDrain(queue: AckQueue): void {
    queue.drainQueued = true;
    queueMicrotask(() => {
      queue.drainQueued = false;
      this.drainAcks(queue);
    });
  }

  private drainAcks(queue: AckQueue): void {
    const stream = queue.stream;
    const entries = queue.entries;
    const start = queue.head;
    while (queue.head < entries.length && (entries[queue.head] as AckEntry).done) queue.head++;
    const n = queue.head - start;
    if (n > 0) {
      if (queue !== this.ackQueue || this.stopped || !stream.writable) {
        this.staleAcks += n;
      } else {
        // PUBACK: fixed header 0x40, remaining length 2, packet id; valid for MQTT 3.1.1 and 5
        // (v5 may omit reason code 0 and properties).
        const buf = Buffer.allocUnsafe(4 * n);
        for (let i = 0; i < n; i++) {
          const id = (entries[start + i] as AckEntry).messageId;
          buf[4 * i] = 0x40;
          buf[4 * i + 1] = 0x02;
          buf[4 * i + 2] = (id >> 8) & 0xff;
          buf[4 * i + 3] = id & 0xff;
        }
        stream.write(buf);
      }
    }
    // Compact the queue now and then instead of shifting on every ack.
    if (queue.head > 1024 && queue.head * 2 > entries.length) {
      entries.splice(0, queue.head);
      queue.head = 0;
    }
  }
}

function noop(): void {}
