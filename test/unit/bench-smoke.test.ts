import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { BenchReport } from '../../bench/report.js';

// `npm run bench -- --quick` end to end on one size and one transport: every competitor runs in
// its own processes against a real local runtime. CI builds dist/ first (pretest); the bench's
// children start from there. EDGEPERF_BENCH_DIST points at another build (a scratch outDir).

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dist = process.env.EDGEPERF_BENCH_DIST ?? join(repo, 'dist');

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const child = spawn(process.execPath, [join(dist, 'bench', 'main.js'), ...args], {
      cwd: repo,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 170_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      res({ code, stdout, stderr });
    });
  });
}

describe('npm run bench -- --quick', () => {
  it('rejects a bad flag with exit 1 and names it', async () => {
    expect(existsSync(join(dist, 'bench', 'main.js')), `build first: ${dist}/bench/main.js`).toBe(true);
    const r = await run(['--sizes', 'big']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('--sizes');
  });

  it('measures every competitor and prints one JSON object with results and ratios', {
    timeout: 180_000,
  }, async () => {
    const r = await run([
      '--quick',
      '--json',
      '--sizes',
      '1024',
      '--transports',
      'raw-mqtt',
      '--messages',
      '1000',
      '--overload-secs',
      '2',
      '--measurer-runs',
      '2',
      '--rounds',
      '2',
    ]);
    expect(r.code, r.stderr.slice(-1000)).toBe(0);
    const report = JSON.parse(r.stdout) as BenchReport;
    const kinds = report.results.map((x) => x.kind).sort();
    expect(kinds, report.notes.join('\n')).toEqual([
      'ingest-limit',
      'measurer',
      'naive',
      'overload',
      'translator',
      'wire-limit',
    ]);
    for (const x of report.results) {
      expect(x.msgPerSec, x.name).toBeGreaterThan(0);
      expect(x.peakRssMB, x.name).toBeGreaterThan(10);
    }
    // Two interleaved rounds: each row is the median (lower middle) of its two runs.
    for (const kind of ['ingest-limit', 'naive', 'translator', 'wire-limit']) {
      const row = report.results.find((x) => x.kind === kind);
      expect(row?.msgPerSecRuns, kind).toHaveLength(2);
      expect(row?.msgPerSec, kind).toBe(Math.min(...(row?.msgPerSecRuns ?? [])));
    }
    const translator = report.results.find((x) => x.kind === 'translator');
    // The first quarter is warm-up: counted, but outside the measured window.
    expect((translator?.messages ?? 0) + (translator?.warmUpMessages ?? 0)).toBe(1000);
    expect(translator?.warmUpMessages).toBeGreaterThanOrEqual(250);
    expect(translator?.warmUpMessages).toBeLessThan(1000);
    for (const kind of ['naive', 'ingest-limit', 'wire-limit'])
      expect(report.results.find((x) => x.kind === kind)?.warmUpMessages, kind).toBeGreaterThan(0);
    expect(report.results.find((x) => x.kind === 'overload')?.warmUpMessages).toBeUndefined();
    expect(translator?.latencyMs?.samples).toBeGreaterThan(0);
    expect(report.ratios.translatorVsNaive).toBeGreaterThan(0);
    expect(report.ratios.translatorVsIngestLimit).toBeGreaterThan(0);
    expect(report.ratios.batchedBytesVsWireLimit).toBeGreaterThan(0);
    const measurer = report.results.find((x) => x.kind === 'measurer');
    expect(measurer?.cpuPercent).toBeGreaterThan(0);
    // Two runs: the row is the lower of the two (the median's lower middle).
    expect(measurer?.cpuPercentRuns).toHaveLength(2);
    expect(measurer?.cpuPercent).toBe(Math.min(...(measurer?.cpuPercentRuns ?? [])));
    expect(report.targets.find((t) => t.name === 'edgeperfCpuPercent')?.measured).toBe(measurer?.cpuPercent);
    expect(report.host.loadAvgStart).toHaveLength(3);
    expect(r.stderr).toContain('▶ naive');
  });
});
