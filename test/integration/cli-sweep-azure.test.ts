import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'azure-iothub';
import { afterAll, describe, expect, it } from 'vitest';
import { createLocalHubAgent, useLocalHubAgent } from '../../emulator/index.js';
import type { RunSummary } from '../../perf-cli/analysis/summary-types.js';
import type { SweepResult } from '../../perf-cli/analysis/sweep-types.js';
import { edgeperf, hubArgs, type ReadyLine, startEmulator } from './cli-helpers.js';

// `edgeperf sweep --target azure` against a separately started runtime, through the connection
// strings it printed: each cell redeploys the device and waits for edgeAgent, as in Azure (issue 5).
// Its HostName has a port, so the cells' manifests are for loopback (--manifest-target local).
const cleanup: (() => void)[] = [];
afterAll(() => {
  for (const c of cleanup) c();
});

/** The environment without any EDGEPERF_* fallback, so only flags count. */
function bareEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('EDGEPERF_')));
}

interface AgentTwinProps {
  desired: {
    $version: number;
    modules: Record<string, { env?: Record<string, { value: unknown }> }>;
  };
  reported: { lastDesiredVersion?: number; lastDesiredStatus?: { code?: number } };
}

async function agentTwin(ready: ReadyLine): Promise<AgentTwinProps> {
  const registry = useLocalHubAgent(
    Registry.fromConnectionString(ready.iothub),
    createLocalHubAgent({ caPem: readFileSync(ready.caFile, 'utf8') }),
  );
  const { responseBody } = await registry.getModuleTwin(ready.edgeDeviceId, '$edgeAgent');
  return responseBody.properties as unknown as AgentTwinProps;
}

describe('edgeperf sweep --target azure', () => {
  it('redeploys the device per cell, waits for edgeAgent and measures each cell as run does', async () => {
    const { ready } = await startEmulator(cleanup);
    const dir = mkdtempSync(join(tmpdir(), 'cli-sweep-azure-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const versionBefore = (await agentTwin(ready)).desired.$version;

    const res = await edgeperf(
      [
        'sweep',
        '--target',
        'azure',
        ...hubArgs(ready),
        '--deploy-timeout',
        '60',
        '--app-batch-max-bytes',
        '0,65536',
        '--burst-length',
        '500',
        '--target-rate',
        '500',
        '--payload-length',
        '512',
        '--csv',
        join(dir, 'sweep.csv'),
        '--json',
      ],
      bareEnv(),
    );
    expect(res.code, res.stderr.slice(-2000)).toBe(0);
    const sweep = JSON.parse(res.stdout) as SweepResult;
    expect(sweep.kind).toBe('sweep');
    expect(sweep.axes).toEqual(['appBatchMaxBytes']);
    expect(sweep.cells.map((c) => c.params.appBatchMaxBytes)).toEqual([0, 65536]);
    for (const { summary } of sweep.cells) {
      expect(summary.mode).toBe('run');
      expect(summary.integrity).toMatchObject({ sent: 500, delivered: 500, lost: 0, expired: 0 });
    }
    const [naive, batched] = sweep.cells.map((c) => c.summary) as [RunSummary, RunSummary];
    // The config is the deployed manifest's, and the device really ran it: without application
    // batching every message is its own IoT Hub message; with 64 KiB batches far fewer.
    expect(naive.config.appBatch.maxBytes).toBe(0);
    expect(batched.config.appBatch.maxBytes).toBe(65_536);
    expect(naive.upstream.hubMessages).toBe(500 + naive.integrity.duplicates);
    expect(batched.upstream.hubMessages).toBeLessThan(50);
    expect(readFileSync(join(dir, 'sweep.csv'), 'utf8').trim().split('\n')).toHaveLength(5);

    // One deployment per cell reached the device, and edgeAgent applied the last one.
    const twin = await agentTwin(ready);
    expect(twin.desired.$version).toBe(versionBefore + 2);
    expect(twin.desired.modules.translator?.env?.BatchMaxBytes?.value).toBe('65536');
    expect(twin.reported.lastDesiredVersion).toBe(twin.desired.$version);
    expect(twin.reported.lastDesiredStatus?.code).toBe(200);
    expect(res.stderr).toMatch(/sweep cell 1\/2: edgeAgent applied desired version \d+, 2 modules ready/);
    expect(res.stderr).toMatch(/sweep cell 2\/2: edgeAgent applied desired version \d+, 2 modules ready/);
  });

  it('names the missing connection string and its env variable, exit 2', async () => {
    const res = await edgeperf(['sweep', '--target', 'azure', '--device-id', 'd'], bareEnv());
    expect(res.code).toBe(2);
    expect(res.stderr.trim()).toBe(
      'edgeperf: missing --iothub-connection-string (or env EDGEPERF_IOTHUB_CONNECTION_STRING)',
    );
  });

  it('refuses --link-rtt-ms with --target azure in one line, exit 2', async () => {
    const res = await edgeperf(
      ['sweep', '--target', 'azure', '--link-rtt-ms', '20', '--iothub-connection-string', 'HostName=h;x=y'],
      bareEnv(),
    );
    expect(res.code).toBe(2);
    expect(res.stderr.trim().split('\n')).toEqual([
      'edgeperf: --link-rtt-ms applies to --target local only (in Azure the link to IoT Hub is the real one)',
    ]);
  });

  it('refuses azure-only flags without --target azure, exit 2', async () => {
    const res = await edgeperf(['sweep', '--device-id', 'd', '--deploy-timeout', '60'], bareEnv());
    expect(res.code).toBe(2);
    expect(res.stderr.trim()).toBe('edgeperf: --device-id, --deploy-timeout apply to --target azure only');
  });
});
