import type { StreamJobRow } from '../../emulator/streamjob/index.js';
import type { BurstSummary, IntegrityFigures, LatencyFigures } from '../analysis/summary-types.js';

/**
 * One output row of the ASA job (asa/edgeperf.asaql). The local stream job writes the same shape,
 * so the type is the one its engine defines: the query's contract lives in one place.
 */
export type AsaResultRow = StreamJobRow;

const NUMBER_FIELDS = [
  'burst',
  'windowEndMs',
  'messages',
  'payloadBytes',
  'firstCreatedMs',
  'lastCreatedMs',
  'firstEnqueuedMs',
  'lastEnqueuedMs',
  'minSeq',
  'maxSeq',
  'latencyMinMs',
  'latencyMaxMs',
  'latencySumMs',
  'latencyAvgMs',
  'latencyP50Ms',
  'latencyP95Ms',
  'latencyP99Ms',
] as const;

/**
 * Decodes one event of the ASA output into rows. ASA's Event Hub output with line-separated JSON
 * may pack several rows into one event, one JSON object per line; the local stream job sends one
 * row per event; an `array` output format gives one JSON array. All three are accepted. Column
 * names are matched case-insensitively because ASA compatibility level 1.0 lower-cases them.
 *
 * @param body - the event body: bytes (read with `skipParsingBodyAsJson`), a string, or an
 *   already-decoded object/array.
 * @returns the rows that have every column with the right type, and how many lines or elements
 *   did not (a malformed line never hides the valid ones beside it).
 */
export function parseAsaRows(body: unknown): { rows: AsaResultRow[]; malformed: number } {
  const rows: AsaResultRow[] = [];
  let malformed = 0;
  const take = (value: unknown): void => {
    if (Array.isArray(value)) {
      for (const v of value) take(v);
      return;
    }
    const row = toRow(value);
    if (row) rows.push(row);
    else malformed += 1;
  };
  if (body instanceof Uint8Array || typeof body === 'string') {
    const text = typeof body === 'string' ? body : Buffer.from(body).toString('utf8');
    for (const line of text.split(/\r?\n/)) {
      if (line.trim() === '') continue;
      try {
        take(JSON.parse(line) as unknown);
      } catch {
        malformed += 1;
      }
    }
  } else {
    take(body);
  }
  return { rows, malformed };
}

function toRow(value: unknown): AsaResultRow | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const byLower = new Map<string, unknown>();
  for (const [k, v] of Object.entries(value)) byLower.set(k.toLowerCase(), v);
  const sid = byLower.get('sid');
  if (typeof sid !== 'string') return undefined;
  const out: Record<string, unknown> = { sid };
  for (const f of NUMBER_FIELDS) {
    const v = byLower.get(f.toLowerCase());
    if (typeof v !== 'number' || !Number.isFinite(v)) return undefined;
    out[f] = v;
  }
  return out as unknown as AsaResultRow;
}

/** Options for {@link AsaRowsCollector}. */
export interface AsaRowsCollectorOptions {
  /** The run id: rows of other sessions are ignored. */
  readonly sessionId: string;
  readonly burstLength: number;
  readonly bursts: number;
  /** Unix ms the run started (series t = 0). */
  readonly startedAtMs: number;
}

interface BurstTally {
  messages: number;
  firstCreatedMs: number;
  lastEnqueuedMs: number;
  rows: AsaResultRow[];
}

/**
 * Builds the run's figures from the ASA job's per-window rows instead of per-message events
 * (IotEdgePerf's way: the laptop reads a few rows a second whatever the message rate).
 *
 * What rows can and cannot tell:
 * - Counts, sums, min and max add up exactly across windows: upstream messages = Σ`messages`,
 *   rate = Σ`messages` / (max `lastEnqueuedMs` − min `firstCreatedMs`), latency min/max exact,
 *   avg = Σ`latencySumMs` / Σ`messages`.
 * - Percentiles do not: a window's p99 says nothing about where its messages sit among the other
 *   windows'. The run's pXX is reported as the **maximum of the window pXX**, an upper bound: every
 *   window has at least a fraction XX of its messages at or below its own pXX, hence at or below
 *   the maximum, so at least XX of all messages are (up to the interpolation of
 *   `PERCENTILE_CONT`). It is never optimistic and keeps p50 ≤ p95 ≤ p99, where a
 *   message-weighted mean of window percentiles is neither a bound nor an estimate with known
 *   error. It overstates the run percentile when latency varies between windows (a backlog
 *   draining): read it as "no worse than". The summary carries `latencyExact: false`.
 * - Integrity: a row counts messages, not which ones, so a duplicate cannot be told from a
 *   delivery. Per burst, delivered = min(Σ`messages`, burst length) and duplicates = the excess
 *   (a lower bound: duplicates that hide losses are invisible); lost = sent − delivered.
 *   Out-of-order is unknown and reported as 0.
 * - Rows of other sessions, of bursts outside 1…bursts, and exact repeats of a row already seen
 *   (ASA's output is at-least-once: a job restart can write a window again) are ignored.
 */
