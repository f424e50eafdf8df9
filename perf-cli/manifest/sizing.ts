/**
 * Disk and RAM sizing of edgeHub's store-and-forward queues, and the message shapes the translator
 * sends upstream. The rule is the maintainers' (Azure/iotedge#835, edge-facts §3): a queue holds
 * rate × message size × TTL when the uplink is down for the whole TTL, per endpoint and priority
 * queue. On top of the payload we count a per-stored-message overhead (system properties, ids and
 * the queue entry); it is an estimate, not a measurement, so it is a parameter and is shown apart.
 *
 * Units: bytes; "GB" is 10^9 bytes (disks are sold so), "GiB" is 2^30 (what `df -h` prints).
 */

/** Largest message edgeHub and IoT Hub accept (256 KiB, edge-facts §2). */
export const MAX_MESSAGE_BYTES = 256 * 1024;
/** One decimal gigabyte. */
export const GB = 1e9;
/** One binary gibibyte. */
export const GIB = 2 ** 30;
/**
 * Estimated storage overhead per message edgeHub stores, bytes: system properties (message id,
 * correlation id, content type/encoding, connection ids, enqueue time) plus the per-queue entry.
 * Not measured; override with `overheadBytesPerMessage`. Default 256.
 */
export const DEFAULT_OVERHEAD_BYTES_PER_MESSAGE = 256;
/**
 * Bytes a record adds inside the translator's batch envelope besides its payload (`topic`, `it`,
 * keys and separators, modules/common/envelope.ts). An estimate. 64.
 */
export const RECORD_OVERHEAD_BYTES = 64;
/** Bytes of the envelope itself plus the message's application properties, reserved per batch. 512. */
export const BATCH_RESERVE_BYTES = 512;
/** Share of the disk the queues may fill; the rest is for the OS, images and logs. Default 0.8. */
export const DEFAULT_USABLE_DISK_FRACTION = 0.8;

/** Application-level batching as the translator does it (its `Batch*` env vars). */
export interface AppBatchOptions {
  /** Records per upstream message at most (`BatchMaxMessages`). */
  readonly maxMessages: number;
  /** Upstream message bytes at most, properties included (`BatchMaxBytes`). */
  readonly maxBytes: number;
  /** Linger of a partial batch, ms (`BatchMaxWaitTimeInMs`); 0 or absent: batches assumed full. */
  readonly maxWaitTimeInMs?: number;
}

/** What edgeHub receives from the translator for a given source rate and payload. */
export interface UpstreamShape {
  /** Logical (source) messages per upstream message; 1 without batching. */
  readonly recordsPerMessage: number;
  /** Size of one upstream message, bytes (a full batch when batching). */
  readonly messageBytes: number;
  /** Upstream messages per second edgeHub stores. */
  readonly messagesPerSec: number;
}

/**
 * The upstream message shape for `ratePerSec` messages of `payloadLength` bytes, with or without
 * application batching. A batch closes when full or when its linger expires, whichever comes
 * first: records = min(maxMessages, what fits maxBytes, rate × linger).
 */
export function upstreamShape(
  ratePerSec: number,
  payloadLength: number,
  batch?: AppBatchOptions,
): UpstreamShape {
  if (batch === undefined) {
    return { recordsPerMessage: 1, messageBytes: payloadLength, messagesPerSec: ratePerSec };
  }
  const room = Math.max(0, batch.maxBytes - BATCH_RESERVE_BYTES);
  const fit = Math.floor(room / (payloadLength + RECORD_OVERHEAD_BYTES));
  const wait = batch.maxWaitTimeInMs ?? 0;
  const byLinger = wait > 0 ? Math.ceil((ratePerSec * wait) / 1000) : Number.POSITIVE_INFINITY;
  const records = Math.max(1, Math.min(batch.maxMessages, fit, byLinger));
  return {
    recordsPerMessage: records,
    messageBytes: records * (payloadLength + RECORD_OVERHEAD_BYTES) + BATCH_RESERVE_BYTES,
    messagesPerSec: ratePerSec / records,
  };
}

/**
 * MaxUpstreamBatchSize that fills edgeHub's 256 KiB upstream batch with messages of
 * `messageBytes` (edgeHub caps a batch at `min(MaxUpstreamBatchSize, 256 KiB / largest)`, §2).
 * At least 1.
 */
export function matchedUpstreamBatchSize(messageBytes: number): number {
  return Math.max(1, Math.floor(MAX_MESSAGE_BYTES / Math.max(1, messageBytes)));
}

/**
 * Batch limits for the translator sized for 256 KiB upstream messages: `maxBytes` 256 KiB and
 * `maxMessages` as many records of `payloadLength` as fit (at least 1).
 */
export function appBatchFor256KiB(payloadLength: number): AppBatchOptions {
  const records = Math.floor(
    (MAX_MESSAGE_BYTES - BATCH_RESERVE_BYTES) / (payloadLength + RECORD_OVERHEAD_BYTES),
  );
  return { maxMessages: Math.max(1, records), maxBytes: MAX_MESSAGE_BYTES };
}

/** Options of {@link sizeQueues}. */
export interface QueueSizingOptions {
  /** Source messages per second. */
  readonly ratePerSec: number;
  /** Bytes per source message (body). */
  readonly payloadLength: number;
  /** Time to live, seconds: how long the uplink may be down before messages expire. */
  readonly ttlSecs: number;
  /** Endpoint+priority queues that each receive the whole rate; default 1. */
  readonly queues?: number;
  /** Source messages per stored message (application batching); default 1. */
  readonly recordsPerMessage?: number;
  /** Per-stored-message overhead, bytes; default {@link DEFAULT_OVERHEAD_BYTES_PER_MESSAGE}. */
  readonly overheadBytesPerMessage?: number;
  /** Disk size in GB (10^9 bytes); when given, the result says whether the queues fit and the longest TTL that does. */
  readonly diskGb?: number;
  /** Share of the disk the queues may use; default {@link DEFAULT_USABLE_DISK_FRACTION}. */
  readonly usableDiskFraction?: number;
}

