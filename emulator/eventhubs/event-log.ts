import { createHash } from 'node:crypto';
import { z } from 'zod';
import { EdgePerfError, parseSettings } from '../../modules/common/index.js';
import type { StoredEvent } from './partition-log.js';

/** The consumer group every event hub has (matched case-insensitively, as Event Hubs does). */
export const DEFAULT_CONSUMER_GROUP = '$Default';

/** An event as a producer hands it to {@link EventHub.append}; the log assigns the rest. */
export interface EventInput {
  readonly body: Buffer;
  /** Application properties. */
  readonly properties?: Readonly<Record<string, string | number | boolean>>;
  /** Extra message annotations (IoT Hub: `iothub-connection-device-id`, `iothub-enqueuedtime`, …). */
  readonly annotations?: Readonly<Record<string, string | number | boolean | Date>>;
  /** AMQP properties: message_id, correlation_id, content_type, content_encoding, user_id. */
  readonly amqpProperties?: Readonly<Record<string, string | undefined>>;
  /** Stored and delivered as `x-opt-partition-key`. */
  readonly partitionKey?: string;
  /**
   * Enqueue time, ms since epoch; default now. Clamped so it never goes back within a partition
   * (start-at-enqueued-time searches rely on order).
   */
  readonly enqueuedTimeMs?: number;
}

/**
 * Where {@link EventHub.append} puts events: a partition id, else a partition key (hashed to a
 * partition; the key is stored on each event unless the event has its own), else round robin.
 */
export interface AppendTarget {
  readonly partitionId?: string;
  readonly partitionKey?: string;
}

/** Retention of every partition: the first bound reached evicts the oldest events. */
export interface RetentionOptions {
  /** Max events kept per partition; default 100,000. */
  readonly maxEventsPerPartition?: number;
  /** Max stored bytes per partition (body + properties + annotations); default 64 MiB. */
  readonly maxBytesPerPartition?: number;
  /** Max age of an event in seconds; default 3,600. */
  readonly retentionSecs?: number;
}

/** One event hub. */
export interface EventHubConfig {
  /** Entity name (`EntityPath`); 1-256 of letters, digits, `.`, `-`, `_`. */
  readonly name: string;
  /** Number of partitions, ids `0`…`n-1`; default 4, allowed 1-32. */
  readonly partitionCount?: number;
  /** Consumer groups besides `$Default` (which always exists). */
  readonly consumerGroups?: readonly string[];
}

/** Options of {@link EventLog}. */
export interface EventLogOptions {
  readonly hubs?: readonly EventHubConfig[];
  readonly retention?: RetentionOptions;
  /** Clock, ms since epoch (tests inject one); default `Date.now`. */
  readonly now?: () => number;
  /**
   * Called when an append listener throws; the append itself still succeeds and other listeners
   * still run. Default: ignore.
   */
  readonly onListenerError?: (error: unknown) => void;
}

/** Snapshot of a partition, the fields `$management` reports. */
export interface PartitionInfo {
  readonly hubName: string;
  readonly partitionId: string;
  /** First retained sequence number (the next one when the partition is empty). */
  readonly beginSequenceNumber: number;
  /** -1 before the first event. */
  readonly lastEnqueuedSequenceNumber: number;
  /** `-1` before the first event. */
  readonly lastEnqueuedOffset: string;
  /** 0 before the first event. */
  readonly lastEnqueuedTimeMs: number;
  readonly isEmpty: boolean;
}

/** Thrown for an unknown hub, partition or consumer group (`E_EH_NOT_FOUND`). */
export class EntityNotFoundError extends EdgePerfError {
  constructor(message: string) {
    super('E_EH_NOT_FOUND', message);
    this.name = 'EntityNotFoundError';
  }
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,255}$/;
const CG_NAME = /^\$?[A-Za-z0-9][A-Za-z0-9._-]{0,49}$/;

const optionsSchema = z.object({
  hubs: z
    .array(
      z.object({
        name: z.string().regex(NAME, 'must be 1-256 of letters, digits, ".", "-", "_"'),
        partitionCount: z.number().int().min(1).max(32).default(4),
        consumerGroups: z
          .array(z.string().regex(CG_NAME, 'must be 1-50 of letters, digits, ".", "-", "_"'))
          .default([]),
      }),
    )
    .default([]),
  retention: z
    .object({
      maxEventsPerPartition: z.number().int().min(1).default(100_000),
      maxBytesPerPartition: z
        .number()
        .int()
        .min(1024)
        .default(64 * 1024 * 1024),
      retentionSecs: z.number().min(0.001).default(3600),
    })
    .default({ maxEventsPerPartition: 100_000, maxBytesPerPartition: 64 * 1024 * 1024, retentionSecs: 3600 }),
});

type Retention = z.output<typeof optionsSchema>['retention'];

