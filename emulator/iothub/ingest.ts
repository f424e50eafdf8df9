import { EdgePerfError } from '../../modules/common/index.js';
import type { EdgeMessage } from '../edgehub/message.js';
import { messageSizeBytes } from '../edgehub/store/message-store.js';

/** IoT Hub's max device-to-cloud message size, bytes (edge-facts §9). */
export const MAX_D2C_MESSAGE_BYTES = 256 * 1024;
/** Daily quota unit: every message is metered in 4 KB units. */
export const METERED_UNIT_BYTES = 4 * 1024;

/** IoT Hub tiers; `unlimited` turns throttling off. */
export type IotHubTier = 'F1' | 'S1' | 'S2' | 'S3' | 'unlimited';

/**
 * Device-to-cloud send throttle in messages/s (edge-facts §9, Microsoft Learn "IoT Hub quotas and
 * throttling"): S1 max(100, 12 × units), S2 max(100, 120 × units), S3 max(100, 6000 × units);
 * F1 100. `Infinity` for `unlimited`.
 */
export function d2cThrottlePerSec(tier: IotHubTier, units: number): number {
  switch (tier) {
    case 'F1':
      return 100;
    case 'S1':
      return Math.max(100, 12 * units);
    case 'S2':
      return Math.max(100, 120 * units);
    case 'S3':
      return Math.max(100, 6000 * units);
    case 'unlimited':
      return Number.POSITIVE_INFINITY;
  }
}

/** IoT Hub answered 429: the send exceeded the tier's throttle; retry later. */
export class ThrottledError extends EdgePerfError {
  /** HTTP-like status IoT Hub uses. */
  readonly status = 429;
  /** Retryable. */
  readonly permanent = false;
  constructor(message: string) {
    super('E_THROTTLED', message);
    this.name = 'ThrottledError';
  }
}

/** IoT Hub refused a message over 256 KB; retrying cannot help. */
export class MessageTooLargeError extends EdgePerfError {
  readonly status = 413;
  /** Not retryable: the upstream pump drops the batch. */
  readonly permanent = true;
  constructor(message: string) {
    super('E_MESSAGE_TOO_LARGE', message);
    this.name = 'MessageTooLargeError';
  }
}

/** Called once per message IoT Hub enqueued (the built-in Event Hub-compatible endpoint listens). */
export type EnqueuedCallback = (partitionId: number, message: EdgeMessage, enqueuedTimeMs: number) => void;

/** Options for {@link IotHubIngest}. */
export interface IotHubIngestOptions {
  /** Tier whose D2C throttle applies. Default `unlimited` (the CLI's `--hub-tier` sets a real one). */
  readonly tier?: IotHubTier;
  /** Units of the tier. Default 1. */
  readonly units?: number;
  /** Partitions of the built-in endpoint. Default 4 (IoT Hub's default). */
  readonly partitionCount?: number;
  /**
   * How long excess sends are queued (traffic shaping) before IoT Hub answers 429, ms. Default 1000.
   * A burst of one second of the throttle rate passes without delay.
   */
  readonly maxThrottleQueueMs?: number;
  /** Receives every enqueued message. */
  readonly onEnqueued?: EnqueuedCallback;
  /** Wall clock, unix ms (enqueue time stamps). Default `Date.now`. */
  readonly clockMs?: () => number;
}

/** Totals since start. */
export interface IotHubIngestStats {
  /** Messages enqueued. */
  readonly messages: number;
  /** Batches (sendBatch calls) accepted. */
  readonly batches: number;
  /** 4 KB metered units (daily-quota accounting). */
  readonly meteredUnits: number;
  /** Bytes enqueued (body + properties). */
  readonly bytes: number;
  /** Batches answered 429. */
  readonly throttledBatches: number;
  /** Messages refused as too large. */
  readonly rejectedTooLarge: number;
  /** Messages per partition. */
  readonly perPartition: readonly number[];
}

/**
 * IoT Hub's device-to-cloud ingest as the local runtime models it: accepts batches, refuses
 * messages over 256 KB, applies the tier's D2C throttle (excess waits up to `maxThrottleQueueMs`,
 * then 429), stamps the enqueue time (ms), picks a partition by a hash of the device id, counts
 * 4 KB metered units, and hands each message to `onEnqueued`.
 */