export class AsaRowsCollector {
  private readonly tallies = new Map<number, BurstTally>();
  private readonly seen = new Set<string>();
  private readonly secondsRate: number[] = [];
  private readonly secondsP50: (number | null)[] = [];
  private readonly secondsP99: (number | null)[] = [];
  private lastArrivalMs = 0;
  private malformed = 0;
  private repeated = 0;
  private unexpected = 0;

  constructor(private readonly options: AsaRowsCollectorOptions) {}

  /** Decodes one output event and records its rows; returns how many rows of this session it added. */
  addEvent(body: unknown): number {
    const { rows, malformed } = parseAsaRows(body);
    this.malformed += malformed;
    let added = 0;
    for (const row of rows) if (this.addRow(row)) added += 1;
    return added;
  }

  /** Records one row; false when it belongs to another session, is out of range or a repeat. */
  addRow(row: AsaResultRow): boolean {
    if (row.sid !== this.options.sessionId) return false;
    if (!Number.isInteger(row.burst) || row.burst < 1 || row.burst > this.options.bursts) {
      this.unexpected += 1;
      return false;
    }
    const key = [
      row.burst,
      row.windowEndMs,
      row.messages,
      row.firstEnqueuedMs,
      row.lastEnqueuedMs,
      row.minSeq,
      row.maxSeq,
    ].join('/');
    if (this.seen.has(key)) {
      this.repeated += 1;
      return false;
    }
    this.seen.add(key);
    this.lastArrivalMs = Date.now();
    let tally = this.tallies.get(row.burst);
    if (tally === undefined) {
      tally = {
        messages: 0,
        firstCreatedMs: Number.POSITIVE_INFINITY,
        lastEnqueuedMs: 0,
        rows: [],
      };
      this.tallies.set(row.burst, tally);
    }
    tally.messages += row.messages;
    tally.firstCreatedMs = Math.min(tally.firstCreatedMs, row.firstCreatedMs);
    tally.lastEnqueuedMs = Math.max(tally.lastEnqueuedMs, row.lastEnqueuedMs);
    tally.rows.push(row);
    // The second of the run holding the window's middle: windows are aligned to the epoch second,
    // the run's seconds to its start.
    const i = Math.max(0, Math.floor((row.windowEndMs - 500 - this.options.startedAtMs) / 1000));
    while (this.secondsRate.length <= i) {
      this.secondsRate.push(0);
      this.secondsP50.push(null);
      this.secondsP99.push(null);
    }
    this.secondsRate[i] = (this.secondsRate[i] ?? 0) + row.messages;
    this.secondsP50[i] = Math.max(this.secondsP50[i] ?? Number.NEGATIVE_INFINITY, round(row.latencyP50Ms));
    this.secondsP99[i] = Math.max(this.secondsP99[i] ?? Number.NEGATIVE_INFINITY, round(row.latencyP99Ms));
    return true;
  }

  /** Distinct logical messages delivered so far (Σ per burst, capped at the burst length). */
  get delivered(): number {
    let n = 0;
    for (const t of this.tallies.values()) n += Math.min(t.messages, this.options.burstLength);
    return n;
  }

  /** True once every burst has at least as many messages as it sent. */
  get complete(): boolean {
    return this.delivered >= this.options.burstLength * this.options.bursts;
  }

  /** Wall-clock ms of the last row of this session (for the no-data timeout). */
  get lastArrivalAtMs(): number {
    return this.lastArrivalMs;
  }

  /** Lines/elements that were not rows, rows outside 1…bursts, and repeated rows. */
  get ignored(): { malformed: number; unexpected: number; repeated: number } {
    return { malformed: this.malformed, unexpected: this.unexpected, repeated: this.repeated };
  }

