import { perfFieldsOfBody } from '../../modules/common/index.js';
import { IntegrityTracker } from '../analysis/integrity.js';
import { latencyHistogram } from '../analysis/latency-histogram.js';
import { latencyFigures } from '../analysis/percentiles.js';
import type { BurstSummary, LatencyFigures } from '../analysis/summary-types.js';

/** One event as read from IoT Hub's built-in endpoint (the fields of ReceivedEventData we use). */
export interface HubEvent {
  readonly body: unknown;
  readonly properties?: Record<string, unknown>;
  readonly contentEncoding?: string;
  readonly enqueuedTimeMs: number;
  /** Bytes of the body as sent (before the SDK decoded it). */
  readonly bodyBytes: number;
  readonly deviceId?: string;
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
    const raw = toBytes(event.body);
    if (raw === undefined) {
      this.malformed += 1;
      return 0;
    }
    const encoding = String(event.properties?.['edgeperf-encoding'] ?? event.contentEncoding ?? '');
    let perfs: ReturnType<typeof perfFieldsOfBody>;
    try {
      perfs = perfFieldsOfBody(raw, encoding === 'gzip' ? 'gzip' : undefined);
    } catch {
      this.malformed += 1;
      return 0;
    }
    const mine = perfs.filter((p) => p.sid === this.options.sessionId);
    if (mine.length === 0) return 0;
    this.lastArrivalMs = Date.now();
    this.hubMessages += 1;
    this.hubBytes += event.bodyBytes;
    this.meteredUnits += Math.max(1, Math.ceil(event.bodyBytes / 4096));
    const perRecordBytes = event.bodyBytes / mine.length;
    const sec = this.secondAt(event.enqueuedTimeMs);
    for (const p of mine) {
      if (!this.integrity.record(p.sid, p.burst, p.seq, p.dev ?? event.deviceId ?? '')) continue;
      const latency = Math.max(0, event.enqueuedTimeMs - p.ts);
      this.latencies.push(latency);
      const bl = this.burstLatencies.get(p.burst) ?? [];
      if (bl.length === 0) this.burstLatencies.set(p.burst, bl);
      bl.push(latency);
      const span = this.burstSpan.get(p.burst) ?? { first: p.ts, last: event.enqueuedTimeMs, count: 0 };
      span.first = Math.min(span.first, p.ts);
      span.last = Math.max(span.last, event.enqueuedTimeMs);
      span.count += 1;
      this.burstSpan.set(p.burst, span);
      this.firstCreatedMs = Math.min(this.firstCreatedMs, p.ts);
      this.logicalBytes += perRecordBytes;
      sec.upstream += 1;
      sec.latencies.push(latency);
    }
    this.lastEnqueuedMs = Math.max(this.lastEnqueuedMs, event.enqueuedTimeMs);
    return mine.length;
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
