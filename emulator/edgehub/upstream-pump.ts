import type { Logger } from '../../modules/common/index.js';
import { toError } from '../../modules/common/index.js';
import type { UpstreamSink } from './contracts.js';
import type { EdgeMessage } from './message.js';
import type { EdgeHubMetrics } from './metrics.js';
import type { MessageStore } from './store/message-store.js';
import type { QueueEntry } from './store/queue.js';

/** IoT Hub's max message size; batches are capped so that batch × largest message fits (edge-facts §2). */
export const MAX_UPSTREAM_BATCH_BYTES = 256 * 1024;

/** Retry timing: exponential from `retryBaseMs`, capped at `retryMaxMs`. */
export interface RetryOptions {
  /** First retry delay, ms. Default 1000 (edgeHub). Tests set it low. */
  readonly retryBaseMs?: number;
  /** Largest retry delay, ms. Default 60000 (edgeHub). */
  readonly retryMaxMs?: number;
}

/** Delay before retry number `attempt` (0-based): base × 2^attempt, capped. */
export function backoffDelayMs(attempt: number, options: RetryOptions = {}): number {
  const base = options.retryBaseMs ?? 1000;
  const max = options.retryMaxMs ?? 60_000;
  return Math.min(max, base * 2 ** Math.min(attempt, 30));
}

/** Resolves after `ms`, or early (without error) when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) {
      resolve();
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * A wake-up a loop waits on: `notify()` ends the current (or next) `wait()`.
 *
 * One timer and one listener per wait, and nothing else. Why: the pump waits here after every
 * batch once its queue is empty, and a wait used to build an AbortController and race two promises;
 * aborting that controller constructs a DOMException. That was 10% of the runtime's thread at the
 * wire limit (--cpu-prof, instant link).
 */
export class Wakeup {
  private pending = false;
  private waiter: (() => void) | undefined;

  notify(): void {
    if (this.waiter !== undefined) this.waiter();
    else this.pending = true;
  }

  /** Resolves on `notify()`, after `timeoutMs`, or on abort (at once when already aborted). */
  wait(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (this.pending) {
      this.pending = false;
      return Promise.resolve();
    }
    if (signal?.aborted === true) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        if (this.waiter === done) this.waiter = undefined;
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      signal?.addEventListener('abort', done, { once: true });
      this.waiter = done;
    });
  }
}

/** Batching settings of the upstream pump (edgeHub env, edge-facts §1). */
export interface UpstreamPumpSettings {
  /** Max messages in one upstream batch (MaxUpstreamBatchSize). Default 10. */
  readonly maxUpstreamBatchSize: number;
  /** Sender groups sent in parallel (UpstreamFanOutFactor). Default 10. */
  readonly upstreamFanOutFactor: number;
}

/** Options for {@link UpstreamPump}. */
export interface UpstreamPumpOptions extends RetryOptions {
  readonly store: MessageStore;
  readonly sink: UpstreamSink;
  /** Endpoint id of the upstream queue (`iothub`). */
  readonly endpoint: string;
  readonly settings: UpstreamPumpSettings;
  readonly metrics?: EdgeHubMetrics;
  readonly logger?: Logger;
  /** How long the pump sleeps when the queue is empty before looking again, ms. Default 10000 (edgeHub). */
  readonly idleTimeoutMs?: number;
  /** Clock for durations. Default `performance.now`. */
  readonly nowMs?: () => number;
}

/** Counters of one pump, for tests and the CLI. */
export interface UpstreamPumpStats {
  /** Messages acknowledged upstream and removed from the store. */
  readonly messagesSent: number;
  readonly batchesSent: number;
  /** Failed sendBatch calls that were retried. */
  readonly failedAttempts: number;
  /** Messages dropped because the sink rejected them with a permanent error. */
  readonly messagesRejected: number;
}

/**
 * True for an error the sink marks as not worth retrying (`permanent: true`), e.g. IoT Hub's
 * message-too-large. Every other rejection (outage, throttling) is retried.
 */
export function isPermanent(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { permanent?: unknown }).permanent === true;
}

/**
 * edgeHub's upstream pump (StoringAsyncEndpointExecutor + CloudEndpoint, edge-facts §2): waits for
 * messages, reads up to MaxUpstreamBatchSize × UpstreamFanOutFactor (priority 0 first), groups
 * them by sender, sends up to UpstreamFanOutFactor groups in parallel and, within a group, batches
 * of min(MaxUpstreamBatchSize, 256 KiB / largest message) one after another, each awaiting the
 * sink's acknowledgement. Only acknowledged messages leave the store; a failed batch is retried
 * with exponential backoff (1 s to 60 s) until it goes through or the pump stops.
 */
export class UpstreamPump {
  private readonly options: UpstreamPumpOptions;
  private settings: UpstreamPumpSettings;
  private readonly wakeup = new Wakeup();
  private controller: AbortController | undefined;
  private loop: Promise<void> | undefined;
  private sentCount = 0;
  private batchCount = 0;
  private failures = 0;
  private rejected = 0;

  constructor(options: UpstreamPumpOptions) {
    this.options = options;
    this.settings = options.settings;
  }

