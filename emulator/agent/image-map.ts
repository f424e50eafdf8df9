import { existsSync } from 'node:fs';
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
  const withoutTag = image.replace(/@sha256:[0-9a-f]+$/i, '').replace(/:[^/:]+$/, '');
  const name = withoutTag.split('/').pop()?.toLowerCase() ?? '';
  if (!(LOCAL_MODULES as readonly string[]).includes(name)) return undefined;
  const entry = join(distRoot, 'modules', name, 'main.js');
  return existsSync(entry) ? entry : undefined;
}

/** Path of the orphan guard preloaded into every child (see orphan-guard.ts). */
export function orphanGuardPath(): string {
  return join(distRoot, 'emulator', 'agent', 'orphan-guard.js');
}