// Fixed per-event overhead so offsets advance and byte bounds hold even for empty bodies.
const EVENT_OVERHEAD_BYTES = 64;

/**
 * The in-memory store behind the AMQP endpoint: named event hubs, each with partitions of
 * {@link StoredEvent}. Nothing is unbounded: retention evicts by count, bytes and age (age is
 * checked on every append and read, so no timer runs).
 */
export class EventLog {
  private readonly hubsByKey = new Map<string, EventHub>();
  private readonly retention: Retention;
  private readonly now: () => number;
  private readonly onListenerError: (error: unknown) => void;

  /** @throws ConfigError naming every invalid field; EdgePerfError when a hub name repeats. */
  constructor(options: EventLogOptions = {}) {
    const parsed = parseSettings(
      optionsSchema,
      { hubs: options.hubs, retention: options.retention },
      'eventHubs',
    );
    this.retention = parsed.retention;
    this.now = options.now ?? Date.now;
    this.onListenerError = options.onListenerError ?? (() => undefined);
    for (const hub of parsed.hubs) this.addHub(hub);
  }

  /**
   * Adds an event hub (idempotent for the same name and partition count; extra consumer groups
   * are merged).
   * @throws ConfigError for an invalid config; EdgePerfError when the name exists with another partition count.
   */
  addHub(config: EventHubConfig): EventHub {
    const parsed = parseSettings(optionsSchema.shape.hubs, [config], 'eventHubs.hubs')[0];
    if (parsed === undefined) throw new EdgePerfError('E_CONFIG', 'eventHubs.hubs: missing hub');
    const key = parsed.name.toLowerCase();
    const existing = this.hubsByKey.get(key);
    if (existing !== undefined) {
      if (existing.partitionIds.length !== parsed.partitionCount) {
        throw new EdgePerfError(
          'E_CONFIG',
          `eventHubs.hubs: hub "${parsed.name}" already exists with ${existing.partitionIds.length} partitions`,
          { exitCode: 2 },
        );
      }
      for (const cg of parsed.consumerGroups) existing.addConsumerGroup(cg);
      return existing;
    }
    const hub = new EventHub(
      parsed.name,
      parsed.partitionCount,
      parsed.consumerGroups,
      this.retention,
      this.now,
      this.onListenerError,
    );
    this.hubsByKey.set(key, hub);
    return hub;
  }

  /** The hub of that name (case-insensitive), or undefined. */
  findHub(name: string): EventHub | undefined {
    return this.hubsByKey.get(name.toLowerCase());
  }

  /** @throws EntityNotFoundError when there is no such hub. */
  hub(name: string): EventHub {
    const hub = this.findHub(name);
    if (hub === undefined) throw new EntityNotFoundError(`event hub "${name}" does not exist`);
    return hub;
  }

  /** Names of all hubs, as configured. */
  hubNames(): string[] {
    return [...this.hubsByKey.values()].map((h) => h.name);
  }
}

/** One event hub: its partitions, consumer groups and the producer-facing `append`. */
export class EventHub {
  readonly name: string;
  readonly createdAtMs: number;
  readonly partitionIds: readonly string[];
  private readonly partitions: readonly PartitionLog[];
  private readonly groups = new Map<string, string>();
  private roundRobin = 0;

  /** Use {@link EventLog.addHub}. */
  constructor(
    name: string,
    partitionCount: number,
    consumerGroups: readonly string[],
    retention: Retention,
    now: () => number,
    onListenerError: (error: unknown) => void = () => undefined,
  ) {
    this.name = name;
    this.createdAtMs = now();
    this.partitionIds = Array.from({ length: partitionCount }, (_, i) => String(i));
    this.partitions = this.partitionIds.map(
      (id) => new PartitionLog(name, id, retention, now, onListenerError),
    );
    for (const cg of [DEFAULT_CONSUMER_GROUP, ...consumerGroups]) this.addConsumerGroup(cg);
  }

  /** Adds a consumer group (no-op when it exists, case-insensitively). */
  addConsumerGroup(name: string): void {
    if (!this.groups.has(name.toLowerCase())) this.groups.set(name.toLowerCase(), name);
  }

  /** Whether a consumer group exists (case-insensitive). */
  hasConsumerGroup(name: string): boolean {
    return this.groups.has(name.toLowerCase());
  }

  /** Consumer group names as configured. */
  consumerGroups(): string[] {
    return [...this.groups.values()];
  }

  /** @throws EntityNotFoundError for an unknown partition id. */
  partition(partitionId: string): PartitionLog {
    const index = /^\d+$/.test(partitionId) ? Number(partitionId) : -1;
    const log = this.partitions[index];
    if (log === undefined) {
      throw new EntityNotFoundError(
        `event hub "${this.name}" has no partition "${partitionId}" (ids 0-${this.partitions.length - 1})`,
      );
    }
    return log;
  }

