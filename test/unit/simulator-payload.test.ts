import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type PerfFields, readPerfFields } from '../../modules/common/index.js';
import { decodeSparkplug, PayloadBuilder } from '../../modules/simulator/payload.js';
import {
  perfFieldsFromSparkplugMetrics,
  perfToSparkplugMetrics,
  SPARKPLUG_PERF_METRICS,
} from '../../modules/simulator/sparkplug-perf.js';

const perf: PerfFields = {
  sid: 'session-42',
  burst: 3,
  seq: 123_456,
  ts: 1_763_800_000_123,
  vc: 7,
  dev: 'sim-12',
};

describe('JSON bodies', () => {
  it('are exactly payloadLength bytes and carry the perf fields under `perf`', () => {
    fc.assert(
      fc.property(fc.integer({ min: 130, max: 20_000 }), fc.nat(1_000_000), (length, seq) => {
        const body = new PayloadBuilder('json', length).build({ ...perf, seq });
        expect(body.length).toBe(length);
        const parsed = JSON.parse(body.toString('utf8')) as { payload: string };
        expect(readPerfFields(parsed)).toEqual({ ...perf, seq });
        expect(parsed.payload).toMatch(/^[A-Za-z0-9]*$/);
      }),
      { numRuns: 200 },
    );
  });

  it('fall back to the smallest body (empty padding) when payloadLength is below it', () => {
    const body = new PayloadBuilder('json', 10).build(perf);
    const parsed = JSON.parse(body.toString('utf8')) as { payload: string };
    expect(parsed.payload).toBe('');
    expect(body.length).toBeGreaterThan(10);
  });

  it('use random padding, so two bodies differ', () => {
    const b = new PayloadBuilder('json', 1024);
    expect(b.build(perf).equals(b.build(perf))).toBe(false);
  });

  it('reach the 256 KiB maximum', () => {
    expect(new PayloadBuilder('json', 256 * 1024).build(perf).length).toBe(256 * 1024);
  });
});

describe('JSON body reuse', () => {
  const size = 8192;
  const decode = (b: Buffer) => readPerfFields(JSON.parse(b.toString('utf8')));

  it('writes the next body into a released one, whole and exact, with the new perf fields', () => {
    const builder = new PayloadBuilder('json', size);
    const first = builder.build(perf);
    builder.release(first);
    const second = builder.build({ ...perf, seq: 7 });
    // The same memory, under a new view.
    expect(second.buffer).toBe(first.buffer);
    expect(second.length).toBe(size);
    expect(decode(second)).toEqual({ ...perf, seq: 7 });
  });

  it('never hands out a body twice while it is held, and ignores foreign or repeated releases', () => {
    const builder = new PayloadBuilder('json', size);
    const a = builder.build(perf);
    builder.release(Buffer.alloc(size)); // not lent by this builder
    builder.release(a);
    builder.release(a); // the second release must not make two builds share a
    const b = builder.build({ ...perf, seq: 1 });
    const c = builder.build({ ...perf, seq: 2 });
    expect(b.buffer).toBe(a.buffer);
    expect(c.buffer).not.toBe(b.buffer);
    expect(decode(b)?.seq).toBe(1);
    expect(decode(c)?.seq).toBe(2);
    // Held bodies keep their bytes however many others are built and released around them.
    const held = Array.from({ length: 50 }, (_, seq) => builder.build({ ...perf, seq }));
    for (let i = 0; i < 500; i++) builder.release(builder.build({ ...perf, seq: 1000 + i }));
    expect(held.map((body) => decode(body)?.seq)).toEqual(held.map((_, seq) => seq));
  });

  it('keeps a bounded number of spare bodies', () => {
    const builder = new PayloadBuilder('json', 1024 * 1024);
    const bodies = Array.from({ length: 10 }, () => builder.build(perf));
    for (const b of bodies) builder.release(b);
    // 4 MiB of spares at most: four 1 MiB bodies come back, the fifth build is new.
    const again = Array.from({ length: 5 }, () => builder.build(perf));
    expect(again.filter((b) => bodies.some((old) => old.buffer === b.buffer))).toHaveLength(4);
  });

  it('does not reuse minimum bodies, whose length varies with the perf fields', () => {
    const builder = new PayloadBuilder('json', 10);
    const a = builder.build(perf);
    builder.release(a);
    expect(builder.build(perf)).not.toBe(a);
  });
});

