import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  parseAsaJson,
  percentileCont,
  readJobConfig,
  runStreamJob,
  StreamJobEngine,
  type StreamJobRow,
  toAsaInputEvent,
} from '../../emulator/streamjob/index.js';

// The ASA project's own test cases are the contract: the local engine must produce exactly the
// expected outputs from the same input mocks (asa/test/testConfig.json).

const ASA = resolve(dirname(fileURLToPath(import.meta.url)), '../../asa');
const TEST_DIR = join(ASA, 'test');

interface TestConfig {
  TestCases: {
    Name: string;
    Inputs: { InputAlias: string; FilePath: string }[];
    ExpectedOutputs: { OutputAlias: string; FilePath: string; Required: boolean; IgnoreFields?: string[] }[];
  }[];
}

const config = JSON.parse(readFileSync(join(TEST_DIR, 'testConfig.json'), 'utf8')) as TestConfig;
const read = (file: string) => parseAsaJson(readFileSync(join(TEST_DIR, file), 'utf8'));

function withoutFields(rows: readonly unknown[], ignore: readonly string[]): unknown[] {
  return rows.map((r) =>
    Object.fromEntries(Object.entries(r as Record<string, unknown>).filter(([k]) => !ignore.includes(k))),
  );
}

function sortRows<T>(rows: readonly T[]): T[] {
  const key = (r: T) => {
    const x = r as unknown as StreamJobRow;
    return `${String(x.windowEndMs).padStart(16, '0')}|${x.sid}|${String(x.burst).padStart(10, '0')}`;
  };
  return [...rows].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

const B = Date.parse('2026-11-22T10:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();

/** An input event as the IoT Hub input gives it, for hand-made edge cases. */
function event(
  body: Record<string, unknown>,
  enqueuedMs: number,
  arrivalMs = enqueuedMs,
  partition = 0,
): Record<string, unknown> {
  return {
    ...body,
    PartitionId: partition,
    EventEnqueuedUtcTime: iso(arrivalMs),
    IoTHub: { ConnectionDeviceId: 'edge-1', ConnectionModuleId: 'translator', EnqueuedTime: iso(enqueuedMs) },
  };
}

const plain = (seq: number, ts: number, sid = 's', burst = 1) => ({
  perf: { sid, burst, seq, ts },
  payload: 'x'.repeat(10),
});

describe('ASA project test cases (asa/test/testConfig.json)', () => {
  it('has at least the four required cases', () => {
    expect(config.TestCases.map((c) => c.Name)).toEqual(
      expect.arrayContaining(['plain', 'batched', 'interleaved', 'late-out-of-order']),
    );
  });

  for (const testCase of config.TestCases) {
    it(`matches the expected output of "${testCase.Name}"`, async () => {
      const ordering = await readJobConfig(join(ASA, 'JobConfig.json'));
      const input = testCase.Inputs.find((i) => i.InputAlias === 'hub');
      const expected = testCase.ExpectedOutputs.find((o) => o.OutputAlias === 'eventhub');
      expect(input).toBeDefined();
      expect(expected).toBeDefined();
      if (input === undefined || expected === undefined) return;
      const { rows, stats } = runStreamJob(read(input.FilePath), ordering);
      const ignore = expected.IgnoreFields ?? [];
      expect(withoutFields(sortRows(rows), ignore)).toEqual(
        withoutFields(sortRows(read(expected.FilePath)), ignore),
      );
      expect(stats.malformed).toBe(0);
      // Counts add up exactly across windows: every logical message is in exactly one row.
      expect(rows.reduce((n, r) => n + r.messages, 0)).toBe(stats.messages);
      for (const r of rows) expect(r.latencyAvgMs).toBe(r.latencySumMs / r.messages);
    });
  }
});

describe('PERCENTILE_CONT', () => {
  it('interpolates linearly between closest ranks (the ASA documentation example)', () => {
    const sorted = [0.78, 0.89, 0.93, 0.98, 0.99];
    expect(percentileCont(sorted, 0.95)).toBeCloseTo(0.988, 12);
    expect(percentileCont([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(percentileCont([7], 0.99)).toBe(7);
    expect(percentileCont([10, 20], 0)).toBe(10);
    expect(percentileCont([10, 20], 1)).toBe(20);
    expect(() => percentileCont([], 0.5)).toThrow(RangeError);
    expect(() => percentileCont([1], 1.5)).toThrow(RangeError);
  });
});

describe('StreamJobEngine edge cases', () => {
  it('puts an event exactly on a boundary in the window ending there, and one 0.1 ms later in the next', () => {
    const events = [
      event(plain(0, B + 500), B + 1000),
      { ...event(plain(1, B + 600), B + 1000), IoTHub: { EnqueuedTime: '2026-11-22T10:00:01.0001Z' } },
    ];
    const { rows } = runStreamJob(events);
    expect(rows.map((r) => [r.windowEndMs - B, r.messages, r.lastEnqueuedMs - B])).toEqual([
      [1000, 1, 1000],
      [2000, 1, 1000],
    ]);
  });

  it('keeps a late event inside the late-arrival delay in its own window', () => {
    const { rows, stats } = runStreamJob(
      [event(plain(0, B + 100), B + 200), event(plain(1, B + 300), B + 400, B + 4_900)],
      { lateArrivalMaxDelaySecs: 5, outOfOrderMaxDelaySecs: 0 },
    );
    expect(stats.adjusted).toBe(0);
    expect(rows).toHaveLength(1);
    expect(rows[0]?.messages).toBe(2);
  });

  it('adjusts a late event beyond the delay to arrival minus the delay (ASA documentation example)', () => {
    // Late arrival 15 s: event time 00:10:00 arriving 00:10:40 gets 00:10:25.
    const t0 = Date.parse('2026-11-22T00:10:00Z');
    const { rows, stats } = runStreamJob([event(plain(0, t0 - 50), t0, t0 + 40_000)], {
      lateArrivalMaxDelaySecs: 15,
      outOfOrderMaxDelaySecs: 5,
    });
    expect(stats.adjusted).toBe(1);
    expect(rows[0]?.windowEndMs).toBe(t0 + 25_000);
    // Latency still uses IoT Hub's enqueue time, not the adjusted timestamp.
    expect(rows[0]?.latencyMaxMs).toBe(50);
  });

  it('drops a late event beyond the delay under the Drop policy', () => {
    const { rows, stats } = runStreamJob(
      [event(plain(0, B), B + 100), event(plain(1, B + 10), B + 200, B + 9_000)],
      { lateArrivalMaxDelaySecs: 5, outOfOrderPolicy: 'Drop' },
    );
    expect(stats.dropped).toBe(1);
    expect(rows.reduce((n, r) => n + r.messages, 0)).toBe(1);
  });

  it('reorders within the out-of-order delay and adjusts beyond it', () => {
    const { rows, stats } = runStreamJob(
      [
        event(plain(0, B + 2_000), B + 2_500),
        event(plain(1, B + 1_000), B + 1_500, B + 2_600), // 1 s behind: inside 2 s
        event(plain(2, B + 4_000), B + 5_500, B + 5_600),
        event(plain(3, B + 1_000), B + 1_200, B + 5_700), // 4.3 s behind: adjusted to 3.5 s
      ],
      { lateArrivalMaxDelaySecs: 5, outOfOrderMaxDelaySecs: 2 },
    );
    expect(stats.adjusted).toBe(1);
    expect(rows.map((r) => [r.windowEndMs - B, r.minSeq, r.maxSeq, r.messages])).toEqual([
      [2000, 1, 1, 1],
      [3000, 0, 0, 1],
      [4000, 3, 3, 1],
      [6000, 2, 2, 1],
    ]);
  });

  it('keeps two sessions and two bursts apart in one window, mixing batched and plain', () => {
    const batch = {
      v: 1,
      records: [
        { topic: 't', it: B, perf: { sid: 'a', burst: 1, seq: 0, ts: B + 10 }, data: { payload: 'abc' } },
        { topic: 't', it: B, perf: { sid: 'b', burst: 1, seq: 0, ts: B + 20 }, data: { payload: 'abcd' } },
        { topic: 't', it: B, data: { payload: 'no perf' } },
      ],
    };
    const { rows, stats } = runStreamJob([
      event(batch, B + 100),
      event(plain(1, B + 30, 'a', 1), B + 120),
      event(plain(0, B + 40, 'a', 2), B + 130),
    ]);
    expect(stats.ignoredRecords).toBe(1);
    expect(rows.map((r) => [r.sid, r.burst, r.messages, r.payloadBytes])).toEqual([
      ['a', 1, 2, 13],
      ['a', 2, 1, 10],
      ['b', 1, 1, 4],
    ]);
  });

  it('counts and skips malformed events without stopping', () => {
    const engine = new StreamJobEngine();
    expect(engine.push('not an object')).toEqual([]);
    expect(engine.push({ perf: { sid: 's', burst: 1, seq: 0, ts: B } })).toEqual([]); // no IoTHub
    expect(engine.push({ ...event(plain(0, B), B + 5), IoTHub: { EnqueuedTime: 'yesterday' } })).toEqual([]);
    engine.push(event(plain(1, B), B + 5));
    const rows = engine.flush();
    expect(engine.stats()).toMatchObject({ malformed: 3, events: 1, messages: 1 });
    expect(rows).toHaveLength(1);
  });

  it('emits a window once the watermark passes its end, and holds it for an idle partition', () => {
    const engine = new StreamJobEngine({
      lateArrivalMaxDelaySecs: 1,
      outOfOrderMaxDelaySecs: 0,
      partitionIds: ['0', '1'],
    });
    const wall = 1_000_000;
    expect(engine.push(event(plain(0, B + 100), B + 200), { wallClockMs: wall })).toEqual([]);
    // Partition 1 is idle: its watermark is estimated arrival - 1 s.
    expect(engine.push(event(plain(1, B + 1_200), B + 1_300), { wallClockMs: wall + 1_100 })).toEqual([]);
    expect(engine.advance(wall + 1_600)).toEqual([]);
    const rows = engine.advance(wall + 2_150);
    expect(rows.map((r) => r.windowEndMs - B)).toEqual([1000]);
    expect(engine.openWindows).toBe(1);
  });

  it('closes a window on the next event when a single partition is declared and no delay is set', () => {
    const engine = new StreamJobEngine({ lateArrivalMaxDelaySecs: 0, outOfOrderMaxDelaySecs: 0 });
    expect(engine.push(event(plain(0, B), B + 100))).toEqual([]);
    const rows = engine.push(event(plain(1, B + 1_000), B + 1_100));
    expect(rows.map((r) => r.windowEndMs - B)).toEqual([1000]);
    // An event whose window closed is adjusted to the watermark, never lost.
    engine.push(event(plain(2, B), B + 900, B + 900, 1));
    expect(engine.stats().adjusted).toBe(1);
    expect(engine.flush().map((r) => [r.windowEndMs - B, r.messages])).toEqual([[2000, 2]]);
  });
});

describe('toAsaInputEvent', () => {
  it('maps a built-in endpoint event to the IoT Hub input shape', () => {
    const body = Buffer.from(JSON.stringify({ v: 1, records: [] }));
    const mapped = toAsaInputEvent({
      body,
      enqueuedTimeUtc: new Date(B + 7),
      partitionId: '1',
      systemProperties: {
        'iothub-enqueuedtime': B + 5,
        'iothub-connection-device-id': 'edge-1',
        'iothub-connection-module-id': 'translator',
      },
    });
    expect(mapped).toMatchObject({
      v: 1,
      records: [],
      PartitionId: 1,
      EventEnqueuedUtcTime: iso(B + 7),
      IoTHub: { ConnectionDeviceId: 'edge-1', ConnectionModuleId: 'translator', EnqueuedTime: iso(B + 5) },
    });
  });

  it('throws on a body that is not a JSON object', () => {
    const e = { enqueuedTimeUtc: new Date(B) };
    expect(() => toAsaInputEvent({ ...e, body: Buffer.from('{oops') })).toThrow(SyntaxError);
    expect(() => toAsaInputEvent({ ...e, body: Buffer.from('[1,2]') })).toThrow(TypeError);
  });
});