  /** The partition a key maps to; stable for a given key and partition count. */
  partitionIdForKey(partitionKey: string): string {
    const digest = createHash('sha256').update(partitionKey, 'utf8').digest();
    return String(digest.readUInt32BE(0) % this.partitions.length);
  }

  /**
   * Appends events, all to one partition (a batch stays together, as in Event Hubs).
   * @returns the stored events, with sequence numbers, offsets and enqueue times.
   * @throws EntityNotFoundError for an unknown partition id.
   */
  append(events: readonly EventInput[], target: AppendTarget = {}): StoredEvent[] {
    let partitionId: string;
    if (target.partitionId !== undefined) partitionId = target.partitionId;
    else if (target.partitionKey !== undefined) partitionId = this.partitionIdForKey(target.partitionKey);
    else {
      partitionId = String(this.roundRobin % this.partitions.length);
      this.roundRobin = (this.roundRobin + 1) % this.partitions.length;
    }
    const log = this.partition(partitionId);
    const key = target.partitionKey;
    return log.append(
      key === undefined
        ? events
        : events.map((e) => (e.partitionKey === undefined ? { ...e, partitionKey: key } : e)),
    );
  }
}

/** Listener for appends to a partition; called synchronously after the events are stored. */
export type AppendListener = (events: readonly StoredEvent[]) => void;

/** A start position, as parsed from a consumer's selector filter. */
export type StartPosition =
  | { readonly kind: 'offset'; readonly offset: string; readonly inclusive: boolean }
  | { readonly kind: 'sequence'; readonly sequenceNumber: number; readonly inclusive: boolean }
  | { readonly kind: 'enqueued'; readonly enqueuedTimeMs: number; readonly inclusive: boolean }
  | { readonly kind: 'earliest' }
  | { readonly kind: 'latest' };

/** Thrown when a start position lies beyond the end of the partition (`E_EH_OUT_OF_RANGE`). */
export class PositionOutOfRangeError extends EdgePerfError {
  constructor(message: string) {
    super('E_EH_OUT_OF_RANGE', message);
    this.name = 'PositionOutOfRangeError';
  }
}

interface Entry {
  readonly event: StoredEvent;
  readonly sizeBytes: number;
}

/** One partition: an append-only, retention-bounded sequence of events. */
export class PartitionLog {
  readonly hubName: string;
  readonly partitionId: string;
  // A deque as array + head index; compacted when the dead prefix dominates.
  private entries: Entry[] = [];
  private head = 0;
  private bytes = 0;
  private nextSequenceNumber = 0;
  private nextOffset = 0;
  private lastEnqueuedTimeMs = 0;
  private lastOffset = '-1';
  private readonly listeners = new Set<AppendListener>();

  /** Use {@link EventHub.partition}. */
  constructor(
    hubName: string,
    partitionId: string,
    private readonly retention: Retention,
    private readonly now: () => number,
    private readonly onListenerError: (error: unknown) => void = () => undefined,
  ) {
    this.hubName = hubName;
    this.partitionId = partitionId;
  }

  /** Stores events, evicts what retention no longer allows, then notifies listeners. */
  append(events: readonly EventInput[]): StoredEvent[] {
    const stored: StoredEvent[] = [];
    const nowMs = this.now();
    for (const input of events) {
      const enqueuedTimeMs = Math.max(input.enqueuedTimeMs ?? nowMs, this.lastEnqueuedTimeMs);
      const event: StoredEvent = {
        body: input.body,
        properties: input.properties ?? {},
        annotations: input.annotations ?? {},
        amqpProperties: input.amqpProperties ?? {},
        ...(input.partitionKey === undefined ? {} : { partitionKey: input.partitionKey }),
        sequenceNumber: this.nextSequenceNumber,
        offset: String(this.nextOffset),
        enqueuedTimeMs,
      };
      const sizeBytes = storedSize(event);
      this.entries.push({ event, sizeBytes });
      this.bytes += sizeBytes;
      this.nextSequenceNumber += 1;
      this.lastOffset = event.offset;
      this.nextOffset += sizeBytes;
      this.lastEnqueuedTimeMs = enqueuedTimeMs;
      stored.push(event);
    }
    this.evict(nowMs);
    for (const listener of this.listeners) {
      // A consumer's failure must not fail the producer's append.
      try {
        listener(stored);
      } catch (err) {
        this.onListenerError(err);
      }
    }
    return stored;
  }

