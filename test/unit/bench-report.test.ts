import { describe, expect, it } from 'vitest';
import {
  parseMachineCpuTimes,
  parseProcStatCpuMs,
  parseStatusKb,
  sampleMachineCpu,
  stealPercent,
} from '../../bench/proc.js';
import {
  type BenchReport,
  type BenchResult,
  checkTargets,
  computeRatios,
  percentile,
  renderReport,
} from '../../bench/report.js';
import { IngestCounter, toResult } from '../../bench/runner.js';
import type { EdgeMessage } from '../../emulator/edgehub/message.js';

function row(
  kind: BenchResult['kind'],
  payloadBytes: number,
  msgPerSec: number,
  extra: Partial<BenchResult> = {},
): BenchResult {
  return {
    kind,
    name: `${kind}${extra.transport ? `/${extra.transport}` : ''}`,
    payloadBytes,
    messages: 1000,
    published: 1000,
    durationMs: 1000,
    msgPerSec,
    logicalMBps: 0,
    wireMBps: 0,
    cpuMsPer1000: 0,
    peakRssMB: 100,
    latencyMs: null,
    ...extra,
  };
}

describe('bench ratios', () => {
  const results: BenchResult[] = [
    row('ingest-limit', 1024, 10_000),
    row('naive', 1024, 1000),
    row('translator', 1024, 7000, { transport: 'sdk-mqtt', wireMBps: 7 }),
    row('translator', 1024, 9000, { transport: 'raw-mqtt', wireMBps: 9.5 }),
    row('naive', 8192, 500),
    row('translator', 8192, 2000, { transport: 'raw-mqtt', wireMBps: 40 }),
    row('wire-limit', 260_096, 200, { wireMBps: 50 }),
    row('overload', 1024, 200, { transport: 'raw-mqtt', peakRssMB: 210 }),
  ];

  it('compares the best 1 KB transport with naive and the ingest limit, and the best bytes with the wire limit', () => {
    const r = computeRatios(results);
    expect(r.bestTransport1KB).toBe('raw-mqtt');
    expect(r.translatorVsNaive).toBe(9);
    expect(r.translatorVsNaiveBySize).toEqual({ '1024': 9, '8192': 4 });
    expect(r.translatorVsIngestLimit).toBe(0.9);
    expect(r.batchedBytesVsWireLimit).toBe(0.8);
  });

  it('reports a missing run as null, not as a pass', () => {
    const r = computeRatios(results.filter((x) => x.kind !== 'naive' && x.kind !== 'wire-limit'));
    expect(r.translatorVsNaive).toBeNull();
    expect(r.batchedBytesVsWireLimit).toBeNull();
    const t = checkTargets(r, []);
    expect(t.find((x) => x.name === 'translatorVsNaive')?.met).toBeNull();
    expect(t.find((x) => x.name === 'overloadPeakRssMB')?.met).toBeNull();
  });

  it('checks every target against its threshold', () => {
    const t = checkTargets(computeRatios(results), results);
    expect(Object.fromEntries(t.map((x) => [x.name, x.met]))).toEqual({
      translatorVsNaive: true,
      translatorVsIngestLimit: true,
      batchedBytesVsWireLimit: true,
      overloadPeakRssMB: false,
      edgeperfCpuPercent: null,
    });
  });

  it("checks edgeperf's own CPU against 5% of a core", () => {
    const measurer = (cpuPercent: number): BenchResult => ({
      ...(results[0] as BenchResult),
      kind: 'measurer',
      name: 'edgeperf local (its own process)',
      cpuPercent,
    });
    const met = (cpu: number) =>
      checkTargets(computeRatios(results), [...results, measurer(cpu)]).find(
        (x) => x.name === 'edgeperfCpuPercent',
      );
    expect(met(4.2)).toMatchObject({ measured: 4.2, met: true });
    expect(met(5)).toMatchObject({ measured: 5, met: false });
  });

  it('renders the rows, the load average and the targets', () => {
    const ratios = computeRatios(results);
    const report: BenchReport = {
      startedAt: '2026-01-01T00:00:00.000Z',
      host: { cpus: 2, loadAvgStart: [3.5, 2, 1], loadAvgEnd: [4, 3, 2], node: 'v20' },
      config: {},
      results,
      ratios,
      targets: checkTargets(ratios, results),
      notes: ['a note'],
    };
    const text = renderReport(report);
    expect(text).toContain('load average 3.50 2.00 1.00');
    expect(text).toContain('translator/raw-mqtt');
    expect(text).toContain('overloadPeakRssMB');
    expect(text).toContain('NO');
    expect(text).toContain('- a note');
  });
});

