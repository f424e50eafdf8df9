import { type PerfFields, perfFieldsOfBody } from '../../modules/common/index.js';
import { IntegrityTracker } from '../analysis/integrity.js';
import { latencyHistogram } from '../analysis/latency-histogram.js';
import { latencyFigures } from '../analysis/percentiles.js';
import type { BurstSummary, LatencyFigures } from '../analysis/summary-types.js';

/**
 * One event as read from IoT Hub's built-in endpoint (the fields of ReceivedEventData we use).
 * Every event has the same keys, in the same order: the collector's hot path then sees one object
 * shape. Events with varying shapes (the SDK's property bags) deoptimised `add` again and again, and
 * each re-optimisation cost 20–55 ms of compiler time (`node --trace-opt --trace-deopt`).
 */
export interface HubEvent {
  readonly body: unknown;
  /** The `edgeperf-encoding` application property (`json` or `gzip`). */
  readonly encoding: string | undefined;
  readonly enqueuedTimeMs: number;
  /** Bytes of the body as sent (before the SDK decoded it). */
  readonly bodyBytes: number;
  readonly deviceId: string | undefined;
}

/** Options for {@link EventCollector}. */
export interface EventCollectorOptions {
  readonly sessionId: string;
  readonly burstLength: number;
  readonly bursts: number;
  /** Unix ms the run started (series t = 0). */
  readonly startedAtMs: number;
}

interface Second {
  upstream: number;
  latencies: number[];
}

/**
 * Turns IoT Hub events into the run's figures: every logical message (batch records and plain
 * messages alike) is decoded, checked against the session's sequence numbers, and its latency
 * (enqueue time − creation time) kept exactly. Events of other sessions are ignored.
 */
export class EventCollector {
  readonly integrity: IntegrityTracker;
  private readonly latencies: number[] = [];
  private readonly burstLatencies = new Map<number, number[]>();
  private readonly burstSpan = new Map<number, { first: number; last: number; count: number }>();
  private readonly seconds: Second[] = [];
  private hubMessages = 0;
  private hubBytes = 0;
  private logicalBytes = 0;
  private meteredUnits = 0;
  private firstCreatedMs = Number.POSITIVE_INFINITY;
  private lastEnqueuedMs = 0;
  private malformed = 0;
  private lastArrivalMs = 0;

  constructor(private readonly options: EventCollectorOptions) {
    this.integrity = new IntegrityTracker(options.sessionId, options.burstLength, options.bursts);
  }

  /** Records one event; returns how many of the session's logical messages it carried. */
  add(event: HubEvent): number {
    const perfs = this.decode(event);
    if (perfs === undefined) return 0;
    const sid = this.options.sessionId;
    let mine = 0;
    for (let i = 0; i < perfs.length; i++) if ((perfs[i] as PerfFields).sid === sid) mine++;
    if (mine === 0) return 0;
    this.lastArrivalMs = Date.now();
    this.hubMessages += 1;
    this.hubBytes += event.bodyBytes;
    this.meteredUnits += Math.max(1, Math.ceil(event.bodyBytes / 4096));
    const perRecordBytes = event.bodyBytes / mine;
    const enqueued = event.enqueuedTimeMs;
    const sec = this.secondAt(enqueued);
    const device = event.deviceId ?? '';
    for (let i = 0; i < perfs.length; i++) {
      const p = perfs[i] as PerfFields;
      if (p.sid !== sid || !this.integrity.record(p.sid, p.burst, p.seq, p.dev ?? device)) continue;
      const latency = Math.max(0, enqueued - p.ts);
      this.latencies.push(latency);
      this.burstOf(p.burst, p.ts, enqueued).push(latency);
      if (p.ts < this.firstCreatedMs) this.firstCreatedMs = p.ts;
      this.logicalBytes += perRecordBytes;
      sec.upstream += 1;
      sec.latencies.push(latency);
    }
    if (enqueued > this.lastEnqueuedMs) this.lastEnqueuedMs = enqueued;
    return mine;
  }

  /** Perf fields of every record of the event; undefined (and counted) when the body is malformed. */
  private decode(event: HubEvent): PerfFields[] | undefined {
    const raw = toBytes(event.body);
    try {
      if (raw !== undefined) return perfFieldsOfBody(raw, event.encoding === 'gzip' ? 'gzip' : undefined);
    } catch {
      // counted below
    }
    this.malformed += 1;
    return undefined;
  }

