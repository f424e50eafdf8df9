import {
  type EventData,
  EventHubConsumerClient,
  EventHubProducerClient,
  earliestEventPosition,
  latestEventPosition,
  type PartitionContext,
  type ReceivedEventData,
  type Subscription,
} from '@azure/event-hubs';
import { createLogger, type Logger, toError } from '../../modules/common/index.js';
import { toAsaInputEvent } from './asa-input.js';
import {
  type EventOrderingOptions,
  StreamJobEngine,
  type StreamJobRow,
  type StreamJobStats,
} from './engine.js';

/** Options of {@link StreamJobRunner}. Ordering defaults are ASA's (5 s late, 0 s out of order, Adjust). */
export interface StreamJobRunnerOptions extends EventOrderingOptions {
  /** IoT Hub built-in endpoint: `Endpoint=sb://…;…;EntityPath=…;UseDevelopmentEmulator=true`. */
  readonly inputConnectionString: string;
  /** Consumer group of the input; default `$Default`. */
  readonly consumerGroup?: string;
  /** Output event hub (the ASA output), with `EntityPath`. */
  readonly outputConnectionString: string;
  /** Where reading starts; default `earliest` (a fresh local endpoint holds only this run). */
  readonly startPosition?: 'earliest' | 'latest';
  /** How often idle time advances the watermark, ms; default 250. */
  readonly tickIntervalInMs?: number;
  /** Events per receive callback; default 500. */
  readonly maxBatchSize?: number;
  /** Called with every group of rows after they were sent (tests, metrics). */
  readonly onRows?: (rows: readonly StreamJobRow[]) => void;
  /** Default: `createLogger('streamjob')`. */
  readonly logger?: Logger;
}

/** Counters of {@link StreamJobRunner}: the engine's, plus the runner's own. */
export interface StreamJobRunnerStats extends StreamJobStats {
  /** Events read from the input. */
  received: number;
  /** Events whose body was not a JSON object (counted in `malformed` too). */
  undecodable: number;
  /** Rows written to the output. */
  sentRows: number;
  /** Output sends that failed (their rows are lost; logged). */
  sendFailures: number;
}

/** {@link StreamJobRunner.stop} options. */
export interface StreamJobStopOptions {
  /** Emit and send the windows still open; default true. */
  readonly flush?: boolean;
}

/**
 * The local stream job: reads IoT Hub's built-in endpoint with an unmodified
 * `EventHubConsumerClient`, maps each event to the ASA IoT Hub input shape, runs
 * {@link StreamJobEngine} (the semantics of `asa/edgeperf.asaql`) and writes each row as one JSON
 * event to the output event hub with `EventHubProducerClient`, partition key `sid` (as the ASA
 * output is configured). A malformed event is counted and skipped; a failed send is logged and
 * counted; neither stops the job.
 */
export class StreamJobRunner {
  private readonly options: StreamJobRunnerOptions;
  private readonly logger: Logger;
  private consumer: EventHubConsumerClient | undefined;
  private producer: EventHubProducerClient | undefined;
  private subscription: Subscription | undefined;
  private engine: StreamJobEngine | undefined;
  private timer: NodeJS.Timeout | undefined;
  private sendChain: Promise<void> = Promise.resolve();
  private readonly own = { received: 0, undecodable: 0, sentRows: 0, sendFailures: 0 };

  constructor(options: StreamJobRunnerOptions) {
    this.options = options;
    this.logger = options.logger ?? createLogger('streamjob');
  }

  /** Engine and runner counters. */
  stats(): StreamJobRunnerStats {
    const engine = this.engine?.stats() ?? {
      events: 0,
      messages: 0,
      malformed: 0,
      ignoredRecords: 0,
      adjusted: 0,
      dropped: 0,
      rows: 0,
    };
    return { ...engine, malformed: engine.malformed + this.own.undecodable, ...this.own };
  }

