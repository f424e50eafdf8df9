import { describe, expect, it } from 'vitest';
import {
  type AsaResultRow,
  AsaRowsCollector,
  parseAsaRows,
} from '../../perf-cli/measure/asa-rows-collector.js';

const T0 = 1_700_000_000_000;

function row(over: Partial<AsaResultRow>): AsaResultRow {
  return {
    sid: 'run-1',
    burst: 1,
    windowEndMs: T0 + 1000,
    messages: 10,
    payloadBytes: 1000,
    firstCreatedMs: T0,
    lastCreatedMs: T0 + 900,
    firstEnqueuedMs: T0 + 50,
    lastEnqueuedMs: T0 + 950,
    minSeq: 0,
    maxSeq: 9,
    latencyMinMs: 10,
    latencyMaxMs: 100,
    latencySumMs: 400,
    latencyAvgMs: 40,
    latencyP50Ms: 30,
    latencyP95Ms: 90,
    latencyP99Ms: 99,
    ...over,
  };
}

describe('parseAsaRows', () => {
  it('reads line-separated rows packed into one body, a single row, and an array', () => {
    const a = row({});
    const b = row({ windowEndMs: T0 + 2000 });
    const packed = Buffer.from(`${JSON.stringify(a)}\r\n${JSON.stringify(b)}\n`, 'utf8');
    expect(parseAsaRows(packed)).toEqual({ rows: [a, b], malformed: 0 });
    expect(parseAsaRows(JSON.stringify(a))).toEqual({ rows: [a], malformed: 0 });
    expect(parseAsaRows([a, b])).toEqual({ rows: [a, b], malformed: 0 });
  });

  it('matches lower-cased column names and counts bad lines without losing good ones', () => {
    const lower = Object.fromEntries(Object.entries(row({})).map(([k, v]) => [k.toLowerCase(), v]));
    const text = [JSON.stringify(lower), '{not json', JSON.stringify({ sid: 'run-1', burst: '1' })].join(
      '\n',
    );
    const { rows, malformed } = parseAsaRows(text);
    expect(rows).toEqual([row({})]);
    expect(malformed).toBe(2);
  });
});

describe('AsaRowsCollector', () => {
  const options = { sessionId: 'run-1', burstLength: 20, bursts: 2, startedAtMs: T0 };

  it('adds counts and sums exactly, takes the max of window percentiles, and ends at the count', () => {
    const c = new AsaRowsCollector(options);
    expect(c.addRow(row({}))).toBe(true);
    expect(c.addRow(row({ sid: 'other' }))).toBe(false);
    expect(c.complete).toBe(false);
    c.addRow(
      row({
        windowEndMs: T0 + 2000,
        firstCreatedMs: T0 + 1000,
        lastEnqueuedMs: T0 + 1950,
        latencyMinMs: 5,
        latencyMaxMs: 300,
        latencySumMs: 1600,
        latencyP50Ms: 120,
        latencyP95Ms: 250,
        latencyP99Ms: 290,
      }),
    );
    c.addRow(
      row({ burst: 2, messages: 20, latencySumMs: 2000, windowEndMs: T0 + 3000, lastEnqueuedMs: T0 + 2950 }),
    );
    expect(c.complete).toBe(true);
    // (10·40 + 10·160 + 20·100) / 40 = 100: the exact mean, not a mean of window means.
    expect(c.latency()).toEqual({ min: 5, avg: 100, p50: 120, p95: 250, p99: 290, max: 300 });
    const up = c.upstream();
    expect(up.messages).toBe(40);
    expect(up.ratePerSec).toBe(Math.round((40 / 2.95) * 10) / 10);
    expect(c.integrity()).toEqual({
      sent: 40,
      delivered: 40,
      lost: 0,
      duplicates: 0,
      outOfOrder: 0,
      expired: 0,
    });
    expect(c.seriesUpstream().upstreamRate).toEqual([10, 10, 20]);
    expect(c.bursts().map((b) => b.messages)).toEqual([20, 20]);
  });

  it('ignores a repeated row, caps delivery at the burst length, and counts the excess as duplicates', () => {
    const c = new AsaRowsCollector(options);
    c.addRow(row({ messages: 15 }));
    expect(c.addRow(row({ messages: 15 }))).toBe(false);
    expect(c.ignored.repeated).toBe(1);
    c.addRow(row({ messages: 8, windowEndMs: T0 + 2000 }));
    expect(c.addRow(row({ burst: 3 }))).toBe(false);
    expect(c.integrity(2)).toEqual({
      sent: 40,
      delivered: 20,
      lost: 20,
      duplicates: 3,
      outOfOrder: 0,
      expired: 2,
    });
  });
});
