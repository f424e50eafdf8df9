import { EdgePerfError } from '../../modules/common/index.js';
import type { UpstreamSink } from '../edgehub/contracts.js';
import type { EdgeMessage } from '../edgehub/message.js';
import { messageSizeBytes } from '../edgehub/store/message-store.js';

/**
 * Default round trip of one upstream batch, ms. Calibrated (test/unit/pump-calibration.test.ts)
 * so that one module, MaxUpstreamBatchSize 10 and 1 KB messages give 500–700 msg/s upstream with
 * real timers (the blog in shared/seeds measured 591 msg/s), timer overhead included.
 */
export const DEFAULT_LINK_RTT_MS = 14;
/** Default link bandwidth, Mbit/s (a wired industrial uplink). */
export const DEFAULT_LINK_BANDWIDTH_MBPS = 100;
/** Default time a send waits during an outage before it fails (connect timeout), ms. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 2000;
// AMQP framing and message annotations per message on the wire, bytes (an estimate).
const PER_MESSAGE_OVERHEAD_BYTES = 120;

/** What the link hands batches to (the IoT Hub ingest). */
export interface BatchReceiver {
  acceptBatch(messages: readonly EdgeMessage[]): Promise<void>;
}

/** A scheduled outage, relative to `start()`. */
export interface LinkOutage {
  /** When it begins, ms after `start()`. */
  readonly startMs: number;
  /** How long the link is down, ms. */
  readonly durationMs: number;
}

/** Options for {@link LinkModel}. */
export interface LinkModelOptions {
  /** Round trip per batch, ms. Default {@link DEFAULT_LINK_RTT_MS}. */
  readonly rttMs?: number;
  /** Bandwidth shared by all parallel sends, Mbit/s. Default 100; `Infinity` = no serialisation delay. */
  readonly bandwidthMbps?: number;
  /** How long a send waits during an outage before it rejects, ms. Default 2000. */
  readonly connectTimeoutMs?: number;
  /** Outages scheduled relative to `start()`. */
  readonly outages?: readonly LinkOutage[];
}

/** The link is down (outage): the send is retried by the pump. */
export class LinkDownError extends EdgePerfError {
  readonly permanent = false;
  constructor(message: string) {
    super('E_LINK_DOWN', message);
    this.name = 'LinkDownError';
  }
}

/** Counters of the link. */
export interface LinkStats {
  readonly batches: number;
  readonly messages: number;
  /** Bytes carried, including the per-message overhead estimate. */
  readonly wireBytes: number;
  /** Sends refused because the link was down. */
  readonly failedDuringOutage: number;
}

/**
 * The upstream hop edgeHub → IoT Hub, the one piece that cannot be real on one machine
 * (architecture.md): each `sendBatch` serialises the batch's bytes on a link of finite bandwidth
 * (shared by parallel sends), travels half a round trip, is enqueued by IoT Hub (which may throttle
 * or refuse it), and the acknowledgement travels back the other half. During an outage a send
 * waits the connect timeout and rejects.
 */
export class LinkModel implements UpstreamSink {
  private readonly receiver: BatchReceiver;
  private readonly options: LinkModelOptions;
  private readonly outages: { fromMs: number; toMs: number }[] = [];
  private startedAtMs: number | undefined;
  // When the shared link finishes transmitting what is already queued on it, performance.now() ms.
  private linkFreeAtMs = 0;
  private batches = 0;
  private messages = 0;
  private wireBytes = 0;
  private failed = 0;

  constructor(receiver: BatchReceiver, options: LinkModelOptions = {}) {
    this.receiver = receiver;
    this.options = options;
  }

  /** Starts the clock scheduled outages are relative to. */
  start(): void {
    const now = performance.now();
    this.startedAtMs = now;
    for (const o of this.options.outages ?? [])
      this.outages.push({ fromMs: now + o.startMs, toMs: now + o.startMs + o.durationMs });
  }

  /** Fault injection: the link goes down now for `durationMs`. */
  startOutage(durationMs: number): void {
    const now = performance.now();
    this.outages.push({ fromMs: now, toMs: now + durationMs });
  }

  /** Fault injection: ends every outage in progress now (scheduled later ones stay). */
  endOutage(): void {
    const now = performance.now();
    for (const o of this.outages) if (o.fromMs <= now && o.toMs > now) o.toMs = now;
  }

  /** True while an outage is in progress. */
  isDown(atMs = performance.now()): boolean {
    return this.outages.some((o) => atMs >= o.fromMs && atMs < o.toMs);
  }

  /** Milliseconds since `start()` (undefined before). */
  get elapsedMs(): number | undefined {
    return this.startedAtMs === undefined ? undefined : performance.now() - this.startedAtMs;
  }

  /** Counters since construction. */
  getStats(): LinkStats {
    return {
      batches: this.batches,
      messages: this.messages,
      wireBytes: this.wireBytes,
      failedDuringOutage: this.failed,
    };
  }

  /**
   * Carries one batch to IoT Hub and back.
   * @throws LinkDownError after the connect timeout when the link is down.
   * @throws whatever IoT Hub answers (ThrottledError, MessageTooLargeError).
   */
  async sendBatch(messages: readonly EdgeMessage[]): Promise<void> {
    const rtt = this.options.rttMs ?? DEFAULT_LINK_RTT_MS;
    const now = performance.now();
    if (this.isDown(now)) {
      this.failed++;
      await delay(this.options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS);
      throw new LinkDownError('upstream link is down (outage): connect timed out');
    }
    const bytes = messages.reduce((n, m) => n + messageSizeBytes(m) + PER_MESSAGE_OVERHEAD_BYTES, 0);
    const mbps = this.options.bandwidthMbps ?? DEFAULT_LINK_BANDWIDTH_MBPS;
    const txMs = Number.isFinite(mbps) ? (bytes * 8) / (mbps * 1000) : 0;
    const txStart = Math.max(now, this.linkFreeAtMs);
    this.linkFreeAtMs = txStart + txMs;
    // Absolute deadlines, so a late timer on the way out does not also delay the way back.
    await delay(this.linkFreeAtMs - now + rtt / 2);
    await this.receiver.acceptBatch(messages);
    await delay(this.linkFreeAtMs + rtt - performance.now());
    this.batches++;
    this.messages += messages.length;
    this.wireBytes += bytes;
  }
}

// Rounded up: timers have 1 ms resolution, and the model must never run faster than configured.
function delay(ms: number): Promise<void> {
  return ms <= 0 ? Promise.resolve() : new Promise((resolve) => setTimeout(resolve, Math.ceil(ms)));
}
