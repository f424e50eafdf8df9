import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { localEntryPoint, localNodeOptions } from '../../emulator/agent/image-map.js';

// The local runtime starts a module as its image would: the Node options come from the
// Dockerfile's ENTRYPOINT, so a flag set there (the translator's semi-space) is measured locally too.

describe('local module images', () => {
  it('map an image to its entry point and its Dockerfile’s Node options', () => {
    expect(localEntryPoint('myacr.azurecr.io/translator:1.2-amd64')).toMatch(
      /modules[/\\]translator[/\\]main\.js$/,
    );
    expect(localNodeOptions('myacr.azurecr.io/translator:1.2-amd64')).toEqual(['--max-semi-space-size=4']);
    expect(localNodeOptions('edgeperf/simulator:local')).toEqual([]);
    expect(localNodeOptions('mcr.microsoft.com/azureiotedge-simulated-temperature-sensor:1.5')).toEqual([]);
    expect(
      localEntryPoint('mcr.microsoft.com/azureiotedge-simulated-temperature-sensor:1.5'),
    ).toBeUndefined();
  });

  it('read the same ENTRYPOINT from both architectures’ Dockerfiles', () => {
    for (const name of ['translator', 'simulator']) {
      const entry = (arch: string) =>
        /^ENTRYPOINT .*$/m.exec(readFileSync(`modules/${name}/Dockerfile.${arch}`, 'utf8'))?.[0];
      expect(entry('arm64v8'), name).toBe(entry('amd64'));
    }
  });
});