export class IotHubIngest {
  private readonly options: IotHubIngestOptions;
  private onEnqueued: EnqueuedCallback | undefined;
  // GCRA throttle state: theoretical arrival time of the next message, ms.
  private tatMs = 0;
  private messages = 0;
  private batches = 0;
  private units = 0;
  private bytes = 0;
  private throttled = 0;
  private tooLarge = 0;
  private readonly perPartition: number[];

  constructor(options: IotHubIngestOptions = {}) {
    this.options = options;
    this.onEnqueued = options.onEnqueued;
    this.perPartition = new Array<number>(this.partitionCount).fill(0);
  }

  /** Partitions of the built-in endpoint. */
  get partitionCount(): number {
    return this.options.partitionCount ?? 4;
  }

  /** Sets (or replaces) the enqueue callback, e.g. once the Event Hubs server is up. */
  setOnEnqueued(callback: EnqueuedCallback | undefined): void {
    this.onEnqueued = callback;
  }

  /** Partition a device's messages go to. */
  partitionOf(deviceId: string): number {
    // FNV-1a: stable across runs, so one device always lands on one partition (ordering).
    let h = 0x811c9dc5;
    for (let i = 0; i < deviceId.length; i++) {
      h ^= deviceId.charCodeAt(i);
      h = Math.imul(h, 0x01000193) >>> 0;
    }
    return h % this.partitionCount;
  }

  /**
   * Accepts one batch (one AMQP transfer). Resolves when every message is enqueued.
   * @throws MessageTooLargeError when a message exceeds 256 KB (nothing is enqueued).
   * @throws ThrottledError (429) when the tier's throttle queue is full (nothing is enqueued).
   */
  async acceptBatch(messages: readonly EdgeMessage[]): Promise<void> {
    if (messages.length === 0) return;
    const sizes = messages.map(messageSizeBytes);
    const big = sizes.findIndex((s) => s > MAX_D2C_MESSAGE_BYTES);
    if (big >= 0) {
      this.tooLarge += messages.length;
      throw new MessageTooLargeError(
        `message ${messages[big]?.id} is ${sizes[big]} bytes; IoT Hub accepts at most ${MAX_D2C_MESSAGE_BYTES}`,
      );
    }
    const wait = this.reserve(messages.length);
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const now = (this.options.clockMs ?? Date.now)();
    this.batches++;
    messages.forEach((m, i) => {
      const size = sizes[i] ?? 0;
      const partition = this.partitionOf(m.system.connectionDeviceId);
      this.messages++;
      this.bytes += size;
      this.units += Math.max(1, Math.ceil(size / METERED_UNIT_BYTES));
      this.perPartition[partition] = (this.perPartition[partition] ?? 0) + 1;
      this.onEnqueued?.(partition, m, now);
    });
  }

  /** Totals since construction. */
  getStats(): IotHubIngestStats {
    return {
      messages: this.messages,
      batches: this.batches,
      meteredUnits: this.units,
      bytes: this.bytes,
      throttledBatches: this.throttled,
      rejectedTooLarge: this.tooLarge,
      perPartition: [...this.perPartition],
    };
  }

  // Reserves throttle capacity for `count` messages; returns how long to hold them, ms.
  private reserve(count: number): number {
    const rate = d2cThrottlePerSec(this.options.tier ?? 'unlimited', this.options.units ?? 1);
    if (!Number.isFinite(rate)) return 0;
    const perMessageMs = 1000 / rate;
    const burstMs = 1000;
    const now = performance.now();
    const tat = Math.max(this.tatMs, now);
    const next = tat + count * perMessageMs;
    const wait = next - now - burstMs;
    const maxQueue = this.options.maxThrottleQueueMs ?? 1000;
    if (wait > maxQueue) {
      this.throttled++;
      throw new ThrottledError(
        `IoT Hub throttled the batch: ${this.options.tier} × ${this.options.units ?? 1} allows ${rate} messages/s`,
      );
    }
    this.tatMs = next;
    return Math.max(0, wait);
  }
}