  /** Subscribes to appends; returns the unsubscribe function. */
  onAppend(listener: AppendListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Number of retained events. */
  get size(): number {
    this.evict(this.now());
    return this.entries.length - this.head;
  }

  /** Retained bytes (as counted for retention). */
  get sizeBytes(): number {
    this.evict(this.now());
    return this.bytes;
  }

  /** The sequence number the next append gets. */
  get endSequenceNumber(): number {
    return this.nextSequenceNumber;
  }

  /** Properties as `$management` reports them. */
  info(): PartitionInfo {
    this.evict(this.now());
    const empty = this.entries.length === this.head;
    const first = this.entries[this.head];
    return {
      hubName: this.hubName,
      partitionId: this.partitionId,
      beginSequenceNumber: first === undefined ? this.nextSequenceNumber : first.event.sequenceNumber,
      lastEnqueuedSequenceNumber: this.nextSequenceNumber - 1,
      lastEnqueuedOffset: this.lastOffset,
      lastEnqueuedTimeMs: this.lastEnqueuedTimeMs,
      isEmpty: empty,
    };
  }

  /**
   * Up to `maxCount` retained events with sequence number ≥ `fromSequenceNumber` (from the
   * oldest retained one when that has been evicted).
   */
  read(fromSequenceNumber: number, maxCount: number): StoredEvent[] {
    this.evict(this.now());
    const first = this.entries[this.head];
    if (first === undefined || maxCount <= 0) return [];
    const start = this.head + Math.max(0, fromSequenceNumber - first.event.sequenceNumber);
    const end = Math.min(this.entries.length, start + maxCount);
    const out: StoredEvent[] = [];
    for (let i = start; i < end; i++) {
      const entry = this.entries[i];
      if (entry !== undefined) out.push(entry.event);
    }
    return out;
  }

  /**
   * The sequence number a consumer starting at `position` receives first.
   * @throws PositionOutOfRangeError for a sequence number or offset beyond the end (as Event Hubs).
   */
  resolve(position: StartPosition): number {
    this.evict(this.now());
    const first = this.entries[this.head]?.event.sequenceNumber ?? this.nextSequenceNumber;
    switch (position.kind) {
      case 'earliest':
        return first;
      case 'latest':
        return this.nextSequenceNumber;
      case 'sequence': {
        const seq = position.inclusive ? position.sequenceNumber : position.sequenceNumber + 1;
        if (seq > this.nextSequenceNumber) {
          throw new PositionOutOfRangeError(
            `sequence number ${position.sequenceNumber} is beyond the last one in partition ${this.partitionId} (${this.nextSequenceNumber - 1})`,
          );
        }
        return Math.max(seq, first);
      }
      case 'offset': {
        if (position.offset === '-1') return first;
        if (position.offset === '@latest') return this.nextSequenceNumber;
        const target = Number(position.offset);
        if (!Number.isFinite(target))
          throw new PositionOutOfRangeError(`offset "${position.offset}" is not a number`);
        if (target > this.nextOffset) {
          throw new PositionOutOfRangeError(
            `offset ${position.offset} is beyond the end of partition ${this.partitionId}`,
          );
        }
        return this.firstIndexWhere((e) =>
          position.inclusive ? Number(e.offset) >= target : Number(e.offset) > target,
        );
      }
      case 'enqueued':
        return this.firstIndexWhere((e) =>
          position.inclusive
            ? e.enqueuedTimeMs >= position.enqueuedTimeMs
            : e.enqueuedTimeMs > position.enqueuedTimeMs,
        );
    }
  }

  // Binary search over retained events for a monotone predicate; the next sequence number when none match.
  private firstIndexWhere(pred: (e: StoredEvent) => boolean): number {
    let lo = this.head;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const entry = this.entries[mid];
      if (entry !== undefined && pred(entry.event)) hi = mid;
      else lo = mid + 1;
    }
    return this.entries[lo]?.event.sequenceNumber ?? this.nextSequenceNumber;
  }

  private evict(nowMs: number): void {
    const { maxEventsPerPartition, maxBytesPerPartition, retentionSecs } = this.retention;
    const oldestAllowedMs = nowMs - retentionSecs * 1000;
    while (this.head < this.entries.length) {
      const entry = this.entries[this.head];
      if (entry === undefined) break;
      const count = this.entries.length - this.head;
      if (
        count <= maxEventsPerPartition &&
        this.bytes <= maxBytesPerPartition &&
        entry.event.enqueuedTimeMs >= oldestAllowedMs
      ) {
        break;
      }
      this.bytes -= entry.sizeBytes;
      this.head += 1;
    }
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }
}

function storedSize(event: StoredEvent): number {
  let size = EVENT_OVERHEAD_BYTES + event.body.length + (event.partitionKey?.length ?? 0);
  for (const [k, v] of Object.entries(event.properties)) size += k.length + String(v).length;
  for (const [k, v] of Object.entries(event.annotations)) size += k.length + String(v).length;
  for (const [k, v] of Object.entries(event.amqpProperties)) size += k.length + (v?.length ?? 0);
  return size;
}
