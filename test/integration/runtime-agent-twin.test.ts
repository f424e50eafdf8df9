import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'azure-iothub';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  LocalEdgeRuntime,
  parseDeployment,
  type RuntimeReadyInfo,
  useLocalHubAgent,
} from '../../emulator/index.js';
import { createLogger } from '../../modules/common/index.js';
import { freePorts, relocatePorts } from '../../perf-cli/local-ports.js';
import { type DeploymentManifest, generateManifest } from '../../perf-cli/manifest/index.js';
import { waitForDeployment } from '../../perf-cli/module-readiness.js';

// The $edgeAgent twin as a real device keeps it, read with the unmodified service SDK: what
// `edgeperf sweep --target azure` waits on between cells (issue 5).

interface ReportedModule {
  runtimeStatus?: string;
  exitCode?: number;
  lastStartTimeUtc?: string;
  lastExitTimeUtc?: string;
  restartCount?: number;
  status?: string;
  settings?: { image?: string };
}

interface AgentTwin {
  properties: {
    desired: {
      $version: number;
      modules?: Record<string, unknown>;
      systemModules?: { edgeHub?: { env?: Record<string, { value: unknown }> } };
    };
    reported: {
      lastDesiredVersion?: number;
      lastDesiredStatus?: { code?: number; description?: string };
      systemModules?: { edgeAgent?: ReportedModule; edgeHub?: ReportedModule };
      modules?: Record<string, ReportedModule>;
    };
  };
}

const DEVICE = 'edge-device';
let stateDir: string;
let runtime: LocalEdgeRuntime;
let ready: RuntimeReadyInfo;
let registry: Registry;
const logger = createLogger('test', { level: 'warn', pretty: false });

/** What `edgeperf sweep --target azure` runs between cells. */
function waitFor(modules: string[], timeoutSecs = 10) {
  return waitForDeployment({
    registry,
    deviceId: DEVICE,
    modules,
    timeoutSecs,
    pollIntervalInMs: 100,
    logger,
  });
}

async function manifest(change: (m: DeploymentManifest) => void = () => undefined) {
  const m = generateManifest({ profile: 'high-rate', ratePerSec: 500, payloadLength: 512, target: 'local' });
  const ports = await freePorts(4);
  relocatePorts(m as unknown as Record<string, unknown>, () => ports.shift() ?? 0);
  change(m);
  return m;
}

async function agentTwin(): Promise<AgentTwin> {
  return (await registry.getModuleTwin(DEVICE, '$edgeAgent')).responseBody as unknown as AgentTwin;
}

async function until(what: string, ok: (t: AgentTwin) => boolean): Promise<AgentTwin> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const twin = await agentTwin();
    if (ok(twin)) return twin;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}: ${JSON.stringify(twin.properties.reported)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  stateDir = mkdtempSync(join(tmpdir(), 'rt-agent-twin-'));
  runtime = new LocalEdgeRuntime({
    deployment: parseDeployment(await manifest()),
    stateDir,
    ports: { mqtt: 0, amqp: 0, metrics: 0, iothub: 0, eventHubs: 0 },
    streamJob: false,
    logger,
  });
  ready = await runtime.start();
  registry = useLocalHubAgent(Registry.fromConnectionString(ready.iothub), runtime.serviceAgent());
});

afterAll(async () => {
  await runtime?.stop();
  rmSync(stateDir, { recursive: true, force: true });
});

