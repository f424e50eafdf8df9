import { afterEach, describe, expect, it } from 'vitest';
import { parseDeployment } from '../../emulator/agent/manifest.js';
import { ConfigError } from '../../modules/common/index.js';
import { generateManifest, lintManifest } from '../../perf-cli/manifest/index.js';
import { COLLECTOR_ENV, METRICS_COLLECTOR_IMAGE } from '../../perf-cli/manifest/metrics-collector.js';
import { HAVE_SCHEMAS, loadSchemas, schemaErrors } from './manifest-schemas.js';

const saved = { ...process.env };
afterEach(() => {
  for (const k of Object.values(COLLECTOR_ENV)) {
    if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
});

describe('metrics collector in generated manifests', () => {
  it('adds the collector scraping edgeHub and every translator, with workspace settings from env', () => {
    process.env[COLLECTOR_ENV.workspaceId] = 'ws-id';
    process.env[COLLECTOR_ENV.sharedKey] = 'a2V5';
    process.env[COLLECTOR_ENV.resourceId] =
      '/subscriptions/s/resourceGroups/g/providers/Microsoft.Devices/IotHubs/h';
    const manifest = generateManifest({ profile: 'multi-module', target: 'device', metricsCollector: true });
    const agent = manifest.modulesContent.$edgeAgent['properties.desired'] as unknown as {
      modules: Record<string, { settings: { image: string }; env: Record<string, { value: string }> }>;
    };
    const collector = agent.modules.metricscollector;
    expect(collector?.settings.image).toBe(METRICS_COLLECTOR_IMAGE);
    expect(collector?.env.LogAnalyticsWorkspaceId?.value).toBe('ws-id');
    expect(collector?.env.MetricsEndpointsCSV?.value.split(',')).toEqual([
      'http://edgeHub:9600/metrics',
      'http://translator:9601/metrics',
      'http://translator2:9602/metrics',
      'http://translator3:9603/metrics',
    ]);
    expect(() => parseDeployment(manifest)).not.toThrow();
    expect(lintManifest(manifest).errors).toBe(0);
    if (HAVE_SCHEMAS) {
      const validate = loadSchemas()('azure-iot-edge-deployment-2.0.json');
      expect(schemaErrors(validate, manifest)).toEqual([]);
    }
  });

  it('names every missing workspace setting at once', () => {
    for (const k of Object.values(COLLECTOR_ENV)) delete process.env[k];
    try {
      generateManifest({ profile: 'high-rate', metricsCollector: true });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).issues.map((i) => i.field).sort()).toEqual(
        Object.values(COLLECTOR_ENV)
          .map((k) => `env.${k}`)
          .sort(),
      );
    }
  });
});