/** Worst-case queue size: the uplink is down for the whole TTL. */
export interface QueueSizing {
  readonly ratePerSec: number;
  readonly payloadLength: number;
  readonly ttlSecs: number;
  readonly queues: number;
  readonly recordsPerMessage: number;
  readonly overheadBytesPerMessage: number;
  /** Stored messages per second per queue (rate / records per message). */
  readonly storedMessagesPerSec: number;
  /** Messages held per queue at the end of the TTL. */
  readonly messagesPerQueue: number;
  /** Payload bytes across all queues: the #835 rule, rate × size × TTL × queues. */
  readonly payloadBytes: number;
  /** Overhead bytes across all queues. */
  readonly overheadBytes: number;
  /** Disk the queues need: payload + overhead. */
  readonly diskBytes: number;
  /** RAM an in-memory store (UsePersistentStorage=false) would need for the same queue; same bytes, .NET object overhead not counted. */
  readonly ramBytes: number;
  /** Bytes added per second of outage across all queues. */
  readonly bytesPerSec: number;
  /** Given disk, bytes (10^9 × diskGb). */
  readonly diskSizeBytes?: number;
  /** Bytes the queues may use on that disk. */
  readonly usableDiskBytes?: number;
  readonly usableDiskFraction?: number;
  /** True when {@link diskBytes} ≤ {@link usableDiskBytes}. */
  readonly fits?: boolean;
  /** Longest TTL, seconds, whose worst case fits the usable disk. */
  readonly maxTtlSecs?: number;
}

/**
 * Sizes the store-and-forward queues for an outage as long as the TTL.
 * @throws RangeError when a number is negative or not finite (the CLI validates flags first).
 */
export function sizeQueues(options: QueueSizingOptions): QueueSizing {
  const queues = options.queues ?? 1;
  const records = options.recordsPerMessage ?? 1;
  const overhead = options.overheadBytesPerMessage ?? DEFAULT_OVERHEAD_BYTES_PER_MESSAGE;
  for (const [name, v] of Object.entries({
    ratePerSec: options.ratePerSec,
    payloadLength: options.payloadLength,
    ttlSecs: options.ttlSecs,
    queues,
    overhead,
  })) {
    if (!Number.isFinite(v) || v < 0) throw new RangeError(`${name} must be a finite number >= 0 (got ${v})`);
  }
  if (!(records >= 1)) throw new RangeError(`recordsPerMessage must be >= 1 (got ${records})`);
  const storedPerSec = options.ratePerSec / records;
  const bytesPerSec = queues * (options.ratePerSec * options.payloadLength + storedPerSec * overhead);
  const payloadBytes = queues * options.ratePerSec * options.payloadLength * options.ttlSecs;
  const overheadBytes = queues * storedPerSec * overhead * options.ttlSecs;
  const diskBytes = payloadBytes + overheadBytes;
  const base: QueueSizing = {
    ratePerSec: options.ratePerSec,
    payloadLength: options.payloadLength,
    ttlSecs: options.ttlSecs,
    queues,
    recordsPerMessage: records,
    overheadBytesPerMessage: overhead,
    storedMessagesPerSec: storedPerSec,
    messagesPerQueue: storedPerSec * options.ttlSecs,
    payloadBytes,
    overheadBytes,
    diskBytes,
    ramBytes: diskBytes,
    bytesPerSec,
  };
  if (options.diskGb === undefined) return base;
  const fraction = options.usableDiskFraction ?? DEFAULT_USABLE_DISK_FRACTION;
  const diskSizeBytes = options.diskGb * GB;
  const usable = diskSizeBytes * fraction;
  return {
    ...base,
    diskSizeBytes,
    usableDiskBytes: usable,
    usableDiskFraction: fraction,
    fits: diskBytes <= usable,
    maxTtlSecs: bytesPerSec > 0 ? Math.floor(usable / bytesPerSec) : Number.POSITIVE_INFINITY,
  };
}

/** `14.7 GB (13.7 GiB)`, `0.74 GB (0.69 GiB)`: decimal and binary units side by side. */
export function formatBytes(bytes: number): string {
  if (bytes >= 10 * GB) return `${(bytes / GB).toFixed(1)} GB (${(bytes / GIB).toFixed(1)} GiB)`;
  if (bytes >= GB / 10) return `${(bytes / GB).toFixed(2)} GB (${(bytes / GIB).toFixed(2)} GiB)`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB (${(bytes / 2 ** 20).toFixed(1)} MiB)`;
  if (bytes >= 1e3) return `${(bytes / 1e3).toFixed(1)} kB (${(bytes / 1024).toFixed(1)} KiB)`;
  return `${Math.round(bytes)} B`;
}

/** `2 h 0 min` style duration for seconds. */
export function formatDuration(secs: number): string {
  if (!Number.isFinite(secs)) return 'unlimited';
  const s = Math.max(0, Math.floor(secs));
  if (s < 60) return `${s} s`;
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (h === 0) return `${m} min ${s % 60} s`;
  if (h < 48) return `${h} h ${m} min`;
  return `${(s / 86_400).toFixed(1)} d`;
}
