import type { EnvelopeRecord, Logger } from '../common/index.js';
import { toError } from '../common/index.js';
import type { BatcherOptions, BatchInfo } from './batcher/index.js';
import { Batcher, MAX_UPSTREAM_MESSAGE_BYTES, resolveBatcherOptions, Utf8Arena } from './batcher/index.js';
import type { DeadLetterReason, Decoder, DecoderOptions, RawJson } from './decoders/index.js';
import { createDecoder, DEAD_LETTER_REASONS } from './decoders/index.js';
import { plainRecordJson, RecordWriter } from './record-json.js';
import type {
  EmbeddedBrokerOptions,
  MqttSourceOptions,
  MqttSourceStats,
  SourceMessage,
} from './source/index.js';
import { EmbeddedBroker, MqttSource } from './source/index.js';
import type { UpstreamMessage, UpstreamTransport } from './upstream-transport.js';

/** What to do when `maxBufferedBytes` is reached. */
export type OverflowPolicy = 'backpressure' | 'drop-oldest';

/** Application property on a dead letter naming why it was rejected. */
export const DEAD_LETTER_REASON_PROPERTY = 'reason';
/** Application property on a dead letter naming its source topic (cut to 1 KiB). */
export const DEAD_LETTER_TOPIC_PROPERTY = 'source-topic';

/** Options for {@link Pipeline}. Defaults are applied in the constructor. */
export interface PipelineOptions {
  /** The field broker subscription; `url` may be omitted when the embedded broker is on. */
  source: Omit<MqttSourceOptions, 'url' | 'logger' | 'qos'> & {
    url?: string;
    /** 2 is served as 1: deferred PUBACK already gives at-least-once end to end. Default 1. */
    qos?: 0 | 1 | 2;
  };
  /** Start an aedes broker inside the module (field devices publish to it); default off. */
  embeddedBroker?: EmbeddedBrokerOptions;
  /** Payload decoder and topic template; default JSON, no template. */
  decoder?: DecoderOptions;
  /** Batching; `maxMessages: 1` (or `enabled: false`) = one upstream message per record. */
  batch?: Omit<BatcherOptions, 'maxBufferedBytes' | 'output'> & { enabled?: boolean };
  /** Module output for telemetry; default `output1`. */
  outputName?: string;
  /** Module output for rejected input; default `deadletter`. */
  deadLetterOutput?: string;
  /** Bytes of records held before the policy applies; default 16 MiB. */
  maxBufferedBytes?: number;
  /** Default `backpressure`: stop reading so the broker holds the backlog. */
  overflow?: OverflowPolicy;
  /** Hooks for metrics; each is called synchronously and must not throw (errors are logged). */
  hooks?: PipelineHooks;
  logger?: Logger;
}

/** Events for metrics (H3b's prom-client collectors subscribe here). */
export interface PipelineHooks {
  /** A source message was read. */
  onReceived?(message: { topic: string; bytes: number }): void;
  /** edgeHub acknowledged a batch (or a single-record message). */
  onBatchSent?(info: BatchInfo): void;
  /** A source message (or one record of it) went to the dead-letter output. */
  onDeadLetter?(reason: DeadLetterReason, detail: string): void;
  /** The `drop-oldest` policy dropped records. */
  onDrop?(records: number, bytes: number): void;
  /** A send failed and will be retried. */
  onSendError?(error: Error, attempt: number): void;
}

/** Counters (since start or the last {@link Pipeline.resetStats}) and gauges. */
export interface PipelineStats {
  /** Source messages read. */
  readonly received: number;
  readonly receivedBytes: number;
  /** Records decoded from them. */
  readonly records: number;
  /** Records acknowledged by edgeHub. */
  readonly sentRecords: number;
  /** Upstream messages acknowledged by edgeHub (batches, or single records). */
  readonly sentBatches: number;
  /** Upstream message bytes acknowledged (encoded body plus properties). */
  readonly sentBytes: number;
  /** Source messages that decoded to no record (empty array, Sparkplug NCMD/DCMD/STATE). */
  readonly ignored: number;
  readonly deadLetters: Readonly<Record<DeadLetterReason, number>>;
  /** Records dropped by the `drop-oldest` policy, and their bytes. */
  readonly dropped: number;
  readonly droppedBytes: number;
  /** Failed send attempts (each retried). */
  readonly sendErrors: number;
  /**
   * Unix ms of the first source message read and of the first and last edgeHub acknowledgement
   * (0 = none yet): `edgeperf` divides acknowledged records by this span for the source rate.
   */
  readonly firstReceivedAtMs: number;
  readonly firstSentAtMs: number;
  readonly lastSentAtMs: number;
  /** Gauges: records and bytes held (buffered + in flight), batches in flight. */
  readonly bufferedRecords: number;
  readonly bufferedBytes: number;
  readonly inFlightBatches: number;
  /** Source connection. */
  readonly source: MqttSourceStats;
}