  /** The latency list of a burst, widening its time span by one message. */
  private burstOf(burst: number, createdMs: number, enqueuedMs: number): number[] {
    let span = this.burstSpan.get(burst);
    if (span === undefined) {
      span = { first: createdMs, last: enqueuedMs, count: 0 };
      this.burstSpan.set(burst, span);
    }
    if (createdMs < span.first) span.first = createdMs;
    if (enqueuedMs > span.last) span.last = enqueuedMs;
    span.count += 1;
    let list = this.burstLatencies.get(burst);
    if (list === undefined) {
      list = [];
      this.burstLatencies.set(burst, list);
    }
    return list;
  }

  /** Logical messages counted (including duplicates). */
  get messages(): number {
    return this.latencies.length;
  }

  /** Wall-clock ms of the last event of this session (for the no-data timeout). */
  get lastArrivalAtMs(): number {
    return this.lastArrivalMs;
  }

  get malformedEvents(): number {
    return this.malformed;
  }

  /** Upstream figures: logical messages per second from first creation to last enqueue. */
  upstream() {
    const spanMs = this.lastEnqueuedMs - this.firstCreatedMs;
    const secs = spanMs > 0 ? spanMs / 1000 : 0;
    return {
      messages: this.latencies.length,
      hubMessages: this.hubMessages,
      ratePerSec: secs > 0 ? round(this.latencies.length / secs) : 0,
      throughputKBps: secs > 0 ? round(this.logicalBytes / 1024 / secs) : 0,
      meteredUnits4KB: this.meteredUnits,
      bytes: this.hubBytes,
      firstCreatedMs: Number.isFinite(this.firstCreatedMs) ? this.firstCreatedMs : 0,
      lastEnqueuedMs: this.lastEnqueuedMs,
    };
  }

  latency(): LatencyFigures {
    return latencyFigures(this.latencies);
  }

  /** Distribution of every logical message's latency, for the report. */
  histogram(): ReturnType<typeof latencyHistogram> {
    return latencyHistogram(this.latencies);
  }

  /** Per-burst figures. */
  bursts(expiredByBurst: (burst: number) => number = () => 0): BurstSummary[] {
    const out: BurstSummary[] = [];
    for (let b = 1; b <= this.options.bursts; b++) {
      const span = this.burstSpan.get(b);
      const lat = this.burstLatencies.get(b) ?? [];
      const durationMs = span ? span.last - span.first : 0;
      const missing = this.integrity.missingIn(b);
      out.push({
        burst: b,
        messages: lat.length,
        durationMs,
        upstreamRatePerSec: durationMs > 0 ? round(lat.length / (durationMs / 1000)) : 0,
        latencyMs: latencyFigures(lat),
        integrity: {
          sent: this.options.burstLength,
          delivered: this.options.burstLength - missing,
          lost: missing,
          duplicates: Math.max(0, lat.length - (this.options.burstLength - missing)),
          outOfOrder: 0,
          expired: expiredByBurst(b),
        },
      });
    }
    return out;
  }

  /** Per-second upstream rate and latency percentiles, aligned to the run start. */
  seriesUpstream(): { upstreamRate: number[]; latencyP50: (number | null)[]; latencyP99: (number | null)[] } {
    const upstreamRate: number[] = [];
    const latencyP50: (number | null)[] = [];
    const latencyP99: (number | null)[] = [];
    for (let i = 0; i < this.seconds.length; i++) {
      const s = this.seconds[i];
      upstreamRate.push(s?.upstream ?? 0);
      if (s && s.latencies.length > 0) {
        const f = latencyFigures(s.latencies);
        latencyP50.push(f.p50);
        latencyP99.push(f.p99);
      } else {
        latencyP50.push(null);
        latencyP99.push(null);
      }
    }
    return { upstreamRate, latencyP50, latencyP99 };
  }

  private secondAt(ms: number): Second {
    const i = Math.max(0, Math.floor((ms - this.options.startedAtMs) / 1000));
    while (this.seconds.length <= i) this.seconds.push({ upstream: 0, latencies: [] });
    return this.seconds[i] as Second;
  }
}

function toBytes(body: unknown): Buffer | undefined {
  if (Buffer.isBuffer(body)) return body;
  if (body instanceof Uint8Array) return Buffer.from(body);
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  // The Event Hubs client decodes JSON bodies into objects: re-encode to read them the same way.
  if (body !== null && typeof body === 'object') return Buffer.from(JSON.stringify(body), 'utf8');
  return undefined;
}

function round(v: number): number {
  return Math.round(v * 10) / 10;
}
