import { logicalMessagesOf, parseAsaTime } from './asa-input.js';

/** What happens to an event beyond the late-arrival or out-of-order tolerance (ASA `EventsOutOfOrderPolicy`). */
export type OutOfOrderPolicy = 'Adjust' | 'Drop';

/** The event-ordering settings of an ASA job (JobConfig.json); ASA's own defaults apply. */
export interface EventOrderingOptions {
  /** `EventsLateArrivalMaxDelayInSeconds`; default 5 (ASA's default). */
  readonly lateArrivalMaxDelaySecs?: number;
  /** `EventsOutOfOrderMaxDelayInSeconds`; default 0 (ASA's default). */
  readonly outOfOrderMaxDelaySecs?: number;
  /** `EventsOutOfOrderPolicy`, for late and out-of-order events alike; default `Adjust`. */
  readonly outOfOrderPolicy?: OutOfOrderPolicy;
}

/** Options of {@link StreamJobEngine}. */
export interface StreamJobEngineOptions extends EventOrderingOptions {
  /** Tumbling window size, ms; default 1,000 (the query's `TumblingWindow(second, 1)`). */
  readonly windowSizeInMs?: number;
  /**
   * Input partitions known to exist (for the built-in endpoint: its partition ids). A partition
   * with no events yet holds the watermark at estimated arrival minus the late-arrival delay, as
   * an idle input partition does in ASA. Default: only the partitions seen.
   */
  readonly partitionIds?: readonly string[];
}

/**
 * One output row: what `asa/edgeperf.asaql` selects for one session, burst and 1 s window.
 * Times are unix ms; latency is IoT Hub enqueue time minus creation time, ms.
 */
export interface StreamJobRow {
  readonly sid: string;
  readonly burst: number;
  /** Window end (`System.Timestamp()`); the window is (end - size, end]. */
  readonly windowEndMs: number;
  /** Logical messages (records of batches plus plain messages) in the window. */
  readonly messages: number;
  /** Sum of `LEN(payload)` (characters, trailing blanks excluded, as ASA's LEN). */
  readonly payloadBytes: number;
  readonly firstCreatedMs: number;
  readonly lastCreatedMs: number;
  readonly firstEnqueuedMs: number;
  readonly lastEnqueuedMs: number;
  readonly minSeq: number;
  readonly maxSeq: number;
  readonly latencyMinMs: number;
  readonly latencyMaxMs: number;
  /** Exact sum, so a consumer can compute the overall mean without averaging window means. */
  readonly latencySumMs: number;
  readonly latencyAvgMs: number;
  /** `PERCENTILE_CONT(0.5)`: linear interpolation between closest ranks (see {@link percentileCont}). */
  readonly latencyP50Ms: number;
  readonly latencyP95Ms: number;
  readonly latencyP99Ms: number;
}

/** Counters of {@link StreamJobEngine}. */
export interface StreamJobStats {
  /** Input events accepted (each may carry many logical messages). */
  events: number;
  /** Logical messages aggregated. */
  messages: number;
  /** Input events skipped: body not a JSON object, or no usable `IoTHub.EnqueuedTime`. */
  malformed: number;
  /** Records or plain events without usable perf fields (filtered out, as the query's WHERE does). */
  ignoredRecords: number;
  /** Events whose timestamp was moved: late arrival, out of order, or behind the watermark. */
  adjusted: number;
  /** Events dropped by the `Drop` policy. */
  dropped: number;
  /** Rows emitted. */
  rows: number;
}

/** Where an event came from and when the job saw it. */
export interface PushOptions {
  /** Input partition; default the event's `PartitionId` field, else `"0"`. */
  readonly partitionId?: string;
  /** Wall clock when the event was read, ms; enables {@link StreamJobEngine.advance}. */
  readonly wallClockMs?: number;
}

interface Acc {
  readonly sid: string;
  readonly burst: number;
  messages: number;
  payloadBytes: number;
  firstCreatedMs: number;
  lastCreatedMs: number;
  firstEnqueuedMs: number;
  lastEnqueuedMs: number;
  minSeq: number;
  maxSeq: number;
  latencySumMs: number;
  readonly latencies: number[];
}