/** Options for {@link Pipeline.stop}. */
export interface PipelineStopOptions {
  /** Send what is buffered before closing; default true. */
  flush?: boolean;
  /** Overall deadline, ms; default 10,000. What is not acknowledged by then is redelivered by the broker later. */
  deadlineMs?: number;
}

/** Lifecycle of a {@link Pipeline}. */
export type PipelineState =
  | { readonly kind: 'idle' }
  | { readonly kind: 'starting' }
  | { readonly kind: 'running' }
  | { readonly kind: 'stopping' }
  | { readonly kind: 'stopped' };

/**
 * A source message split into records: acked to the broker when every part is done. It holds the
 * ack, not the message: a buffered record must not keep the payload alive (MQTT.js payloads can be
 * views of a whole socket read, so one retained message kept ~64 KB; measured under overload).
 */
interface AckRef {
  remaining: number;
  readonly ack: () => void;
}

interface Counters {
  received: number;
  receivedBytes: number;
  records: number;
  sentRecords: number;
  sentBatches: number;
  sentBytes: number;
  ignored: number;
  deadLetters: Record<DeadLetterReason, number>;
  dropped: number;
  droppedBytes: number;
  sendErrors: number;
  firstReceivedAtMs: number;
  firstSentAtMs: number;
  lastSentAtMs: number;
}

const NEVER = new Promise<void>(() => {});

/** Dead letters awaiting edgeHub at once before the source is held (bounds their memory). */
const MAX_DEAD_LETTERS_IN_FLIGHT = 256;

/**
 * The translator's data path: field MQTT source → decoder → batcher → {@link UpstreamTransport}.
 * At-least-once: a source message is acknowledged to its broker only after edgeHub acknowledged
 * every upstream message holding its records (or its dead letter). Memory is bounded by
 * `maxBufferedBytes`: at the bound the source stops reading (the broker keeps the backlog) or,
 * with `drop-oldest`, the oldest buffered records are dropped, acknowledged and counted.
 *
 * The transport is owned by the caller (it also carries twin and methods): connect it before
 * {@link start} and close it after {@link stop}.
 */
export class Pipeline {
  private readonly options: PipelineOptions;
  private readonly transport: UpstreamTransport;
  private readonly log: Logger | undefined;
  private readonly hooks: PipelineHooks;
  private decoder: Decoder;
  private overflow: OverflowPolicy;
  private readonly batcher: Batcher<AckRef>;
  /** Where record JSON becomes UTF-8: one pass, no per-record byte count (utf8-arena.ts). */
  private readonly arena = new Utf8Arena();
  private readonly recordWriter = new RecordWriter();
  private broker: EmbeddedBroker | undefined;
  private source: MqttSource | undefined;
  private stateValue: PipelineState = { kind: 'idle' };
  private counters: Counters = newCounters();
  private readonly deadLetterSends = new Set<Promise<void>>();
  private readonly deadLetterAbort = new AbortController();
  private deadLetterRoomWaiters: (() => void)[] = [];

  constructor(options: PipelineOptions, transport: UpstreamTransport) {
    this.options = options;
    this.transport = transport;
    this.log = options.logger;
    this.hooks = options.hooks ?? {};
    this.decoder = createDecoder(options.decoder);
    this.overflow = options.overflow ?? 'backpressure';
    this.batcher = new Batcher<AckRef>(toBatcherOptions(options), {
      send: (output, message) => this.transport.send(output, message),
      onAcked: (tokens, info) => this.onBatchAcked(tokens, info),
      onSendError: (error, attempt) => {
        this.counters.sendErrors++;
        this.log?.warn({ err: error.message, attempt }, 'upstream send failed; retrying');
        this.callHook(() => this.hooks.onSendError?.(error, attempt));
      },
      onEncoded: (json) => {
        for (const j of json) this.arena.release(j);
      },
    });
  }

