import type { EnvelopeEncoding } from '../../common/index.js';
import { EdgePerfError, toError } from '../../common/index.js';
import type { UpstreamMessage } from '../upstream-transport.js';
import {
  BodyPool,
  ENVELOPE_PREFIX,
  ENVELOPE_SUFFIX,
  encodeUpstreamMessage,
  envelopeBodyBytes,
  envelopePropertyBytes,
  MAX_UPSTREAM_MESSAGE_BYTES,
  packCutTo4KB,
  upstreamMessageBytes,
  worstCasePropertyBytes,
} from './encode.js';

/** One record waiting to go upstream. */
export interface BatchItem<T> {
  /** The record serialised as UTF-8 JSON (done once, by the caller, so sizes are exact). */
  readonly json: Buffer;
  /** The caller's handle, returned in {@link BatcherHandlers.onAcked} once edgeHub acknowledged it. */
  readonly token: T;
}

/** What made the batcher cut a batch. */
export type BatchTrigger = 'maxMessages' | 'maxBytes' | 'linger' | 'flush';

/** Facts about one batch, for metrics. */
export interface BatchInfo {
  readonly records: number;
  /** Body bytes before encoding (the JSON). */
  readonly jsonBytes: number;
  /** Upstream message bytes as IoT Hub counts them: encoded body plus properties. */
  readonly messageBytes: number;
  readonly encoding: EnvelopeEncoding;
  readonly trigger: BatchTrigger;
  /** Send attempts, 1 when the first one succeeded. */
  readonly attempts: number;
  /** Time of the successful send call, ms. */
  readonly sendDurationMs: number;
}

/** Options for {@link Batcher}. Defaults are applied in one place, {@link resolveBatcherOptions}. */
export interface BatcherOptions {
  /** Records per upstream message; 1 turns batching off (one message per record). Default 500. */
  maxMessages?: number;
  /**
   * Target upstream message bytes including properties, counting the JSON before encoding (a gzip
   * body is smaller); default 256 KiB. A single record larger than this still goes, alone.
   */
  maxBytes?: number;
  /** Linger: the longest a record waits for company before its batch is sent, ms. Default 50. */
  maxWaitTimeInMs?: number;
  /**
   * Cut full batches (count or size trigger) so the message ends just under a 4 KB boundary when
   * that meters better; never waits for more records. JSON encoding only. Default false.
   */
  packTo4KB?: boolean;
  /** Body encoding; default `json`. */
  encoding?: EnvelopeEncoding;
  /** Batches sent concurrently, each awaiting edgeHub's ack. Default 4. */
  maxInFlightBatches?: number;
  /** Bytes of records held (buffered plus in flight) above which {@link Batcher.add} reports no room. Default 16 MiB. */
  maxBufferedBytes?: number;
  /** Module output the batches go to; default `output1`. */
  output?: string;
  /** Hard cap per upstream message including properties; default 256 KiB. */
  maxMessageBytes?: number;
  /** Bytes kept free under the cap for system properties edgeHub and IoT Hub add; default 512. */
  reservedBytes?: number;
  /** First retry delay after a failed send, ms (doubles up to the max). Default 100. */
  retryMinDelayInMs?: number;
  /** Longest retry delay, ms. Default 10,000. */
  retryMaxDelayInMs?: number;
}

/** {@link BatcherOptions} with every default applied. */
export type ResolvedBatcherOptions = Required<BatcherOptions>;

