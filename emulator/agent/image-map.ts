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
 * The Node options an image gives before its script: the words between `node` and the script in
 * its Dockerfile's exec-form ENTRYPOINT (`modules/<name>/Dockerfile.amd64`), so a local module runs
 * as its image does. Empty when the image is not one of this package's or the Dockerfile is absent.
 * @throws Error when the Dockerfile's ENTRYPOINT is not `["node", …options, "<script>"]`.
 */
export function localNodeOptions(image: string): string[] {
  const name = localModuleName(image);
  const dockerfile =
    name === undefined ? undefined : join(distRoot, '..', 'modules', name, 'Dockerfile.amd64');
  if (dockerfile === undefined || !existsSync(dockerfile)) return [];
  const line = /^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(readFileSync(dockerfile, 'utf8'))?.[1];
  const words: unknown = line === undefined ? undefined : JSON.parse(line);
  if (
    !Array.isArray(words) ||
    words[0] !== 'node' ||
    words.length < 2 ||
    !words.every((w) => typeof w === 'string')
  )
    throw new Error(`${dockerfile}: ENTRYPOINT must be ["node", …options, "<script>"]`);
  return words.slice(1, -1) as string[];
}

/** Path of the orphan guard preloaded into every child (see orphan-guard.ts). */
export function orphanGuardPath(): string {
  return join(distRoot, 'emulator', 'agent', 'orphan-guard.js');
}
