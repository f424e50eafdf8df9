import { afterAll, describe, expect, it } from 'vitest';
import type { RunSummary } from '../../perf-cli/analysis/summary-types.js';
import { hubArgs, edgeperf as runCli, startEmulator } from './cli-helpers.js';

// `edgeperf run --results asa` as users run it (built dist): a separately started local runtime,
// whose stream job writes the ASA query's rows to `asa-output`; the CLI reads only those rows.
// The flag under test must come from argv, not from the developer's environment.
const cleanEnv = { ...process.env };
delete cleanEnv.EDGEPERF_ASA_EVENTHUB_CONNECTION_STRING;
const edgeperf = (args: string[]) => runCli(args, cleanEnv);

const cleanup: (() => void)[] = [];
afterAll(() => {
  for (const c of cleanup.reverse()) c();
});

describe('edgeperf run --results asa', () => {
  it("measures a separately started runtime from the stream job's rows", async () => {
    const { ready, emulator } = await startEmulator(cleanup);
    expect(ready.eventHubs.asaOutput).toContain('EntityPath=');

    const t0 = Date.now();
    const res = await edgeperf([
      'run',
      '--results',
      'asa',
      '--asa-eventhub-connection-string',
      ready.eventHubs.asaOutput,
      ...hubArgs(ready, { builtin: false }),
      '--burst-length',
      '1000',
      '--bursts',
      '2',
      '--burst-wait-ms',
      '500',
      '--target-rate',
      '1000',
      '--payload-length',
      '512',
      // Rows come once a window closes, 5 s (the late-arrival delay) after its end.
      '--timeout',
      '15',
      '--json',
    ]);
    expect(res.code, res.stderr.slice(-2000)).toBe(0);
    const s = JSON.parse(res.stdout) as RunSummary;
    expect(s.mode).toBe('run');
    expect(s.integrity).toMatchObject({ sent: 2000, delivered: 2000, lost: 0, outOfOrder: 0 });
    // Ended by count, not by the no-data timeout.
    expect(s.partial).toBeUndefined();
    expect(Date.now() - t0).toBeLessThan(30_000);
    expect(s.upstream.messages).toBe(2000 + s.integrity.duplicates);
    expect(s.upstream.ratePerSec).toBeGreaterThan(0);
    expect(s.upstream.throughputKBps).toBeGreaterThan(0);
    expect(s.latencyExact).toBe(false);
    expect(s.latencyMs.max).toBeGreaterThan(0);
    expect(s.latencyMs.min).toBeLessThanOrEqual(s.latencyMs.avg);
    expect(s.latencyMs.avg).toBeLessThanOrEqual(s.latencyMs.max);
    expect(s.latencyMs.p50).toBeLessThanOrEqual(s.latencyMs.p99);
    expect(s.latencyMs.p99).toBeLessThanOrEqual(s.latencyMs.max);
    expect(s.bursts?.map((b) => b.integrity.delivered)).toEqual([1000, 1000]);
    expect(s.series?.upstreamRate.reduce((a, b) => a + b, 0)).toBe(s.upstream.messages);

    const stopped = new Promise<number | null>((r) => emulator.once('exit', (code) => r(code)));
    emulator.kill('SIGTERM');
    expect(await stopped).toBe(0);
  }, 60_000);

  it('names the missing ASA connection string and exits 2', async () => {
    const res = await edgeperf([
      'run',
      '--results',
      'asa',
      '--iothub-connection-string',
      'HostName=h.example;SharedAccessKeyName=iothubowner;SharedAccessKey=a2V5',
      '--device-id',
      'd',
    ]);
    expect(res.code).toBe(2);
    expect(res.stderr.trim()).toBe(
      'edgeperf: missing --asa-eventhub-connection-string (or env EDGEPERF_ASA_EVENTHUB_CONNECTION_STRING)',
    );
  });

  it('rejects an ASA connection string without EntityPath, and an unknown --results, with exit 2', async () => {
    const noPath = await edgeperf([
      'run',
      '--results',
      'asa',
      '--asa-eventhub-connection-string',
      'Endpoint=sb://localhost:5672;SharedAccessKeyName=k;SharedAccessKey=a2V5',
      '--iothub-connection-string',
      'HostName=h.example;SharedAccessKeyName=iothubowner;SharedAccessKey=a2V5',
      '--device-id',
      'd',
    ]);
    expect(noPath.code).toBe(2);
    expect(noPath.stderr).toContain('--asa-eventhub-connection-string must include EntityPath');
    const bad = await edgeperf(['run', '--results', 'stream']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("option '--results <source>' argument 'stream' is invalid");
  });
});