/** Applies the defaults of {@link BatcherOptions}; values are assumed validated by the config layer. */
export function resolveBatcherOptions(options: BatcherOptions = {}): ResolvedBatcherOptions {
  return {
    maxMessages: options.maxMessages ?? 500,
    maxBytes: options.maxBytes ?? MAX_UPSTREAM_MESSAGE_BYTES,
    maxWaitTimeInMs: options.maxWaitTimeInMs ?? 50,
    packTo4KB: options.packTo4KB ?? false,
    encoding: options.encoding ?? 'json',
    maxInFlightBatches: options.maxInFlightBatches ?? 4,
    maxBufferedBytes: options.maxBufferedBytes ?? 16 * 1024 * 1024,
    output: options.output ?? 'output1',
    maxMessageBytes: options.maxMessageBytes ?? MAX_UPSTREAM_MESSAGE_BYTES,
    reservedBytes: options.reservedBytes ?? 512,
    retryMinDelayInMs: options.retryMinDelayInMs ?? 100,
    retryMaxDelayInMs: options.retryMaxDelayInMs ?? 10_000,
  };
}

/** Where the batcher sends and whom it tells. */
export interface BatcherHandlers<T> {
  /** Sends one message; resolves when edgeHub acknowledged it (UpstreamTransport.send). */
  send(output: string, message: UpstreamMessage): Promise<void>;
  /** Called once per acknowledged batch with the tokens of its records, in order. */
  onAcked(tokens: readonly T[], info: BatchInfo): void;
  /** A send failed and will be retried (at-least-once: a batch is never dropped). */
  onSendError(error: Error, attempt: number): void;
  /**
   * The batch's body has been built from its records' JSON, which the batcher will not read again
   * (so the caller may reuse that memory). Not called when batching is off: then the body is the
   * record's JSON itself.
   */
  onEncoded?(json: readonly Buffer[]): void;
}

/** Envelope bodies kept for reuse: about the batches in flight. */
const BODIES_KEPT = 8;

/** Lifecycle of a {@link Batcher}. */
export type BatcherState =
  | { readonly kind: 'idle' }
  | { readonly kind: 'running'; readonly controller: AbortController; readonly loop: Promise<void> }
  | { readonly kind: 'closing'; readonly controller: AbortController; readonly loop: Promise<void> }
  | { readonly kind: 'closed' };

/** Options for {@link Batcher.close}. */
export interface BatcherCloseOptions {
  /** Send what is buffered first; default true. */
  flush?: boolean;
  /** Give up flushing and in-flight sends after this long, ms; default 10,000. Unsent records stay unacknowledged. */
  deadlineMs?: number;
}

interface Held<T> extends BatchItem<T> {
  readonly idx: number;
  readonly addedAtMs: number;
}

interface InFlight {
  readonly firstIdx: number;
  readonly done: Promise<void>;
}

type Decision = { kind: 'cut'; k: number; trigger: BatchTrigger } | { kind: 'wait'; ms: number | undefined };

/**
 * Application-level batcher (style.md §7): a loop stopped by an AbortSignal that races the next
 * record against the linger deadline; cuts on `maxMessages`, `maxBytes` or `maxWaitTimeInMs`;
 * never exceeds the 256 KiB cap including properties; sends up to `maxInFlightBatches` at once and
 * retries a failed send until it succeeds or the batcher is closed (at-least-once: records of an
 * unsent batch are never acknowledged). Memory is bounded by the caller honouring {@link add}'s
 * return value and {@link whenRoom}.
 */
export class Batcher<T> {
  private opts: ResolvedBatcherOptions;
  private readonly handlers: BatcherHandlers<T>;
  private stateValue: BatcherState = { kind: 'idle' };
  private pending: Held<T>[] = [];
  private pendingBytes = 0;
  private inFlightBytes = 0;
  private inFlightRecords = 0;
  private readonly inFlight = new Set<InFlight>();
  private readonly bodies = new BodyPool(BODIES_KEPT);
  private nextIdx = 0;
  private flushTarget = 0;
  private wakeLoop: (() => void) | undefined;
  private roomWaiters: (() => void)[] = [];
  private flushWaiters: { target: number; resolve: () => void }[] = [];

  constructor(options: BatcherOptions, handlers: BatcherHandlers<T>) {
    this.opts = resolveBatcherOptions(options);
    this.handlers = handlers;
  }

  /** Current lifecycle state. */
  get state(): BatcherState {
    return this.stateValue;
  }