  /** Current lifecycle state. */
  get state(): PipelineState {
    return this.stateValue;
  }

  /** URL of the embedded broker when it runs (field devices publish there). */
  get embeddedBrokerUrl(): string | undefined {
    return this.broker?.port === undefined ? undefined : this.broker.url;
  }

  /**
   * Starts the embedded broker (if configured), the batcher and the source; resolves once the
   * source is subscribed. While the field broker is unreachable it keeps retrying with backoff.
   * @throws Error when the embedded broker cannot listen or the subscription is refused.
   */
  async start(): Promise<void> {
    if (this.stateValue.kind !== 'idle') return;
    this.stateValue = { kind: 'starting' };
    try {
      if (this.options.embeddedBroker !== undefined) {
        this.broker = new EmbeddedBroker({
          ...this.options.embeddedBroker,
          ...(this.log ? { logger: this.log } : {}),
        });
        await this.broker.start();
      }
      const src = this.options.source;
      const url = src.url ?? this.broker?.url;
      if (url === undefined) throw new Error('source.url: required unless the embedded broker is enabled');
      this.batcher.start();
      this.source = new MqttSource(
        { ...src, url, qos: src.qos === 0 ? 0 : 1, ...(this.log ? { logger: this.log } : {}) },
        this.onMessage,
      );
      await this.source.start();
      this.stateValue = { kind: 'running' };
    } catch (err) {
      await this.stop({ flush: false, deadlineMs: 1000 });
      throw err;
    }
  }

  /**
   * Stops reading, flushes (by default) and disconnects from the source, within `deadlineMs`.
   * Messages read but not acknowledged upstream by then stay at the broker for redelivery.
   */
  async stop(options: PipelineStopOptions = {}): Promise<void> {
    if (this.stateValue.kind === 'stopped' || this.stateValue.kind === 'stopping') return;
    this.stateValue = { kind: 'stopping' };
    const deadline = Date.now() + (options.deadlineMs ?? 10_000);
    // Keep the source connected while flushing so the acks of flushed batches reach the broker;
    // onMessage holds any new message unread (state is stopping).
    await this.batcher.close({
      flush: options.flush ?? true,
      deadlineMs: Math.max(0, deadline - Date.now()),
    });
    await waitAll(this.deadLetterSends, deadline);
    this.deadLetterAbort.abort();
    await this.source?.stop();
    this.source = undefined;
    await this.broker?.stop();
    this.broker = undefined;
    this.stateValue = { kind: 'stopped' };
  }

  /** Sends everything buffered now; resolves when edgeHub acknowledged it. */
  flush(): Promise<void> {
    return this.batcher.flush();
  }

  /** Counters and gauges now. */
  stats(): PipelineStats {
    const c = this.counters;
    return {
      ...c,
      deadLetters: { ...c.deadLetters },
      bufferedRecords: this.batcher.bufferedRecords,
      bufferedBytes: this.batcher.bufferedBytes,
      inFlightBatches: this.batcher.inFlightBatches,
      source: this.source?.stats() ?? {
        connected: false,
        connects: 0,
        received: 0,
        redelivered: 0,
        unacked: 0,
        staleAcks: 0,
        paused: false,
      },
    };
  }

  /** Zeroes the counters (gauges keep their values). */
  resetStats(): void {
    this.counters = newCounters();
  }

  /** Applies new batching options live (twin desired properties); affects batches not yet cut. */
  configureBatch(batch: NonNullable<PipelineOptions['batch']>, outputName?: string): void {
    // Resolve from the defaults, not over the current values: `enabled: true` after `false` must
    // bring back the default maxMessages instead of keeping 1.
    const current = this.batcher.options;
    const next = resolveBatcherOptions(
      toBatcherOptions({ ...this.options, batch, outputName: outputName ?? current.output }),
    );
    this.batcher.configure({ ...next, maxBufferedBytes: current.maxBufferedBytes });
  }