/**
 * The semantics of `asa/edgeperf.asaql` as a pure engine: feed it input events shaped as ASA's
 * IoT Hub input delivers them (body fields plus `IoTHub`, `EventEnqueuedUtcTime`), get the rows
 * the query outputs. It implements that one query, not the ASA language.
 *
 * Time handling follows ASA's documented model: event time is `IoTHub.EnqueuedTime` (TIMESTAMP
 * BY); arrival time is `EventEnqueuedUtcTime`. An event earlier than arrival minus the late-arrival
 * delay is late; then one earlier than its partition's latest event time minus the out-of-order
 * delay is out of order; either is adjusted to that bound or dropped by policy. The watermark is,
 * over partitions, the minimum of max(latest event time − out-of-order delay, estimated arrival −
 * late-arrival delay); a window (end − size, end] is emitted once the watermark passes its end.
 * An event whose window already closed is adjusted to the watermark (or dropped).
 */
export class StreamJobEngine {
  private readonly lateMs: number;
  private readonly outOfOrderMs: number;
  private readonly policy: OutOfOrderPolicy;
  private readonly windowMs: number;
  private readonly declared: readonly string[];
  private readonly maxEventTime = new Map<string, number>();
  private readonly windows = new Map<number, Map<string, Acc>>();
  private watermark = Number.NEGATIVE_INFINITY;
  private lastArrivalMs = Number.NEGATIVE_INFINITY;
  private wallAtLastArrivalMs: number | undefined;
  private readonly counters: StreamJobStats = {
    events: 0,
    messages: 0,
    malformed: 0,
    ignoredRecords: 0,
    adjusted: 0,
    dropped: 0,
    rows: 0,
  };

  /** @throws RangeError for a negative delay or a window size that is not a positive integer. */
  constructor(options: StreamJobEngineOptions = {}) {
    const late = options.lateArrivalMaxDelaySecs ?? 5;
    const ooo = options.outOfOrderMaxDelaySecs ?? 0;
    const size = options.windowSizeInMs ?? 1000;
    if (!(late >= 0)) throw new RangeError(`lateArrivalMaxDelaySecs: ${late} is not allowed; use >= 0`);
    if (!(ooo >= 0)) throw new RangeError(`outOfOrderMaxDelaySecs: ${ooo} is not allowed; use >= 0`);
    if (!Number.isInteger(size) || size <= 0) {
      throw new RangeError(`windowSizeInMs: ${size} is not allowed; use a positive integer`);
    }
    this.lateMs = late * 1000;
    this.outOfOrderMs = ooo * 1000;
    this.policy = options.outOfOrderPolicy ?? 'Adjust';
    this.windowMs = size;
    this.declared = options.partitionIds ?? [];
  }

  /** A copy of the counters. */
  stats(): StreamJobStats {
    return { ...this.counters };
  }

  /** Current watermark, ms (−Infinity before the first event). */
  get watermarkMs(): number {
    return this.watermark;
  }

  /** Windows still open. */
  get openWindows(): number {
    return this.windows.size;
  }