  /** The effective options. */
  get options(): ResolvedBatcherOptions {
    return this.opts;
  }

  /** Bytes of records held: buffered plus in flight. */
  get bufferedBytes(): number {
    return this.pendingBytes + this.inFlightBytes;
  }

  /** Records held: buffered plus in flight. */
  get bufferedRecords(): number {
    return this.pending.length + this.inFlightRecords;
  }

  /** Batches being sent now (including those waiting to retry). */
  get inFlightBatches(): number {
    return this.inFlight.size;
  }

  /** The largest record JSON that fits one upstream message with its properties; bigger ones are dead letters. */
  get maxRecordBytes(): number {
    const hard = this.hardBodyCap();
    return this.batched() ? hard - ENVELOPE_PREFIX.length - ENVELOPE_SUFFIX.length : hard;
  }

  /** Starts the send loop. Idempotent while running. */
  start(): void {
    if (this.stateValue.kind !== 'idle') return;
    const controller = new AbortController();
    const loop = this.run(controller.signal);
    this.stateValue = { kind: 'running', controller, loop };
  }

  /** Changes batching options live (twin desired properties); applies to batches not yet cut. */
  configure(options: BatcherOptions): void {
    const merged: BatcherOptions = { ...this.opts };
    for (const [k, v] of Object.entries(options))
      if (v !== undefined) (merged as Record<string, unknown>)[k] = v;
    this.opts = resolveBatcherOptions(merged);
    this.wake();
    this.notifyRoom();
  }

  /**
   * Buffers a record. Returns false when the buffer is at or above `maxBufferedBytes`: the caller
   * must stop reading until {@link whenRoom} resolves (or drop with {@link dropOldest}).
   * @throws EdgePerfError `E_BATCHER_CLOSED` after close() began.
   */
  add(item: BatchItem<T>): boolean {
    if (this.stateValue.kind !== 'running' && this.stateValue.kind !== 'idle') {
      throw new EdgePerfError('E_BATCHER_CLOSED', 'batcher is closing; no records accepted');
    }
    this.pending.push({
      json: item.json,
      token: item.token,
      idx: this.nextIdx++,
      addedAtMs: Date.now(),
    });
    this.pendingBytes += item.json.length;
    this.wake();
    return this.hasRoom();
  }

  /** True while held bytes are under `maxBufferedBytes`. */
  hasRoom(): boolean {
    return this.bufferedBytes < this.opts.maxBufferedBytes;
  }

  /** Resolves when there is room again (or the batcher is closing). */
  whenRoom(): Promise<void> {
    if (this.hasRoom() || this.stateValue.kind === 'closing' || this.stateValue.kind === 'closed') {
      return Promise.resolve();
    }
    return new Promise((resolve) => this.roomWaiters.push(resolve));
  }

  /** Removes the oldest buffered (not in-flight) record for the `drop-oldest` policy; undefined when none. */
  dropOldest(): BatchItem<T> | undefined {
    const item = this.pending.shift();
    if (item === undefined) return undefined;
    this.pendingBytes -= item.json.length;
    this.settleFlushWaiters();
    return item;
  }

  /** Sends everything buffered now without waiting for the linger; resolves when edgeHub acknowledged it all. */
  flush(): Promise<void> {
    const target = this.nextIdx;
    this.flushTarget = Math.max(this.flushTarget, target);
    const done = new Promise<void>((resolve) => this.flushWaiters.push({ target, resolve }));
    this.settleFlushWaiters();
    this.wake();
    return done;
  }

