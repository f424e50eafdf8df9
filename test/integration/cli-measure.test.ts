import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { RunSummary } from '../../perf-cli/analysis/summary-types.js';
import { edgeperf, hubArgs, startEmulator } from './cli-helpers.js';

// The CLI as users run it (built dist), end to end on loopback: `local` starts its own runtime;
// `run` measures a runtime started separately, through the connection strings it printed.
const cleanup: (() => void)[] = [];
afterAll(() => {
  for (const c of cleanup) c();
});

describe('edgeperf local and run', () => {
  it('local --json accounts for every message of a multi-burst run and ends by count', async () => {
    const t0 = Date.now();
    const res = await edgeperf([
      'local',
      '--burst-length',
      '1500',
      '--bursts',
      '2',
      '--burst-wait-ms',
      '500',
      '--target-rate',
      '1000',
      '--timeout',
      '60',
      '--json',
    ]);
    expect(res.code, res.stderr.slice(-2000)).toBe(0);
    const lines = res.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const s = JSON.parse(lines[0] as string) as RunSummary;
    expect(s.mode).toBe('local');
    expect(s.integrity).toMatchObject({ sent: 3000, delivered: 3000, lost: 0, expired: 0 });
    expect(s.source.messages).toBe(3000);
    expect(s.upstream.messages).toBe(3000 + s.integrity.duplicates);
    // Application batching: far fewer IoT Hub messages than logical ones.
    expect(s.upstream.hubMessages).toBeLessThan(300);
    expect(s.upstream.ratePerSec).toBeGreaterThan(100);
    expect(s.latencyMs.p50).toBeGreaterThan(0);
    expect(s.latencyMs.p99).toBeGreaterThanOrEqual(s.latencyMs.p50);
    expect(s.bursts).toHaveLength(2);
    expect(s.partial).toBeUndefined();
    // Ended by count: far sooner than the 60 s no-data timeout would allow.
    expect(Date.now() - t0).toBeLessThan(50_000);
  });

  it('run measures a separately started runtime through its printed connection strings', async () => {
    const { ready, emulator } = await startEmulator(cleanup);
    expect(readFileSync(ready.caFile, 'utf8')).toContain('BEGIN CERTIFICATE');

    const res = await edgeperf([
      'run',
      ...hubArgs(ready),
      '--burst-length',
      '1000',
      '--target-rate',
      '1000',
      '--payload-length',
      '512',
      '--timeout',
      '60',
      '--json',
    ]);
    expect(res.code, res.stderr.slice(-2000)).toBe(0);
    const s = JSON.parse(res.stdout) as RunSummary;
    expect(s.mode).toBe('run');
    expect(s.integrity).toMatchObject({ sent: 1000, delivered: 1000, lost: 0 });
    expect(s.queue.samples).toBeGreaterThan(0);

    const stopped = new Promise<number | null>((r) => emulator.once('exit', (code) => r(code)));
    emulator.kill('SIGTERM');
    expect(await stopped).toBe(0);
  });

  it('sweep runs a fresh local runtime per cell and writes JSON, CSV and an HTML report', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cli-sweep-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const res = await edgeperf([
      'sweep',
      '--app-batch-max-bytes',
      '0,65536',
      '--burst-length',
      '800',
      '--target-rate',
      '800',
      '--out',
      join(dir, 'sweep.json'),
      '--csv',
      join(dir, 'sweep.csv'),
      '--report',
      join(dir, 'sweep.html'),
    ]);
    expect(res.code, res.stderr.slice(-2000)).toBe(0);
    const sweep = JSON.parse(readFileSync(join(dir, 'sweep.json'), 'utf8')) as {
      axes: string[];
      cells: { params: Record<string, unknown>; summary: RunSummary }[];
    };
    expect(sweep.axes).toEqual(['appBatchMaxBytes']);
    expect(sweep.cells.map((c) => c.params.appBatchMaxBytes)).toEqual([0, 65536]);
    const [naive, batched] = sweep.cells.map((c) => c.summary);
    expect(naive?.integrity.delivered).toBe(800);
    expect(batched?.integrity.delivered).toBe(800);
    // Without application batching every logical message is its own IoT Hub message.
    expect(naive?.upstream.hubMessages).toBe(800 + (naive?.integrity.duplicates ?? 0));
    expect(batched?.upstream.hubMessages).toBeLessThan(100);
    expect(readFileSync(join(dir, 'sweep.csv'), 'utf8').trim().split('\n')).toHaveLength(5); // header + (burst, total) per cell
    expect(readFileSync(join(dir, 'sweep.html'), 'utf8')).toContain('<svg');
  });

  it('deploy --dry-run validates a template and prints what would be applied', async () => {
    const res = await edgeperf([
      'deploy',
      '--manifest',
      'deployment/deployment.template.json',
      '--device-id',
      'dev1',
      '--tag',
      '1.2.3',
      '--dry-run',
    ]);
    expect(res.code, res.stderr).toBe(0);
    const out = JSON.parse(res.stdout) as { deviceId: string; modules: { name: string; image: string }[] };
    expect(out.deviceId).toBe('dev1');
    expect(out.modules.find((m) => m.name === 'translator')?.image).toBe('edgeperf/translator:1.2.3');
  });

  it('restart-source-broker restarts a real Mosquitto mid-burst and nothing is lost', async () => {
    const res = await edgeperf([
      'local',
      '--source-broker',
      'mosquitto',
      '--fault',
      'restart-source-broker:1',
      '--burst-length',
      '2500',
      '--target-rate',
      '1000',
      '--timeout',
      '60',
      '--json',
    ]);
    expect(res.code, res.stderr.slice(-2000)).toBe(0);
    const s = JSON.parse(res.stdout) as RunSummary;
    expect(s.faults?.[0]?.detail).toContain('mosquitto restarted');
    expect(s.integrity).toMatchObject({ sent: 2500, delivered: 2500, lost: 0 });
  });

  it('names the missing connection string and exits 2', async () => {
    const res = await edgeperf(['run', '--device-id', 'd']);
    expect(res.code).toBe(2);
    expect(res.stderr.trim()).toBe(
      'edgeperf: missing --iothub-connection-string (or env EDGEPERF_IOTHUB_CONNECTION_STRING)',
    );
  });

  it('rejects an out-of-range flag with the allowed range and exit 2', async () => {
    const res = await edgeperf(['local', '--target-rate', '-5']);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain(
      "option '--target-rate <r>' argument '-5' is invalid. must be a number from 0 to 1000000",
    );
  });
});