  /**
   * Processes one input event (call in arrival order). Never throws for bad input: a malformed
   * event is counted and skipped.
   * @returns rows of the windows this event's arrival closed.
   */
  push(event: unknown, options: PushOptions = {}): StreamJobRow[] {
    if (event === null || typeof event !== 'object' || Array.isArray(event)) {
      this.counters.malformed++;
      return [];
    }
    const fields = event as Record<string, unknown>;
    const iothub = fields.IoTHub;
    const enqueued =
      iothub !== null && typeof iothub === 'object'
        ? parseAsaTime((iothub as Record<string, unknown>).EnqueuedTime)
        : undefined;
    if (enqueued === undefined) {
      this.counters.malformed++;
      return [];
    }
    const arrival = parseAsaTime(fields.EventEnqueuedUtcTime) ?? enqueued;
    const partition = options.partitionId ?? partitionOf(fields.PartitionId);

    let t = enqueued;
    let adjusted = false;
    if (t < arrival - this.lateMs) {
      if (this.policy === 'Drop') return this.drop(arrival, options.wallClockMs);
      t = arrival - this.lateMs;
      adjusted = true;
    }
    const maxT = this.maxEventTime.get(partition) ?? Number.NEGATIVE_INFINITY;
    if (t < maxT - this.outOfOrderMs) {
      if (this.policy === 'Drop') return this.drop(arrival, options.wallClockMs);
      t = maxT - this.outOfOrderMs;
      adjusted = true;
    }
    if (this.watermark > this.windowEnd(t)) {
      if (this.policy === 'Drop') return this.drop(arrival, options.wallClockMs);
      t = this.watermark;
      adjusted = true;
    }
    if (adjusted) this.counters.adjusted++;
    if (t > maxT) this.maxEventTime.set(partition, t);
    this.counters.events++;

    const enqueuedMs = Math.floor(enqueued);
    const end = this.windowEnd(t);
    const { messages, ignored } = logicalMessagesOf(fields);
    this.counters.ignoredRecords += ignored;
    for (const m of messages) {
      let group = this.windows.get(end);
      if (group === undefined) {
        group = new Map();
        this.windows.set(end, group);
      }
      const key = `${m.burst}\u0000${m.sid}`;
      const latency = enqueuedMs - m.createdMs;
      const acc = group.get(key);
      if (acc === undefined) {
        group.set(key, {
          sid: m.sid,
          burst: m.burst,
          messages: 1,
          payloadBytes: m.payloadBytes,
          firstCreatedMs: m.createdMs,
          lastCreatedMs: m.createdMs,
          firstEnqueuedMs: enqueuedMs,
          lastEnqueuedMs: enqueuedMs,
          minSeq: m.seq,
          maxSeq: m.seq,
          latencySumMs: latency,
          latencies: [latency],
        });
      } else {
        acc.messages++;
        acc.payloadBytes += m.payloadBytes;
        acc.firstCreatedMs = Math.min(acc.firstCreatedMs, m.createdMs);
        acc.lastCreatedMs = Math.max(acc.lastCreatedMs, m.createdMs);
        acc.firstEnqueuedMs = Math.min(acc.firstEnqueuedMs, enqueuedMs);
        acc.lastEnqueuedMs = Math.max(acc.lastEnqueuedMs, enqueuedMs);
        acc.minSeq = Math.min(acc.minSeq, m.seq);
        acc.maxSeq = Math.max(acc.maxSeq, m.seq);
        acc.latencySumMs += latency;
        acc.latencies.push(latency);
      }
    }
    this.counters.messages += messages.length;
    return this.arrive(arrival, options.wallClockMs);
  }

  /**
   * Advances time without input (the runner calls this on a timer): the estimated arrival time
   * is the last event's arrival plus the wall time since it was read, as ASA estimates it for
   * idle inputs. No-op before the first event pushed with `wallClockMs`.
   * @returns rows of the windows that closed.
   */
  advance(wallClockMs: number): StreamJobRow[] {
    if (this.wallAtLastArrivalMs === undefined) return [];
    const estimated = this.lastArrivalMs + Math.max(0, wallClockMs - this.wallAtLastArrivalMs);
    return this.closeUpTo(this.computeWatermark(estimated));
  }

  /** Closes every open window (end of input). @returns their rows. */
  flush(): StreamJobRow[] {
    return this.closeUpTo(Number.POSITIVE_INFINITY);
  }

  private drop(arrival: number, wallClockMs: number | undefined): StreamJobRow[] {
    this.counters.dropped++;
    return this.arrive(arrival, wallClockMs);
  }

  private arrive(arrival: number, wallClockMs: number | undefined): StreamJobRow[] {
    if (arrival >= this.lastArrivalMs) {
      this.lastArrivalMs = arrival;
      if (wallClockMs !== undefined) this.wallAtLastArrivalMs = wallClockMs;
    }
    return this.closeUpTo(this.computeWatermark(this.lastArrivalMs));
  }

  private computeWatermark(estimatedArrivalMs: number): number {
    let w = Number.POSITIVE_INFINITY;
    let any = false;
    const idle = estimatedArrivalMs - this.lateMs;
    for (const id of this.declared) {
      if (!this.maxEventTime.has(id)) {
        any = true;
        w = Math.min(w, idle);
      }
    }
    for (const maxT of this.maxEventTime.values()) {
      any = true;
      w = Math.min(w, Math.max(maxT - this.outOfOrderMs, idle));
    }
    return any ? w : Number.NEGATIVE_INFINITY;
  }