  /**
   * Stops the loop. With `flush` (default) first sends what is buffered, up to `deadlineMs`;
   * then stops retries and waits (up to the same deadline) for sends already on the wire. Records
   * not acknowledged by then are never acked to the source, so the broker redelivers them.
   */
  async close(options: BatcherCloseOptions = {}): Promise<void> {
    const state = this.stateValue;
    if (state.kind === 'closed' || state.kind === 'closing') return;
    if (state.kind === 'idle') {
      this.stateValue = { kind: 'closed' };
      return;
    }
    const deadline = Date.now() + (options.deadlineMs ?? 10_000);
    if (options.flush ?? true) await withDeadline(this.flush(), deadline);
    this.stateValue = { kind: 'closing', controller: state.controller, loop: state.loop };
    state.controller.abort();
    this.wake();
    await state.loop;
    await withDeadline(
      Promise.all([...this.inFlight].map((f) => f.done)).then(() => undefined),
      deadline,
    );
    this.stateValue = { kind: 'closed' };
    this.notifyRoom();
    for (const w of this.flushWaiters.splice(0)) w.resolve();
  }

  private batched(): boolean {
    return this.opts.maxMessages > 1;
  }

  private hardBodyCap(): number {
    return (
      this.opts.maxMessageBytes - this.opts.reservedBytes - worstCasePropertyBytes(this.opts.maxMessages)
    );
  }

