import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseDeployment, resolvePlaceholders } from '../../emulator/agent/manifest.js';
import { parseEdgeHubDesired, parseEdgeHubEnv } from '../../emulator/edgehub/settings.js';
import { ConfigError, EdgePerfError } from '../../modules/common/index.js';
import { connectionSettingsFromEnv } from '../../modules/simulator/settings.js';
import { settingsFromEnv } from '../../modules/translator/config/index.js';
import {
  type DeploymentManifest,
  generateManifest,
  generateManifestWithReport,
  getProfile,
  lintManifest,
  MAX_MESSAGE_BYTES,
  PROFILE_NAMES,
  type ProfileName,
} from '../../perf-cli/manifest/index.js';
import { imageModuleName } from '../../perf-cli/manifest/manifest-model.js';
import { HAVE_SCHEMAS, loadSchemas, schemaErrors } from './manifest-schemas.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const templateText = readFileSync(join(repoRoot, 'deployment', 'deployment.template.json'), 'utf8');

/** The rate each profile is exercised at: offline-tolerant keeps 24 h, which fits 32 GB at 100 msg/s. */
const RATE: Record<ProfileName, number> = {
  baseline: 2000,
  'high-rate': 2000,
  'offline-tolerant': 100,
  'multi-module': 2000,
};

function gen(profile: ProfileName, extra: Parameters<typeof generateManifest>[0] = {}): DeploymentManifest {
  return generateManifest({ profile, ratePerSec: RATE[profile], payloadLength: 1024, diskGb: 32, ...extra });
}

function agentOf(m: DeploymentManifest) {
  return m.modulesContent.$edgeAgent['properties.desired'];
}

function envOf(m: DeploymentManifest, module: string): Record<string, string> {
  const a = agentOf(m);
  const def = module === '$edgeHub' ? a.systemModules.edgeHub : a.modules[module];
  return Object.fromEntries(Object.entries(def?.env ?? {}).map(([k, v]) => [k, String(v.value)]));
}

describe.skipIf(!HAVE_SCHEMAS)('public schemas (SchemaStore, draft-04)', () => {
  const schema = loadSchemas();

  it.each(PROFILE_NAMES)('%s validates against deployment-2.0, edgeAgent 1.1 and edgeHub 1.2', (profile) => {
    const m = gen(profile);
    expect(schemaErrors(schema('azure-iot-edge-deployment-2.0.json'), m)).toEqual([]);
    expect(
      schemaErrors(schema('azure-iot-edgeagent-deployment-1.1.json'), {
        $edgeAgent: m.modulesContent.$edgeAgent,
      }),
    ).toEqual([]);
    expect(
      schemaErrors(schema('azure-iot-edgehub-deployment-1.2.json'), { $edgeHub: m.modulesContent.$edgeHub }),
    ).toEqual([]);
  });

  it('the template validates against deployment-template-4.0', () => {
    expect(
      schemaErrors(schema('azure-iot-edge-deployment-template-4.0.json'), JSON.parse(templateText)),
    ).toEqual([]);
  });

  it('the validator can fail: an object createOptions is rejected by deployment-2.0', () => {
    const m = gen('high-rate');
    const edgeHub = agentOf(m).systemModules.edgeHub as unknown as { settings: Record<string, unknown> };
    edgeHub.settings.createOptions = { HostConfig: {} };
    expect(schemaErrors(schema('azure-iot-edge-deployment-2.0.json'), m).join('\n')).toMatch(/createOptions/);
  });
});