  /**
   * Connects both clients, learns the input's partitions and starts reading.
   * @throws when the input cannot be reached (its partition ids cannot be read).
   */
  async start(): Promise<void> {
    if (this.subscription !== undefined) return;
    const o = this.options;
    this.consumer = new EventHubConsumerClient(o.consumerGroup ?? '$Default', o.inputConnectionString);
    this.producer = new EventHubProducerClient(o.outputConnectionString);
    let partitionIds: string[];
    try {
      partitionIds = await this.consumer.getPartitionIds();
    } catch (err) {
      await Promise.allSettled([this.consumer.close(), this.producer.close()]);
      this.consumer = undefined;
      this.producer = undefined;
      throw err;
    }
    this.engine = new StreamJobEngine({
      ...(o.lateArrivalMaxDelaySecs === undefined
        ? {}
        : { lateArrivalMaxDelaySecs: o.lateArrivalMaxDelaySecs }),
      ...(o.outOfOrderMaxDelaySecs === undefined ? {} : { outOfOrderMaxDelaySecs: o.outOfOrderMaxDelaySecs }),
      ...(o.outOfOrderPolicy === undefined ? {} : { outOfOrderPolicy: o.outOfOrderPolicy }),
      partitionIds,
    });
    const engine = this.engine;
    this.subscription = this.consumer.subscribe(
      {
        processEvents: async (events, context) => this.onEvents(engine, events, context),
        processError: async (err, context) => {
          this.logger.warn({ err, partitionId: context.partitionId }, 'stream job input error');
        },
      },
      {
        startPosition: o.startPosition === 'latest' ? latestEventPosition : earliestEventPosition,
        maxBatchSize: o.maxBatchSize ?? 500,
        maxWaitTimeInSeconds: 1,
        skipParsingBodyAsJson: true,
      },
    );
    this.timer = setInterval(() => this.emit(engine.advance(Date.now())), o.tickIntervalInMs ?? 250);
    this.logger.info({ partitionIds }, 'stream job started');
  }

  /** Stops reading, optionally flushes open windows, waits for pending sends, closes the clients. */
  async stop(options: StreamJobStopOptions = {}): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    const subscription = this.subscription;
    this.subscription = undefined;
    if (subscription !== undefined) await subscription.close();
    if ((options.flush ?? true) && this.engine !== undefined) this.emit(this.engine.flush());
    await this.sendChain;
    await Promise.allSettled([this.consumer?.close(), this.producer?.close()]);
    this.consumer = undefined;
    this.producer = undefined;
  }

  private onEvents(
    engine: StreamJobEngine,
    events: readonly ReceivedEventData[],
    context: PartitionContext,
  ): void {
    const rows: StreamJobRow[] = [];
    for (const event of events) {
      this.own.received++;
      let input: Record<string, unknown>;
      try {
        input = toAsaInputEvent({
          body: bodyBytes(event.body),
          enqueuedTimeUtc: event.enqueuedTimeUtc,
          partitionId: context.partitionId,
          ...(event.systemProperties === undefined ? {} : { systemProperties: event.systemProperties }),
        });
      } catch (err) {
        this.own.undecodable++;
        this.logger.debug(
          { err: toError(err), partitionId: context.partitionId, sequenceNumber: event.sequenceNumber },
          'skipped an event whose body is not a JSON object',
        );
        continue;
      }
      rows.push(...engine.push(input, { partitionId: context.partitionId, wallClockMs: Date.now() }));
    }
    this.emit(rows);
  }

  private emit(rows: readonly StreamJobRow[]): void {
    if (rows.length === 0) return;
    // Sends are chained so rows leave in window order.
    this.sendChain = this.sendChain.then(() => this.send(rows));
  }

  private async send(rows: readonly StreamJobRow[]): Promise<void> {
    const producer = this.producer;
    if (producer === undefined) return;
    const bySid = new Map<string, StreamJobRow[]>();
    for (const row of rows) {
      const list = bySid.get(row.sid);
      if (list === undefined) bySid.set(row.sid, [row]);
      else list.push(row);
    }
    for (const [sid, group] of bySid) {
      try {
        let batch = await producer.createBatch({ partitionKey: sid });
        for (const row of group) {
          const event: EventData = {
            body: Buffer.from(JSON.stringify(row), 'utf8'),
            contentType: 'application/json',
          };
          if (!batch.tryAdd(event)) {
            await producer.sendBatch(batch);
            batch = await producer.createBatch({ partitionKey: sid });
            if (!batch.tryAdd(event)) throw new Error('a result row does not fit an empty batch');
          }
        }
        if (batch.count > 0) await producer.sendBatch(batch);
        this.own.sentRows += group.length;
      } catch (err) {
        this.own.sendFailures++;
        this.logger.error({ err: toError(err), sid, rows: group.length }, 'stream job output send failed');
        continue;
      }
      try {
        this.options.onRows?.(group);
      } catch (err) {
        this.logger.warn({ err: toError(err) }, 'onRows handler failed');
      }
    }
  }
}

function bodyBytes(body: unknown): Uint8Array {
  if (body instanceof Uint8Array) return body;
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  // An AMQP value body (not what IoT Hub sends): JSON text of it, so an object still parses.
  return Buffer.from(JSON.stringify(body ?? null), 'utf8');
}
