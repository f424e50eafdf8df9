import { afterAll, describe, expect, it, vi } from 'vitest';
import {
  type Figures,
  figures,
  killRunningCli,
  type LocalRun,
  recordFigures,
  runEdgeperfLocal,
} from './faults-helpers.js';

// Drill 3 of issue 8 through `edgeperf local --outage`. Scaled for CI: the 30 s outage at
// 2,000 msg/s becomes 5 s at 2,000 msg/s (the queue still grows by ~10,000 messages and drains);
// the TTL drill uses a 3 s TTL, a 1 s cleanup interval and an 8 s outage.

// Each drill starts a runtime and its modules; on a loaded 2-core CI runner that can pass 60 s.
vi.setConfig({ testTimeout: 150_000 });

const rows: Figures[] = [];

afterAll(() => {
  killRunningCli();
  recordFigures('cli-outage', rows);
});

function row(name: string, run: LocalRun, note: string): void {
  const i = run.summary?.integrity;
  rows.push(
    figures(name, {
      cases: 1,
      sent: i?.sent ?? 0,
      delivered: i?.delivered ?? 0,
      lost: i?.lost ?? 0,
      duplicated: i?.duplicates ?? 0,
      expired: i?.expired ?? 0,
      note: `${note}; exit ${run.code}; ${(run.wallMs / 1000).toFixed(1)} s`,
    }),
  );
}

function explain(run: LocalRun): string {
  return `exit ${run.code}; integrity ${JSON.stringify(run.summary?.integrity)} queue ${JSON.stringify(run.summary?.queue)}; stderr tail: ${run.stderr.slice(-600)}`;
}

describe('drill 3: uplink outage at a high rate', () => {
  it('the queue grows and drains; 0 lost within the TTL', async () => {
    const run = await runEdgeperfLocal([
      '--burst-length',
      '12000',
      '--target-rate',
      '2000',
      '--outage',
      '1:5',
      '--timeout',
      '10',
    ]);
    row('3a outage 5 s at 2000 msg/s', run, 'edgeperf local --outage 1:5 (issue: 30 s, scaled)');
    expect(run.summary, explain(run)).toBeDefined();
    const s = run.summary;
    expect(s?.faults?.[0]?.fault).toBe('outage 5s');
    expect(s?.queue.peakLength, explain(run)).toBeGreaterThan(0);
    expect(s?.integrity.lost, explain(run)).toBe(0);
    expect(s?.integrity.expired).toBe(0);
    expect(run.code).toBe(0);
  });

  it('a TTL shorter than the outage: expired messages are counted, equal to what never arrived, exit 3', async () => {
    // One upstream message per record (--no-app-batch) so edgeHub's expiry count (per queued message)
    // and the lost count (per record) are in the same unit and must be equal.
    const run = await runEdgeperfLocal([
      '--burst-length',
      '2000',
      '--target-rate',
      '500',
      '--no-app-batch',
      '--max-upstream-batch-size',
      '100',
      '--outage',
      '0:8',
      '--timeout',
      '5',
      '--set',
      '$edgeHub.storeAndForwardConfiguration.timeToLiveSecs=3',
      '--set',
      '$edgeHub.env.MessageCleanupIntervalSecs=1',
      '--set',
      '$edgeHub.env.CheckEntireQueueOnCleanup=true',
    ]);
    row(
      '3b outage 8 s, TTL 3 s',
      run,
      'TTL 3 s, MessageCleanupIntervalSecs=1, one upstream message per record',
    );
    expect(run.summary, explain(run)).toBeDefined();
    const i = run.summary?.integrity;
    expect(i?.expired, explain(run)).toBeGreaterThan(0);
    expect(i?.expired, explain(run)).toBe(i?.lost);
    expect(run.code).toBe(3);
  });
});