  private closeUpTo(candidate: number): StreamJobRow[] {
    if (candidate > this.watermark) this.watermark = candidate;
    const due = [...this.windows.keys()].filter((end) => this.watermark > end).sort((a, b) => a - b);
    const rows: StreamJobRow[] = [];
    for (const end of due) {
      const group = this.windows.get(end);
      this.windows.delete(end);
      if (group === undefined) continue;
      const accs = [...group.values()].sort((a, b) =>
        a.sid < b.sid ? -1 : a.sid > b.sid ? 1 : a.burst - b.burst,
      );
      for (const acc of accs) rows.push(toRow(end, acc));
    }
    this.counters.rows += rows.length;
    return rows;
  }

  private windowEnd(t: number): number {
    // Windows are (end - size, end]: an event exactly on a boundary belongs to the window ending there.
    return Math.ceil(t / this.windowMs) * this.windowMs;
  }
}

function toRow(windowEndMs: number, acc: Acc): StreamJobRow {
  const sorted = Float64Array.from(acc.latencies).sort();
  return {
    sid: acc.sid,
    burst: acc.burst,
    windowEndMs,
    messages: acc.messages,
    payloadBytes: acc.payloadBytes,
    firstCreatedMs: acc.firstCreatedMs,
    lastCreatedMs: acc.lastCreatedMs,
    firstEnqueuedMs: acc.firstEnqueuedMs,
    lastEnqueuedMs: acc.lastEnqueuedMs,
    minSeq: acc.minSeq,
    maxSeq: acc.maxSeq,
    latencyMinMs: sorted[0] as number,
    latencyMaxMs: sorted[sorted.length - 1] as number,
    latencySumMs: acc.latencySumMs,
    latencyAvgMs: acc.latencySumMs / acc.messages,
    latencyP50Ms: percentileCont(sorted, 0.5),
    latencyP95Ms: percentileCont(sorted, 0.95),
    latencyP99Ms: percentileCont(sorted, 0.99),
  };
}

function partitionOf(value: unknown): string {
  if (typeof value === 'number' && Number.isInteger(value)) return String(value);
  if (typeof value === 'string' && value !== '') return value;
  return '0';
}

/**
 * `PERCENTILE_CONT(p) OVER (ORDER BY x)`: with n sorted values and position `p × (n − 1)`, the
 * value at the lower rank plus the fraction of the way to the next one (linear interpolation,
 * Hyndman–Fan type 7, as SQL Server and ASA define it). One value gives that value.
 * @throws RangeError when `sortedAsc` is empty or `p` is outside [0, 1].
 */
export function percentileCont(sortedAsc: ArrayLike<number>, p: number): number {
  const n = sortedAsc.length;
  if (n === 0) throw new RangeError('percentileCont: no values');
  if (!(p >= 0 && p <= 1)) throw new RangeError(`percentileCont: p ${p} is not allowed; use 0 to 1`);
  const pos = p * (n - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = sortedAsc[lo] as number;
  const b = sortedAsc[hi] as number;
  return a + (b - a) * (pos - lo);
}

/**
 * Runs the query over a finite input (an ASA input mock): events in arrival order
 * (`EventEnqueuedUtcTime`, stable for ties), then end of input closes every window.
 * @returns the rows in window order, then `sid`, then `burst`.
 */
export function runStreamJob(
  events: readonly unknown[],
  options: StreamJobEngineOptions = {},
): { rows: StreamJobRow[]; stats: StreamJobStats } {
  const engine = new StreamJobEngine(options);
  const keyed = events.map((event, index) => ({ event, index, arrival: arrivalOf(event) }));
  keyed.sort((a, b) => a.arrival - b.arrival || a.index - b.index);
  const rows: StreamJobRow[] = [];
  for (const k of keyed) rows.push(...engine.push(k.event));
  rows.push(...engine.flush());
  return { rows, stats: engine.stats() };
}

function arrivalOf(event: unknown): number {
  if (event === null || typeof event !== 'object') return Number.NEGATIVE_INFINITY;
  const e = event as Record<string, unknown>;
  const iothub = e.IoTHub;
  return (
    parseAsaTime(e.EventEnqueuedUtcTime) ??
    (iothub !== null && typeof iothub === 'object'
      ? parseAsaTime((iothub as Record<string, unknown>).EnqueuedTime)
      : undefined) ??
    Number.NEGATIVE_INFINITY
  );
}