describe('Sparkplug bodies', () => {
  it('are payloadLength bytes (1–2 short where a varint prefix grows), across the varint boundaries', () => {
    // The smallest body here is ~143 bytes; padding lengths cross 127→128 and 16383→16384 bytes.
    const lengths = [...range(160, 450), ...range(16_300, 16_700, 7), 256 * 1024];
    const sizes = lengths.map((length) => [
      length,
      new PayloadBuilder('sparkplug', length).build(perf).length,
    ]);
    expect(
      sizes.filter(
        ([want, got]) => (got as number) > (want as number) || (want as number) - (got as number) > 2,
      ),
    ).toEqual([]);
    // Only a handful of sizes are unreachable.
    expect(sizes.filter(([want, got]) => got !== want).length).toBeLessThanOrEqual(4);
  });

  it('decode to the perf fields through perfFieldsFromSparkplugMetrics (UInt64 ts arrives as a Long)', () => {
    const body = new PayloadBuilder('sparkplug', 512).build(perf);
    const decoded = decodeSparkplug(body);
    const ts = decoded.metrics?.find((m) => m.name === SPARKPLUG_PERF_METRICS.ts)?.value;
    expect(typeof ts).toBe('object');
    expect(perfFieldsFromSparkplugMetrics(decoded.metrics)).toEqual(perf);
    expect(Number(decoded.timestamp)).toBe(perf.ts);
  });

  it('number the Sparkplug payload seq modulo 256', () => {
    const b = new PayloadBuilder('sparkplug', 200);
    const seqs = Array.from({ length: 258 }, () => Number(decodeSparkplug(b.build(perf)).seq));
    expect(seqs.slice(0, 2)).toEqual([0, 1]);
    expect(seqs.slice(255)).toEqual([255, 0, 1]);
  });
});

describe('perfFieldsFromSparkplugMetrics', () => {
  it('round-trips the metrics of perfToSparkplugMetrics, with or without optional fields', () => {
    expect(perfFieldsFromSparkplugMetrics(perfToSparkplugMetrics(perf))).toEqual(perf);
    const { vc: _vc, dev: _dev, ...required } = perf;
    expect(perfFieldsFromSparkplugMetrics(perfToSparkplugMetrics(required))).toEqual(required);
  });

  it('accepts bigint values and ignores other metrics', () => {
    const metrics = [
      { name: 'temperature', value: 21.5 },
      { name: 'perf/sid', value: 's' },
      { name: 'perf/burst', value: 1n },
      { name: 'perf/seq', value: 0 },
      { name: 'perf/ts', value: 1_763_800_000_000n },
    ];
    expect(perfFieldsFromSparkplugMetrics(metrics)).toEqual({
      sid: 's',
      burst: 1,
      seq: 0,
      ts: 1_763_800_000_000,
    });
  });

  it('returns undefined when a required metric is missing or mistyped', () => {
    const good = perfToSparkplugMetrics(perf);
    expect(perfFieldsFromSparkplugMetrics(good.filter((m) => m.name !== 'perf/seq'))).toBeUndefined();
    expect(
      perfFieldsFromSparkplugMetrics(good.map((m) => (m.name === 'perf/burst' ? { ...m, value: '3' } : m))),
    ).toBeUndefined();
    expect(perfFieldsFromSparkplugMetrics(undefined)).toBeUndefined();
    expect(perfFieldsFromSparkplugMetrics([])).toBeUndefined();
  });
});

function range(from: number, to: number, step = 1): number[] {
  const out: number[] = [];
  for (let i = from; i < to; i += step) out.push(i);
  return out;
}