describe('generated manifests', () => {
  it.each(PROFILE_NAMES)(
    '%s is accepted by the local runtime and by edgeHub, translator and simulator settings',
    (profile) => {
      const m = gen(profile);
      const spec = parseDeployment(m);
      const names = spec.modules.map((x) => x.name);
      expect(names).toContain('translator');
      expect(names).toContain('simulator');
      // The simulator starts last, after every broker-hosting translator.
      expect(names[names.length - 1]).toBe('simulator');
      for (const mod of spec.modules) {
        expect(['translator', 'simulator']).toContain(imageModuleName(mod.image));
        expect(mod.image).toMatch(/^edgeperf\/(translator|simulator):local$/);
        expect(typeof mod.createOptions).toBe('string');
        if (imageModuleName(mod.image) === 'translator') expect(() => settingsFromEnv(mod.env)).not.toThrow();
        else expect(connectionSettingsFromEnv(mod.env).brokerUrl).toBe('mqtt://127.0.0.1:1883');
      }
      expect(() => parseEdgeHubEnv(spec.edgeHubEnv)).not.toThrow();
      expect(() => parseEdgeHubDesired(spec.edgeHubDesired)).not.toThrow();
    },
  );

  it.each(PROFILE_NAMES)('%s lints without errors at the rate and disk it was made for', (profile) => {
    const r = lintManifest(gen(profile), { diskGb: 32 });
    expect(r.errors).toBe(0);
    expect(r.skipped).toEqual([]);
    if (profile === 'baseline') {
      // The "before": exactly the problems the blog started from.
      expect(r.findings.map((f) => f.rule).sort()).toEqual([
        'cleanup-shared-endpoint',
        'storage-not-bound',
        'upstream-batch-too-small',
      ]);
    } else {
      expect(r.findings).toEqual([]);
    }
  });

  it('the template itself is accepted by the local runtime after placeholder resolution', () => {
    const spec = parseDeployment(JSON.parse(resolvePlaceholders(templateText)));
    expect(spec.modules.map((m) => [m.name, m.image])).toEqual([
      ['translator', 'edgeperf/translator:local'],
      ['simulator', 'edgeperf/simulator:local'],
    ]);
    expect(spec.modules[1]?.env.SourceBrokerUrl).toBe('mqtt://127.0.0.1:1883');
  });

  it('every profile file documents itself', () => {
    for (const name of PROFILE_NAMES) {
      const p = getProfile(name);
      expect(p.description.length).toBeGreaterThan(40);
      expect(Object.keys(p.choices).length).toBeGreaterThan(3);
    }
  });

  it('baseline keeps the blog defaults: MaxUpstreamBatchSize 10, no batching, TTL 7200, storage unbound', () => {
    const m = gen('baseline');
    expect(envOf(m, '$edgeHub')).toEqual({ MaxUpstreamBatchSize: '10' });
    expect(envOf(m, 'translator').BatchEnabled).toBe('false');
    expect(m.modulesContent.$edgeHub['properties.desired'].storeAndForwardConfiguration).toEqual({
      timeToLiveSecs: 7200,
    });
  });

  it('high-rate sizes batches for 256 KiB, matches MaxUpstreamBatchSize and fits the TTL to the disk', () => {
    const { manifest, report } = generateManifestWithReport({
      profile: 'high-rate',
      ratePerSec: 2000,
      payloadLength: 1024,
      diskGb: 32,
    });
    const t = envOf(manifest, 'translator');
    expect(t.BatchEnabled).toBe('true');
    expect(Number(t.BatchMaxBytes)).toBe(MAX_MESSAGE_BYTES);
    expect(Number(t.BatchMaxMessages) * 1024).toBeLessThan(MAX_MESSAGE_BYTES);
    const hub = envOf(manifest, '$edgeHub');
    expect(Number(hub.MaxUpstreamBatchSize) * report.upstreamMessageBytes).toBeLessThanOrEqual(
      MAX_MESSAGE_BYTES,
    );
    expect(hub.StorageFolder).toBe('/iotedge/storage');
    expect(hub.CheckEntireQueueOnCleanup).toBe('true');
    expect(Number(hub.MessageCleanupIntervalSecs)).toBeLessThanOrEqual(report.timeToLiveSecs);
    const createOptions = JSON.parse(agentOf(manifest).systemModules.edgeHub.settings.createOptions ?? '');
    expect(createOptions.HostConfig.Binds).toEqual(['/etc/iotedge/storage/:/iotedge/storage/']);
    expect(createOptions.HostConfig.PortBindings['9600/tcp']).toEqual([{ HostPort: '9600' }]);
    // TTL sized to 80% of 32 GB: the worst case fits, one more second of it would not by much.
    expect(report.sizing.fits).toBe(true);
    expect(report.sizing.diskBytes).toBeGreaterThan(0.99 * 0.8 * 32e9);
    // A smaller disk gives a proportionally shorter TTL.
    const half = generateManifestWithReport({
      profile: 'high-rate',
      ratePerSec: 2000,
      payloadLength: 1024,
      diskGb: 16,
    }).report;
    expect(half.timeToLiveSecs).toBeCloseTo(report.timeToLiveSecs / 2, -1);
    // Small messages without app batching would get a large batch size: 256 KiB / 1 KiB.
    const noBatch = generateManifestWithReport({
      profile: 'high-rate',
      set: ['translator.env.BatchEnabled=false'],
    }).manifest;
    expect(envOf(noBatch, 'translator').BatchEnabled).toBe('false');
  });

  it('offline-tolerant puts alarms ahead of bulk and refuses a TTL the disk cannot hold', () => {
    const m = gen('offline-tolerant');
    const routes = m.modulesContent.$edgeHub['properties.desired'].routes;
    expect(routes.alarmsToUpstream).toMatchObject({ priority: 0 });
    expect(routes.translatorToUpstream).toMatchObject({ priority: 1 });
    expect(envOf(m, 'alarms')).toMatchObject({
      SourceTopics: 'sim/+/alarm',
      BatchEnabled: 'false',
      SourceUrl: 'mqtt://127.0.0.1:1883',
    });
    expect(m.modulesContent.$edgeHub['properties.desired'].storeAndForwardConfiguration?.timeToLiveSecs).toBe(
      86_400,
    );
    expect(() => gen('offline-tolerant', { ratePerSec: 2000 })).toThrow(/needs .* GB .*TTL ≤ \d+ s/);
  });

  it('multi-module fans out over three translators with distinct client ids, metrics ports and devices', () => {
    const m = gen('multi-module');
    const names = ['translator', 'translator2', 'translator3'];
    expect(names.map((n) => envOf(m, n).SourceClientId)).toEqual(names.map((n) => `edgeperf-${n}`));
    expect(names.map((n) => envOf(m, n).MetricsPort)).toEqual(['9601', '9602', '9603']);
    expect(names.map((n) => envOf(m, n).EmbeddedBrokerEnabled)).toEqual(['true', 'false', 'false']);
    // Devices sim-1…sim-30 are shared round-robin, each subscribed by exactly one instance.
    const topics = names.flatMap((n) => (envOf(m, n).SourceTopics ?? '').split(','));
    expect(topics.sort()).toEqual(Array.from({ length: 30 }, (_, i) => `sim/sim-${i + 1}/#`).sort());
    expect(envOf(m, 'translator2').SourceTopics?.split(',').slice(0, 2)).toEqual([
      'sim/sim-2/#',
      'sim/sim-5/#',
    ]);
    expect(m.modulesContent.simulator?.['properties.desired']).toEqual({
      config: { targetRate: 2000, payloadLength: 1024, devices: 3 },
    });
    const routes = Object.keys(m.modulesContent.$edgeHub['properties.desired'].routes).sort();
    expect(routes).toEqual(names.flatMap((n) => [`${n}DeadletterToUpstream`, `${n}ToUpstream`]).sort());
  });

  it('device target uses module names on the Docker network and listens on 0.0.0.0', () => {
    const m = gen('multi-module', { target: 'device', registry: 'myacr.azurecr.io', tag: '0.1.0-amd64' });
    expect(envOf(m, 'simulator').SourceBrokerUrl).toBe('mqtt://translator:1883');
    expect(envOf(m, 'translator2').SourceUrl).toBe('mqtt://translator:1883');
    expect(envOf(m, 'translator').EmbeddedBrokerHost).toBe('0.0.0.0');
    expect(agentOf(m).modules.translator?.settings.image).toBe('myacr.azurecr.io/translator:0.1.0-amd64');
  });

  it('--set addresses env, createOptions, routes, desired properties and module prefixes', () => {
    const m = gen('multi-module', {
      set: [
        '$edgeHub.env.MaxUpstreamBatchSize=50',
        'translator*.env.BatchMaxBytes=200000',
        '$edgeHub.routes.extra=FROM /messages/* INTO $upstream',
        '$edgeHub.storeAndForwardConfiguration.timeToLiveSecs=3600',
        '$edgeHub.createOptions.HostConfig.Binds=["/srv/eh:/iotedge/storage"]',
        'simulator.desired.config.devices=6',
        'translator.env.RuntimeLogLevel=',
      ],
    });
    expect(envOf(m, '$edgeHub').MaxUpstreamBatchSize).toBe('50');
    expect(['translator', 'translator2', 'translator3'].map((n) => envOf(m, n).BatchMaxBytes)).toEqual([
      '200000',
      '200000',
      '200000',
    ]);
    const hub = m.modulesContent.$edgeHub['properties.desired'];
    expect(hub.routes.extra).toBe('FROM /messages/* INTO $upstream');
    expect(hub.storeAndForwardConfiguration?.timeToLiveSecs).toBe(3600);
    const co = agentOf(m).systemModules.edgeHub.settings.createOptions;
    expect(typeof co).toBe('string');
    expect(JSON.parse(co ?? '').HostConfig.Binds).toEqual(['/srv/eh:/iotedge/storage']);
    const simDesired = m.modulesContent.simulator?.['properties.desired'] as { config: { devices: number } };
    expect(simDesired.config.devices).toBe(6);
    expect(envOf(m, 'translator').RuntimeLogLevel).toBeUndefined();
  });

  it('rejects bad --set assignments and values the project validators refuse, naming them', () => {
    expect(() => gen('high-rate', { set: ['nosuch.env.X=1'] })).toThrow(
      /no module nosuch; allowed: .*translator/,
    );
    expect(() => gen('high-rate', { set: ['translator'] })).toThrow(EdgePerfError);
    expect(() => gen('high-rate', { set: ['translator.bogus=1'] })).toThrow(/unknown path bogus/);
    const err = (() => {
      try {
        gen('high-rate', { set: ['translator.env.BatchMaxBytes=999999', '$edgeHub.routes.bad=FROM INTO'] });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toMatch(/translator\.env\.BatchMaxBytes/);
    expect((err as ConfigError).message).toMatch(/routes\.bad/);
    expect(() => generateManifest({ ratePerSec: -1, payloadLength: 0 })).toThrow(/ratePerSec.*payloadLength/);
  });
});

describe('checked-in manifests (deployment/manifests)', () => {
  // Regenerate with: npx tsx perf-cli/main.ts manifest --profile P [--rate 100] -o deployment/manifests/P.deployment.json
  it.each(PROFILE_NAMES)('%s.deployment.json is what the generator produces today', (profile) => {
    const file = join(repoRoot, 'deployment', 'manifests', `${profile}.deployment.json`);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(gen(profile));
  });

  it('local.deployment.json (the default of edgeperf local/emulator) is the high-rate profile for the local runtime', () => {
    const file = join(repoRoot, 'deployment', 'local.deployment.json');
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(
      generateManifest({ profile: 'high-rate', target: 'local' }),
    );
  });
});
