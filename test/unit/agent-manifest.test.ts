import { describe, expect, it } from 'vitest';
import { localEntryPoint } from '../../emulator/agent/image-map.js';
import { parseDeployment, resolvePlaceholders } from '../../emulator/agent/manifest.js';
import { ConfigError, EdgePerfError } from '../../modules/common/index.js';

function manifest(modules: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return {
    modulesContent: {
      $edgeAgent: {
        'properties.desired': {
          schemaVersion: '1.1',
          runtime: { type: 'docker', settings: {} },
          systemModules: {
            edgeAgent: { type: 'docker', settings: { image: 'mcr.microsoft.com/azureiotedge-agent:1.5' } },
            edgeHub: {
              type: 'docker',
              settings: { image: 'mcr.microsoft.com/azureiotedge-hub:1.5' },
              env: { MaxUpstreamBatchSize: { value: 50 } },
            },
          },
          modules,
        },
      },
      $edgeHub: {
        'properties.desired': {
          schemaVersion: '1.1',
          routes: { up: 'FROM /messages/* INTO $upstream' },
          storeAndForwardConfiguration: { timeToLiveSecs: 7200 },
        },
      },
      ...extra,
    },
  };
}

describe('deployment manifest', () => {
  it('reads modules, env as strings, twins and edgeHub settings', () => {
    const spec = parseDeployment(
      manifest(
        {
          translator: {
            type: 'docker',
            status: 'running',
            restartPolicy: 'always',
            settings: { image: 'edgeperf/translator:local', createOptions: '{}' },
            env: { BatchMaxBytes: { value: 262000 }, BatchEnabled: { value: true } },
          },
        },
        { translator: { 'properties.desired': { batch: { maxMessages: 100 } } } },
      ),
    );
    expect(spec.modules).toHaveLength(1);
    expect(spec.modules[0]?.env).toEqual({ BatchMaxBytes: '262000', BatchEnabled: 'true' });
    expect(spec.modules[0]?.desired).toEqual({ batch: { maxMessages: 100 } });
    expect(spec.edgeHubEnv.MaxUpstreamBatchSize).toBe('50');
    expect(spec.edgeHubDesired.routes).toEqual({ up: 'FROM /messages/* INTO $upstream' });
  });

  it('reports every invalid field at once with its path', () => {
    const bad = manifest({
      a: { type: 'docker', status: 'sleeping', settings: { image: 'x' } },
      b: { type: 'podman', settings: { image: '' } },
    });
    try {
      parseDeployment(bad);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const fields = (err as ConfigError).issues.map((i) => i.field);
      expect(fields).toContain('modulesContent.$edgeAgent.properties.desired.modules.a.status');
      expect(fields).toContain('modulesContent.$edgeAgent.properties.desired.modules.b.type');
      expect(fields).toContain('modulesContent.$edgeAgent.properties.desired.modules.b.settings.image');
    }
  });

  it('resolves tooling placeholders and refuses unresolved ones', () => {
    const text = JSON.stringify(
      manifest({
        translator: { type: 'docker', settings: { image: ['$', '{MODULES.translator.amd64}'].join('') } },
      }),
    );
    const spec = parseDeployment(JSON.parse(resolvePlaceholders(text, { tag: '0.1.0' })));
    expect(spec.modules[0]?.image).toBe('edgeperf/translator:0.1.0');
    expect(() => parseDeployment(JSON.parse(text))).toThrow(EdgePerfError);
  });

  it('maps only this package’s images to local entry points', () => {
    expect(
      localEntryPoint('mcr.microsoft.com/azureiotedge-simulated-temperature-sensor:1.5'),
    ).toBeUndefined();
    expect(localEntryPoint('myacr.azurecr.io/unknown:1')).toBeUndefined();
  });
});