  /** Counters since construction. */
  get stats(): UpstreamPumpStats {
    return {
      messagesSent: this.sentCount,
      batchesSent: this.batchCount,
      failedAttempts: this.failures,
      messagesRejected: this.rejected,
    };
  }

  /** Starts the loop (idempotent). */
  start(): void {
    if (this.loop !== undefined) return;
    const controller = new AbortController();
    this.controller = controller;
    this.loop = this.run(controller.signal);
  }

  /** Tells the pump new messages are queued. */
  notify(): void {
    this.wakeup.notify();
  }

  /** New batching settings, used from the next read; queued messages stay queued. */
  updateSettings(settings: UpstreamPumpSettings): void {
    this.settings = settings;
    this.wakeup.notify();
  }

  /** Stops after the batches in flight are answered; unsent messages stay in the store. */
  async stop(): Promise<void> {
    this.controller?.abort();
    this.wakeup.notify();
    await this.loop;
    this.loop = undefined;
    this.controller = undefined;
  }

  private async run(signal: AbortSignal): Promise<void> {
    const { store, endpoint, logger } = this.options;
    while (!signal.aborted) {
      try {
        const { maxUpstreamBatchSize: batch, upstreamFanOutFactor: fanOut } = this.settings;
        const entries = store.peek(endpoint, batch * fanOut);
        if (entries.length === 0) {
          await this.wakeup.wait(this.options.idleTimeoutMs ?? 10_000, signal);
          continue;
        }
        await runPool(groupBySender(entries), fanOut, (group) => this.sendGroup(group, batch, signal));
      } catch (err) {
        // Never let one bad read end the pump (style.md §6).
        logger?.error({ err: toError(err).message, endpoint }, 'upstream pump iteration failed');
        await sleep(backoffDelayMs(0, this.options), signal);
      }
    }
  }

  private async sendGroup(
    group: readonly QueueEntry[],
    maxBatch: number,
    signal: AbortSignal,
  ): Promise<void> {
    const largest = group.reduce((m, e) => Math.max(m, e.sizeBytes), 1);
    const size = Math.max(1, Math.min(maxBatch, Math.floor(MAX_UPSTREAM_BATCH_BYTES / largest)));
    for (let i = 0; i < group.length && !signal.aborted; i += size) {
      const chunk = group.slice(i, i + size);
      const ok = await this.sendWithRetry(chunk, signal);
      if (!ok) return;
    }
  }

  private async sendWithRetry(input: readonly QueueEntry[], signal: AbortSignal): Promise<boolean> {
    const { store, sink, metrics, logger, endpoint } = this.options;
    const now = this.options.nowMs ?? (() => performance.now());
    let chunk = input;
    const messages: EdgeMessage[] = [];
    const present: QueueEntry[] = [];
    for (const e of chunk) {
      // Deleted by the TTL cleanup since it was read.
      if (e.removed) continue;
      try {
        messages.push(store.messageOf(e));
        present.push(e);
      } catch (err) {
        // Unreadable entry: drop it from the index so it cannot stall the pump forever.
        logger?.error({ err: toError(err).message, endpoint }, 'stored message unreadable; dropped');
        store.remove([e]);
      }
    }
    if (present.length === 0) return true;
    chunk = present;
    for (let attempt = 0; !signal.aborted; attempt++) {
      const started = now();
      try {
        await sink.sendBatch(messages);
      } catch (err) {
        if (isPermanent(err)) {
          // Retrying cannot help (e.g. a message over 256 KB): drop it so it cannot block the queue.
          store.remove(chunk);
          this.rejected += chunk.length;
          logger?.error(
            { err: toError(err).message, endpoint, messages: chunk.length },
            'upstream rejected batch permanently; dropped',
          );
          return true;
        }
        this.failures++;
        const delay = backoffDelayMs(attempt, this.options);
        logger?.warn(
          { err: toError(err).message, endpoint, attempt, delayMs: delay },
          'upstream send failed; retrying',
        );
        await sleep(delay, signal);
        continue;
      }
      const seconds = (now() - started) / 1000;
      store.remove(chunk);
      this.sentCount += chunk.length;
      this.batchCount++;
      if (metrics !== undefined) {
        const first = messages[0] as EdgeMessage;
        const from = chunk[0]?.senderKey ?? '';
        metrics.observeSendDuration(from, 'upstream', seconds);
        metrics.messagesSent(
          {
            from,
            to: 'upstream',
            fromOutput: first.system.outputName ?? '',
            toInput: '',
            priority: chunk[0]?.priority ?? 0,
          },
          chunk.length,
        );
      }
      return true;
    }
    return false;
  }
}

/** Groups entries by sender, keeping first-appearance order of groups and FIFO order within. */
export function groupBySender(entries: readonly QueueEntry[]): QueueEntry[][] {
  const groups = new Map<string, QueueEntry[]>();
  for (const e of entries) {
    const g = groups.get(e.senderKey);
    if (g === undefined) groups.set(e.senderKey, [e]);
    else g.push(e);
  }
  return [...groups.values()];
}

/** Runs `work` over `items` with at most `parallel` running at once. */
async function runPool<T>(
  items: readonly T[],
  parallel: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, items.length) }, worker));
}