  /**
   * Upstream figures. `throughputKBps` is from `payloadBytes` (payload characters, as the query's
   * LEN), so it is below what the built-in endpoint mode reports from whole bodies.
   */
  upstream(): {
    messages: number;
    ratePerSec: number;
    throughputKBps: number;
    firstCreatedMs: number;
    lastEnqueuedMs: number;
  } {
    const rows = this.rows();
    let messages = 0;
    let bytes = 0;
    let first = Number.POSITIVE_INFINITY;
    let last = 0;
    for (const r of rows) {
      messages += r.messages;
      bytes += r.payloadBytes;
      first = Math.min(first, r.firstCreatedMs);
      last = Math.max(last, r.lastEnqueuedMs);
    }
    const secs = rows.length > 0 && last > first ? (last - first) / 1000 : 0;
    return {
      messages,
      ratePerSec: secs > 0 ? round(messages / secs) : 0,
      throughputKBps: secs > 0 ? round(bytes / 1024 / secs) : 0,
      firstCreatedMs: Number.isFinite(first) ? first : 0,
      lastEnqueuedMs: last,
    };
  }

  /** Latency over the run: min/max/avg exact, percentiles the max of the window percentiles (see class doc). */
  latency(): LatencyFigures {
    return latencyOfRows(this.rows());
  }

  /** Integrity figures (see class doc); `expired` comes from edgeHub's ttl_expiry drops. */
  integrity(expired = 0): IntegrityFigures {
    const sent = this.options.burstLength * this.options.bursts;
    let duplicates = 0;
    for (const t of this.tallies.values()) duplicates += Math.max(0, t.messages - this.options.burstLength);
    const delivered = this.delivered;
    return {
      sent,
      delivered,
      lost: Math.max(0, sent - delivered),
      duplicates,
      outOfOrder: 0,
      expired,
    };
  }

  /** Per-burst figures, the same rules per burst. */
  bursts(): BurstSummary[] {
    const out: BurstSummary[] = [];
    const len = this.options.burstLength;
    for (let b = 1; b <= this.options.bursts; b++) {
      const t = this.tallies.get(b);
      const messages = t?.messages ?? 0;
      const durationMs = t && t.lastEnqueuedMs > t.firstCreatedMs ? t.lastEnqueuedMs - t.firstCreatedMs : 0;
      const delivered = Math.min(messages, len);
      out.push({
        burst: b,
        messages,
        durationMs,
        upstreamRatePerSec: durationMs > 0 ? round(messages / (durationMs / 1000)) : 0,
        latencyMs: latencyOfRows(t?.rows ?? []),
        integrity: {
          sent: len,
          delivered,
          lost: len - delivered,
          duplicates: Math.max(0, messages - len),
          outOfOrder: 0,
          expired: 0,
        },
      });
    }
    return out;
  }

  /**
   * Per-second upstream rate (Σ`messages` of the windows centred in that second of the run) and
   * latency p50/p99 (the max over those windows, as {@link latency}); null where no window fell.
   */
  seriesUpstream(): { upstreamRate: number[]; latencyP50: (number | null)[]; latencyP99: (number | null)[] } {
    return {
      upstreamRate: [...this.secondsRate],
      latencyP50: [...this.secondsP50],
      latencyP99: [...this.secondsP99],
    };
  }

  private rows(): AsaResultRow[] {
    const all: AsaResultRow[] = [];
    for (const t of this.tallies.values()) all.push(...t.rows);
    return all;
  }
}

function latencyOfRows(rows: readonly AsaResultRow[]): LatencyFigures {
  let n = 0;
  let sum = 0;
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  let p50 = Number.NEGATIVE_INFINITY;
  let p95 = Number.NEGATIVE_INFINITY;
  let p99 = Number.NEGATIVE_INFINITY;
  for (const r of rows) {
    if (r.messages <= 0) continue;
    n += r.messages;
    sum += r.latencySumMs;
    min = Math.min(min, r.latencyMinMs);
    max = Math.max(max, r.latencyMaxMs);
    p50 = Math.max(p50, r.latencyP50Ms);
    p95 = Math.max(p95, r.latencyP95Ms);
    p99 = Math.max(p99, r.latencyP99Ms);
  }
  if (n === 0) return { min: 0, avg: 0, p50: 0, p95: 0, p99: 0, max: 0 };
  // Interpolated window percentiles never leave [min, max]; clamp anyway against odd rows.
  const clamp = (v: number) => round(Math.min(max, Math.max(min, v)));
  return {
    min: round(min),
    avg: round(sum / n),
    p50: clamp(p50),
    p95: clamp(p95),
    p99: clamp(p99),
    max: round(max),
  };
}

function round(v: number): number {
  return Math.round(v * 10) / 10;
}