  private async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      if (this.inFlight.size >= this.opts.maxInFlightBatches) {
        await this.sleep(undefined, signal);
        continue;
      }
      const d = this.decide(Date.now());
      if (d.kind === 'cut') {
        this.dispatch(d.k, d.trigger, signal);
        continue;
      }
      await this.sleep(d.ms, signal);
    }
  }

  /** Decides whether to cut now, and how many records; otherwise how long to sleep. */
  private decide(now: number): Decision {
    const n = this.pending.length;
    const first = this.pending[0];
    if (first === undefined) return { kind: 'wait', ms: undefined };
    const batched = this.batched();
    const hardCap = this.hardBodyCap();
    const softCap = Math.min(this.opts.maxBytes - worstCasePropertyBytes(this.opts.maxMessages), hardCap);
    const limit = Math.min(n, Math.max(1, this.opts.maxMessages));
    // Prefix sums of record bytes: sizes of candidate cuts without re-scanning.
    const prefix: number[] = [0];
    let k = 0;
    let sum = 0;
    let sizeStop = false;
    while (k < limit) {
      const b = (this.pending[k] as Held<T>).json.length;
      const body = batched ? envelopeBodyBytes(k + 1, sum + b) : b;
      // A record over the soft cap still goes alone (it fits the hard cap: the pipeline checked).
      if (k > 0 && body > softCap) {
        sizeStop = true;
        break;
      }
      sum += b;
      k++;
      prefix.push(sum);
    }
    let trigger: BatchTrigger | undefined;
    if (first.idx < this.flushTarget) trigger = 'flush';
    else if (k === this.opts.maxMessages) trigger = 'maxMessages';
    else if (sizeStop) trigger = 'maxBytes';
    else if (now - first.addedAtMs >= this.opts.maxWaitTimeInMs) trigger = 'linger';
    if (trigger === undefined) return { kind: 'wait', ms: first.addedAtMs + this.opts.maxWaitTimeInMs - now };
    if (
      batched &&
      this.opts.packTo4KB &&
      this.opts.encoding === 'json' &&
      (trigger === 'maxMessages' || trigger === 'maxBytes')
    ) {
      const reserved = this.opts.reservedBytes;
      const sizeOf = (c: number): number =>
        envelopeBodyBytes(c, prefix[c] as number) + envelopePropertyBytes(c, 'json') + reserved;
      k = packCutTo4KB(k, sizeOf);
    }
    return { kind: 'cut', k, trigger };
  }

  private dispatch(k: number, trigger: BatchTrigger, signal: AbortSignal): void {
    const items = this.pending.splice(0, k);
    let bytes = 0;
    for (const it of items) bytes += it.json.length;
    this.pendingBytes -= bytes;
    this.inFlightBytes += bytes;
    this.inFlightRecords += items.length;
    const firstIdx = (items[0] as Held<T>).idx;
    const entry: InFlight = {
      firstIdx,
      done: this.sendWithRetry(items, bytes, trigger, signal).finally(() => {
        this.inFlight.delete(entry);
        this.inFlightBytes -= bytes;
        this.inFlightRecords -= items.length;
        this.settleFlushWaiters();
        this.notifyRoom();
        this.wake();
      }),
    };
    this.inFlight.add(entry);
  }

  private async sendWithRetry(
    items: Held<T>[],
    jsonBytes: number,
    trigger: BatchTrigger,
    signal: AbortSignal,
  ): Promise<void> {
    const batched = this.batched();
    const encoding = this.opts.encoding;
    const output = this.opts.output;
    let message: UpstreamMessage;
    const json = items.map((i) => i.json);
    try {
      message = await encodeUpstreamMessage(json, batched, encoding, this.bodies);
    } catch (err) {
      // Encoding in-memory JSON cannot fail short of a bug; report and keep the records unacked.
      this.report(toError(err), 0);
      return;
    }
    if (batched) this.handlers.onEncoded?.(json);
    let delay = this.opts.retryMinDelayInMs;
    for (let attempt = 1; ; attempt++) {
      const started = performance.now();
      try {
        await this.handlers.send(output, message);
      } catch (err) {
        this.report(toError(err), attempt);
        if (signal.aborted) return;
        await abortableDelay(delay, signal);
        if (signal.aborted) return;
        delay = Math.min(delay * 2, this.opts.retryMaxDelayInMs);
        continue;
      }
      const info: BatchInfo = {
        records: items.length,
        jsonBytes: batched ? envelopeBodyBytes(items.length, jsonBytes) : jsonBytes,
        messageBytes: upstreamMessageBytes(message),
        encoding,
        trigger,
        attempts: attempt,
        sendDurationMs: performance.now() - started,
      };
      // After a failed attempt a client may still hold the body in a queue: only a body sent once
      // goes back to the pool.
      if (attempt === 1) this.bodies.give(message.body);
      try {
        this.handlers.onAcked(
          items.map((i) => i.token),
          info,
        );
      } catch (err) {
        this.report(toError(err), attempt);
      }
      return;
    }
  }

  private report(error: Error, attempt: number): void {
    try {
      this.handlers.onSendError(error, attempt);
    } catch {
      // A failing error handler must not stop the loop (style.md §6).
    }
  }

  private settleFlushWaiters(): void {
    if (this.flushWaiters.length === 0) return;
    let minOutstanding = this.pending[0]?.idx ?? this.nextIdx;
    for (const f of this.inFlight) minOutstanding = Math.min(minOutstanding, f.firstIdx);
    const still: typeof this.flushWaiters = [];
    for (const w of this.flushWaiters) {
      if (w.target <= minOutstanding) w.resolve();
      else still.push(w);
    }
    this.flushWaiters = still;
  }

  private notifyRoom(): void {
    if (this.roomWaiters.length === 0) return;
    if (!this.hasRoom() && this.stateValue.kind !== 'closed' && this.stateValue.kind !== 'closing') return;
    for (const r of this.roomWaiters.splice(0)) r();
  }

  private wake(): void {
    const w = this.wakeLoop;
    this.wakeLoop = undefined;
    w?.();
  }

  private sleep(ms: number | undefined, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (): void => {
        if (timer !== undefined) clearTimeout(timer);
        signal.removeEventListener('abort', done);
        if (this.wakeLoop === done) this.wakeLoop = undefined;
        resolve();
      };
      this.wakeLoop = done;
      signal.addEventListener('abort', done, { once: true });
      if (ms !== undefined) timer = setTimeout(done, Math.max(0, ms));
    });
  }
}

function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Waits for `p` or until the unix-ms deadline, whichever is first; never rejects. */
async function withDeadline(p: Promise<unknown>, deadlineMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, Math.max(0, deadlineMs - Date.now()));
  });
  try {
    await Promise.race([
      p.then(
        () => undefined,
        () => undefined,
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