  /** Applies a new memory bound and overflow policy live. */
  configureBuffer(maxBufferedBytes: number, overflow: OverflowPolicy): void {
    this.overflow = overflow;
    this.batcher.configure({ maxBufferedBytes });
  }

  /**
   * Switches decoder and topic template live.
   * @throws ConfigError when the topic template is invalid (the old decoder stays).
   */
  configureDecoder(decoder: DecoderOptions): void {
    this.decoder = createDecoder(decoder);
  }

  /** The hot path: decode, serialise, buffer; returns a promise to hold the source when full. */
  private readonly onMessage = (message: SourceMessage): Promise<void> | undefined => {
    // Stopping: leave the message unread and unacked; the broker redelivers it after restart.
    if (this.stateValue.kind === 'stopping' || this.stateValue.kind === 'stopped') return NEVER;
    const c = this.counters;
    c.received++;
    if (c.firstReceivedAtMs === 0) c.firstReceivedAtMs = Date.now();
    c.receivedBytes += message.payload.length;
    if (this.hooks.onReceived !== undefined) {
      const bytes = message.payload.length;
      this.callHook(() => this.hooks.onReceived?.({ topic: message.topic, bytes }));
    }
    const result = this.decoder(message.topic, message.payload, message.receivedAtMs);
    if (!result.ok) {
      this.deadLetter({ remaining: 1, ack: message.ack }, message, result.reason, result.detail);
      return this.makeRoom();
    }
    const records = result.records;
    if (records.length === 0) {
      c.ignored++;
      message.ack();
      return undefined;
    }
    c.records += records.length;
    const ref: AckRef = { remaining: records.length, ack: message.ack };
    const maxRecordBytes = this.batcher.maxRecordBytes;
    const plain = result.plainStrings === true;
    const rawData = result.rawData;
    for (const record of records) {
      const json = rawData === undefined ? this.encode(record, plain) : this.splice(record, rawData);
      const bytes = json === undefined ? Number.POSITIVE_INFINITY : json.length;
      if (json === undefined || bytes > maxRecordBytes) {
        this.deadLetter(
          ref,
          message,
          'record-too-large',
          `record of ${bytes} bytes; at most ${maxRecordBytes} fit`,
        );
        continue;
      }
      this.batcher.add({ json, token: ref });
    }
    return this.makeRoom();
  };

  /** The record's UTF-8 JSON; undefined when JSON cannot hold it. */
  private encode(record: EnvelopeRecord, plainStrings: boolean): Buffer | undefined {
    const text = stringify(record, plainStrings);
    return text === undefined ? undefined : this.arena.encode(text);
  }

  /** The record's UTF-8 JSON around `data` given as the payload's own bytes. */
  private splice(record: EnvelopeRecord, raw: RawJson): Buffer {
    return this.recordWriter.write(this.arena, record, raw);
  }

  private makeRoom(): Promise<void> | undefined {
    if (this.deadLetterSends.size >= MAX_DEAD_LETTERS_IN_FLIGHT) {
      return new Promise<void>((resolve) => this.deadLetterRoomWaiters.push(resolve)).then(() =>
        this.makeRoom(),
      );
    }
    if (this.batcher.hasRoom()) return undefined;
    if (this.overflow === 'drop-oldest') {
      let records = 0;
      let bytes = 0;
      while (!this.batcher.hasRoom()) {
        const item = this.batcher.dropOldest();
        if (item === undefined) break;
        records++;
        bytes += item.json.length;
        // A dropped record is done with: ack so the broker does not redeliver it.
        release(item.token);
      }
      if (records > 0) {
        this.counters.dropped += records;
        this.counters.droppedBytes += bytes;
        this.callHook(() => this.hooks.onDrop?.(records, bytes));
      }
      if (this.batcher.hasRoom()) return undefined;
    }
    // Back-pressure: hold MQTT.js's read loop; TCP flow control then stops the broker.
    return this.batcher.whenRoom();
  }

