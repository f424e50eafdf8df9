import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { EventCollector, type HubEvent } from '../../perf-cli/measure/event-collector.js';

const T0 = 1_760_000_000_000;

function record(sid: string, burst: number, seq: number, ts: number) {
  return {
    topic: 'telemetry/d1',
    it: ts + 1,
    perf: { sid, burst, seq, ts },
    data: { payload: 'x'.repeat(50) },
  };
}

function event(body: Buffer, enqueuedTimeMs: number, encoding?: string): HubEvent {
  return { body, encoding, enqueuedTimeMs, bodyBytes: body.length, deviceId: 'edge-device' };
}

function batch(records: unknown[]): Buffer {
  return Buffer.from(JSON.stringify({ v: 1, records }));
}

describe('EventCollector', () => {
  it('counts every record of batches, plain and gzip bodies, with exact latencies', () => {
    const c = new EventCollector({ sessionId: 's1', burstLength: 4, bursts: 1, startedAtMs: T0 });
    expect(c.add(event(batch([record('s1', 1, 0, T0), record('s1', 1, 1, T0 + 10)]), T0 + 100))).toBe(2);
    expect(c.add(event(Buffer.from(JSON.stringify(record('s1', 1, 2, T0 + 20))), T0 + 150))).toBe(1);
    expect(c.add(event(gzipSync(batch([record('s1', 1, 3, T0 + 30)])), T0 + 200, 'gzip'))).toBe(1);
    expect(c.integrity.complete).toBe(true);
    expect(c.upstream()).toMatchObject({
      messages: 4,
      hubMessages: 3,
      firstCreatedMs: T0,
      lastEnqueuedMs: T0 + 200,
    });
    expect(c.latency()).toMatchObject({ min: 90, max: 170 });
    expect(c.bursts()[0]).toMatchObject({
      messages: 4,
      durationMs: 200,
      integrity: { lost: 0, duplicates: 0 },
    });
  });

  it('ignores other sessions, counts malformed bodies, and sees duplicates and losses', () => {
    const c = new EventCollector({ sessionId: 's1', burstLength: 3, bursts: 1, startedAtMs: T0 });
    expect(c.add(event(batch([record('other', 1, 0, T0)]), T0 + 5))).toBe(0);
    expect(c.add(event(Buffer.from('{"v":1,"records":['), T0 + 5))).toBe(0);
    expect(c.add({ ...event(Buffer.alloc(0), T0), body: 42 })).toBe(0);
    expect(c.malformedEvents).toBe(2);
    c.add(event(batch([record('s1', 1, 0, T0), record('other', 1, 1, T0)]), T0 + 50));
    c.add(event(batch([record('s1', 1, 0, T0)]), T0 + 60));
    expect(c.integrity.deliveredCount).toBe(1);
    expect(c.bursts()[0]?.integrity).toMatchObject({ delivered: 1, lost: 2, duplicates: 1 });
    expect(c.upstream().hubMessages).toBe(2);
  });
});