describe('the local runtime keeps the $edgeAgent twin as IoT Edge does', () => {
  it('lists $edgeAgent and $edgeHub and reports the deployment it started with as applied', async () => {
    const { responseBody: list } = await registry.getModulesOnDevice(DEVICE);
    expect(list.map((m) => m.moduleId).sort()).toEqual(['$edgeAgent', '$edgeHub', 'simulator', 'translator']);

    const twin = await agentTwin();
    const { desired, reported } = twin.properties;
    expect(Object.keys(desired.modules ?? {}).sort()).toEqual(['simulator', 'translator']);
    expect(reported.lastDesiredVersion).toBe(desired.$version);
    expect(reported.lastDesiredStatus).toEqual({ code: 200, description: '' });
    expect(reported.systemModules?.edgeAgent?.runtimeStatus).toBe('running');
    expect(reported.systemModules?.edgeHub?.runtimeStatus).toBe('running');
    expect(reported.modules?.translator).toMatchObject({
      runtimeStatus: 'running',
      status: 'running',
      restartCount: 0,
      settings: { image: 'edgeperf/translator:local' },
    });
    expect(reported.modules?.simulator?.runtimeStatus).toBe('running');
    expect(Date.parse(reported.modules?.translator?.lastStartTimeUtc ?? '')).toBeGreaterThan(
      Date.now() - 60_000,
    );
  });

  it('after applyConfigurationContentOnDevice shows the new desired version applied with its modules running', async () => {
    const before = (await agentTwin()).properties.desired.$version;
    const next = await manifest((m) => {
      const agent = m.modulesContent.$edgeAgent['properties.desired'];
      (agent.systemModules.edgeHub.env ?? {}).MaxUpstreamBatchSize = { value: '50' };
      delete agent.modules.simulator;
      delete m.modulesContent.simulator;
    });
    await registry.applyConfigurationContentOnDevice(DEVICE, {
      modulesContent: next.modulesContent as never,
    });

    const twin = await until(
      'the new version applied',
      (t) => t.properties.reported.lastDesiredVersion === before + 1,
    );
    const { desired, reported } = twin.properties;
    expect(desired.$version).toBe(before + 1);
    expect(desired.systemModules?.edgeHub?.env?.MaxUpstreamBatchSize?.value).toBe('50');
    expect(reported.lastDesiredStatus?.code).toBe(200);
    // The removed module is gone from the report, not left behind as stale state.
    expect(Object.keys(reported.modules ?? {})).toEqual(['translator']);
    expect(reported.modules?.translator?.runtimeStatus).toBe('running');
    const hub = (await registry.getModuleTwin(DEVICE, '$edgeHub')).responseBody.properties;
    expect(hub.reported.lastDesiredVersion).toBe(hub.desired.$version);
    await expect(waitFor(['translator'])).resolves.toBe(before + 1);
  });

  it('reports a deployment that cannot be applied with code 400 and the reason', async () => {
    const bad = await manifest((m) => {
      m.modulesContent.$edgeHub['properties.desired'].routes.broken = 'FROM /messages/* INTO nowhere';
    });
    await expect(runtime.deploy(parseDeployment(bad))).rejects.toThrow(/unknown sink 'nowhere'/);
    const { desired, reported } = (await agentTwin()).properties;
    expect(reported.lastDesiredVersion).toBe(desired.$version);
    expect(reported.lastDesiredStatus?.code).toBe(400);
    expect(reported.lastDesiredStatus?.description).toContain('routes.broken');
    // What runs is still the last good deployment.
    expect(Object.keys(reported.modules ?? {})).toEqual(['translator']);
    await expect(waitFor(['translator'])).rejects.toThrow(
      /did not apply desired version \d+: code 400 \(.*unknown sink 'nowhere'/,
    );
  });

  it('a killed module shows backoff with its exit code, then running again with one restart', async () => {
    await runtime.deploy(parseDeployment(await manifest()));
    await until(
      'translator running',
      (t) => t.properties.reported.modules?.translator?.runtimeStatus === 'running',
    );
    expect(runtime.supervisor?.kill('translator', 'SIGKILL')).toBe(true);

    const down = await until(
      'translator not running',
      (t) => t.properties.reported.modules?.translator?.runtimeStatus !== 'running',
    );
    const killed = down.properties.reported.modules?.translator;
    expect(killed?.runtimeStatus).toBe('backoff');
    // Docker's convention for a signal: 128 + SIGKILL (9).
    expect(killed?.exitCode).toBe(137);
    expect(Date.parse(killed?.lastExitTimeUtc ?? '')).toBeGreaterThan(Date.now() - 15_000);

    const up = await until(
      'translator restarted',
      (t) => t.properties.reported.modules?.translator?.runtimeStatus === 'running',
    );
    expect(up.properties.reported.modules?.translator?.restartCount).toBe(1);
    expect(up.properties.reported.modules?.simulator?.runtimeStatus).toBe('running');
  });

  it('a killed module with restartPolicy never stays failed', async () => {
    await runtime.deploy(
      parseDeployment(
        await manifest((m) => {
          const translator = m.modulesContent.$edgeAgent['properties.desired'].modules.translator;
          if (translator) translator.restartPolicy = 'never';
        }),
      ),
    );
    expect(runtime.supervisor?.kill('translator', 'SIGKILL')).toBe(true);
    const twin = await until(
      'translator failed',
      (t) => t.properties.reported.modules?.translator?.runtimeStatus === 'failed',
    );
    expect(twin.properties.reported.modules?.translator?.exitCode).toBe(137);
    expect(twin.properties.reported.lastDesiredStatus?.code).toBe(200);
    await expect(waitFor(['translator', 'simulator'], 1)).rejects.toThrow(
      'not applied within 1 s: modules not running: translator (failed)',
    );
  });
});
