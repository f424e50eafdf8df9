import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EdgePerfError } from '../modules/common/index.js';

// From dist/perf-cli or perf-cli (tests), the repository root is two levels up at most.
const here = dirname(fileURLToPath(import.meta.url));
const root =
  [resolve(here, '..'), resolve(here, '..', '..')].find((d) => existsSync(join(d, 'package.json'))) ??
  resolve(here, '..');

/** The manifest `edgeperf local` and `edgeperf emulator` run when none is given. */
export function defaultManifestPath(): string {
  const candidates = [join(root, 'deployment', 'local.deployment.json')];
  const found = candidates.find((c) => existsSync(c));
  if (found === undefined) {
    throw new EdgePerfError('E_MANIFEST', `no default manifest at ${candidates[0]}; pass --manifest FILE`, {
      exitCode: 2,
    });
  }
  return found;
}