describe('bench measurements', () => {
  it('takes nearest-rank percentiles', () => {
    expect(percentile([], 50)).toBe(0);
    expect(percentile([5, 1, 3, 2, 4], 50)).toBe(3);
    expect(
      percentile(
        Array.from({ length: 100 }, (_, i) => i + 1),
        99,
      ),
    ).toBe(99);
  });

  it('turns counters into rates per second of the measured window', () => {
    const r = toResult({
      kind: 'translator',
      name: 't',
      transport: 'raw-mqtt',
      payloadBytes: 1000,
      messages: 20_000,
      published: 20_000,
      durationMs: 2000,
      bodyBytes: 22_000_000,
      cpuMs: 1500,
      peakRssBytes: 150_000_000,
      latencies: [10, 20, 30],
    });
    expect(r.msgPerSec).toBe(10_000);
    expect(r.logicalMBps).toBe(10);
    expect(r.wireMBps).toBe(11);
    expect(r.cpuMsPer1000).toBe(75);
    expect(r.peakRssMB).toBe(150);
    expect(r.latencyMs).toEqual({ p50: 20, p99: 30, samples: 3 });
  });

  it('reads CPU ms from a /proc stat line whose command name has spaces and parentheses', () => {
    const fields = Array.from({ length: 50 }, (_, i) => String(i + 3));
    fields[11] = '250'; // utime (field 14)
    fields[12] = '50'; // stime (field 15)
    expect(parseProcStatCpuMs(`1234 (node (x) y) ${fields.join(' ')}`, 100)).toBe(3000);
    expect(() => parseProcStatCpuMs('garbage', 100)).toThrow();
    expect(parseStatusKb('Name:\tnode\nVmHWM:\t  204800 kB\nVmRSS:\t1024 kB\n', 'VmHWM')).toBe(
      204_800 * 1024,
    );
    expect(parseStatusKb('Name:\tnode\n', 'VmHWM')).toBe(0);
  });

  it("reads the machine's steal time from /proc/stat and gives it as a share of all CPU time", () => {
    const before = parseMachineCpuTimes('cpu  100 0 50 800 10 0 5 35 0 0\ncpu0 1 2 3\n');
    const after = parseMachineCpuTimes('cpu  200 0 70 1500 10 0 5 55 20 0\n');
    expect(before).toEqual({ total: 1000, steal: 35 });
    expect(after).toEqual({ total: 1840, steal: 55 });
    if (before === undefined || after === undefined) throw new Error('unparsed');
    // 20 stolen ticks of 840.
    expect(stealPercent(before, after)).toBeCloseTo((100 * 20) / 840, 6);
    expect(parseMachineCpuTimes('intr 1 2 3')).toBeUndefined();
    expect(parseMachineCpuTimes('cpu 1 2 x 4 5 6 7 8')).toBeUndefined();
    // This machine (Linux) has the line.
    expect(sampleMachineCpu()?.total).toBeGreaterThan(0);
  });

  it('counts logical messages of batches and samples creation → enqueue latency', () => {
    const counter = new IngestCounter(0);
    const msg = (body: string, props: Record<string, string>) =>
      ({ body: Buffer.from(body), properties: props }) as unknown as EdgeMessage;
    const rec = (ts: number) => ({
      topic: 't',
      it: ts + 1,
      perf: { sid: 's', burst: 1, seq: 0, ts },
      data: {},
    });
    counter.onEnqueued(
      0,
      msg(JSON.stringify({ v: 1, records: [rec(1000), rec(1010)] }), { 'edgeperf-count': '2' }),
      1100,
    );
    counter.onEnqueued(
      0,
      msg(JSON.stringify({ perf: { sid: 's', burst: 1, seq: 2, ts: 1050 }, payload: 'x' }), {}),
      1150,
    );
    counter.onEnqueued(0, msg('not json', {}), 1200);
    expect(counter.messages).toBe(4);
    expect(counter.upstreamMessages).toBe(3);
    expect(counter.latencies.sort((a, b) => a - b)).toEqual([90, 100, 100]);
    expect(counter.firstMs).toBe(1100);
    expect(counter.lastMs).toBe(1200);
  });
});