  private onBatchAcked(tokens: readonly AckRef[], info: BatchInfo): void {
    const c = this.counters;
    c.sentRecords += info.records;
    c.sentBatches++;
    c.lastSentAtMs = Date.now();
    if (c.firstSentAtMs === 0) c.firstSentAtMs = c.lastSentAtMs;
    c.sentBytes += info.messageBytes;
    for (const t of tokens) release(t);
    this.callHook(() => this.hooks.onBatchSent?.(info));
  }

  /** Sends the raw source payload to the dead-letter output, retrying; acks its part when done. */
  private deadLetter(ref: AckRef, message: SourceMessage, reason: DeadLetterReason, detail: string): void {
    this.counters.deadLetters[reason]++;
    this.log?.warn({ reason, detail, topic: message.topic }, 'dead letter');
    this.callHook(() => this.hooks.onDeadLetter?.(reason, detail));
    const payload = message.payload;
    const properties: Record<string, string> = {
      [DEAD_LETTER_REASON_PROPERTY]: reason,
      [DEAD_LETTER_TOPIC_PROPERTY]: message.topic.slice(0, 1024),
    };
    // The rejected payload itself may be what was too large: keep the start of it.
    const room = MAX_UPSTREAM_MESSAGE_BYTES - 4096;
    if (payload.length > room) properties.truncated = String(payload.length);
    const msg: UpstreamMessage = {
      body: payload.length > room ? payload.subarray(0, room) : payload,
      properties,
      contentType: 'application/octet-stream',
      contentEncoding: '',
    };
    const output = this.options.deadLetterOutput ?? 'deadletter';
    const send = this.sendWithRetry(output, msg).then(() => release(ref));
    this.deadLetterSends.add(send);
    void send.finally(() => {
      this.deadLetterSends.delete(send);
      for (const w of this.deadLetterRoomWaiters.splice(0)) w();
    });
  }

  private async sendWithRetry(output: string, message: UpstreamMessage): Promise<void> {
    const signal = this.deadLetterAbort.signal;
    let delay = 100;
    for (let attempt = 1; !signal.aborted; attempt++) {
      try {
        await this.transport.send(output, message);
        return;
      } catch (err) {
        this.counters.sendErrors++;
        this.log?.warn({ err: toError(err).message, output, attempt }, 'dead-letter send failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, delay));
        delay = Math.min(delay * 2, 10_000);
      }
    }
    // Stopped before it went out: the part stays unacked and the broker redelivers the message.
    return NEVER;
  }

  private callHook(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log?.error({ err: toError(err).message }, 'pipeline hook threw');
    }
  }
}

function release(ref: AckRef): void {
  ref.remaining--;
  if (ref.remaining === 0) ref.ack();
}

function stringify(record: EnvelopeRecord, plainStrings: boolean): string | undefined {
  if (plainStrings) {
    try {
      return plainRecordJson(record);
    } catch {
      // Nesting deeper than its recursion allows (JSON.stringify goes deeper): let JSON decide.
    }
  }
  try {
    return JSON.stringify(record);
  } catch {
    // A value JSON cannot hold (BigInt, a cycle) cannot go upstream either: treat as too large.
    return undefined;
  }
}

function toBatcherOptions(options: PipelineOptions): BatcherOptions {
  const { enabled, ...batch } = options.batch ?? {};
  return {
    ...batch,
    ...(enabled === false ? { maxMessages: 1 } : {}),
    output: options.outputName ?? 'output1',
    ...(options.maxBufferedBytes === undefined ? {} : { maxBufferedBytes: options.maxBufferedBytes }),
  };
}

function newCounters(): Counters {
  const deadLetters = {} as Record<DeadLetterReason, number>;
  for (const r of DEAD_LETTER_REASONS) deadLetters[r] = 0;
  return {
    received: 0,
    receivedBytes: 0,
    records: 0,
    sentRecords: 0,
    sentBatches: 0,
    sentBytes: 0,
    ignored: 0,
    deadLetters,
    dropped: 0,
    droppedBytes: 0,
    sendErrors: 0,
    firstReceivedAtMs: 0,
    firstSentAtMs: 0,
    lastSentAtMs: 0,
  };
}

async function waitAll(promises: ReadonlySet<Promise<void>>, deadline: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
  });
  await Promise.race([Promise.all(promises), timeout]);
  clearTimeout(timer);
}
