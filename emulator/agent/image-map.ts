import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Modules this package ships with a local entry point. */
export const LOCAL_MODULES = ['translator', 'simulator', 'naive'] as const;

// Compiled: dist/emulator/agent/image-map.js → dist/. From source (tests): <repo>/dist, built by pretest.
const here = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const distRoot = here.endsWith(`${sep}dist`) ? here : join(here, 'dist');

/**
 * Maps a module image to a local entry point, or undefined when the module is registered only.
 *
 * The convention: the last path segment of the image repository, without tag or platform suffix,
 * names a module of this package (`edgeperf/translator:0.1.0-amd64`, `myacr.azurecr.io/translator:1`
 * → `dist/modules/translator/main.js`). Any other image (`mcr.microsoft.com/azureiotedge-simulated-
 * temperature-sensor:1.5`) has no local entry point: the agent gives it an identity and a connection
 * string only, so a developer can run it by hand.
 */
export function localEntryPoint(image: string): string | undefined {
  const name = localModuleName(image);
  if (name === undefined) return undefined;
  const entry = join(distRoot, 'modules', name, 'main.js');
  return existsSync(entry) ? entry : undefined;
}

/** The module of this package an image names (see {@link localEntryPoint}), if any. */
function localModuleName(image: string): string | undefined {
  const withoutTag = image.replace(/@sha256:[0-9a-f]+$/i, '').replace(/:[^/:]+$/, '');
  const name = withoutTag.split('/').pop()?.toLowerCase() ?? '';
  return (LOCAL_MODULES as readonly string[]).includes(name) ? name : undefined;
}

/**
 * The environment an image sets (the `ENV KEY=value` lines of its Dockerfile's last stage,
 * `modules/<name>/Dockerfile.amd64`), so a local module runs as its container would: the
 * manifest's env then overrides it, as a container's does. Empty when the image is not one of
 * this package's or the Dockerfile is absent (an install without the sources).
 * @throws Error naming the line when an ENV line is not `ENV KEY=value …`.
 */
export function localImageEnv(image: string): Record<string, string> {
  const name = localModuleName(image);
  const dockerfile =
    name === undefined ? undefined : join(distRoot, '..', 'modules', name, 'Dockerfile.amd64');
  if (dockerfile === undefined || !existsSync(dockerfile)) return {};
  const lines = readFileSync(dockerfile, 'utf8').split('\n');
  const lastFrom = lines.findLastIndex((l) => /^FROM\s/i.test(l));
  const env: Record<string, string> = {};
  lines.forEach((line, at) => {
    if (at < lastFrom || !/^ENV\s/i.test(line)) return;
    const pairs = line.replace(/^ENV\s+/i, '').trim();
    const pair = /([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|[^\s"]*)(\s+|$)/y;
    let rest = 0;
    for (let m = pair.exec(pairs); m !== null; m = pair.exec(pairs)) {
      const [, key = '', value = ''] = m;
      env[key] = value.startsWith('"') ? value.slice(1, -1) : value;
      rest = pair.lastIndex;
    }
    if (rest !== pairs.length) throw new Error(`${dockerfile}:${at + 1}: ENV must be KEY=value pairs`);
  });
  return env;
}

/** Path of the orphan guard preloaded into every child (see orphan-guard.ts). */
export function orphanGuardPath(): string {
  return join(distRoot, 'emulator', 'agent', 'orphan-guard.js');
}
