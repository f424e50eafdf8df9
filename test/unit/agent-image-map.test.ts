import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { localEntryPoint, localImageEnv } from '../../emulator/agent/image-map.js';

// The local runtime starts a module as its container would: with the env its image sets (the
// Dockerfile's ENV), so a setting made there (the translator's semi-space) is measured locally too.

describe('local module images', () => {
  it('map an image to its entry point and its Dockerfile’s ENV', () => {
    expect(localEntryPoint('myacr.azurecr.io/translator:1.2-amd64')).toMatch(
      /modules[/\\]translator[/\\]main\.js$/,
    );
    expect(localImageEnv('myacr.azurecr.io/translator:1.2-amd64')).toEqual({
      NODE_ENV: 'production',
      NODE_OPTIONS: '--max-semi-space-size=4',
    });
    expect(localImageEnv('edgeperf/simulator:local')).toEqual({ NODE_ENV: 'production' });
    expect(localImageEnv('mcr.microsoft.com/azureiotedge-simulated-temperature-sensor:1.5')).toEqual({});
    expect(
      localEntryPoint('mcr.microsoft.com/azureiotedge-simulated-temperature-sensor:1.5'),
    ).toBeUndefined();
  });

  it('read the same ENV and ENTRYPOINT from both architectures’ Dockerfiles', () => {
    for (const name of ['translator', 'simulator']) {
      const lines = (arch: string) =>
        readFileSync(`modules/${name}/Dockerfile.${arch}`, 'utf8')
          .split('\n')
          .filter((l) => /^(ENV|ENTRYPOINT) /.test(l));
      expect(lines('arm64v8'), name).toEqual(lines('amd64'));
      expect(lines('amd64').length, name).toBeGreaterThan(1);
    }
  });
});
