import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

// Every bash script under scripts/ (and the test fakes standing in for az and edgeperf) must be
// shellcheck-clean. .ci/run installs shellcheck from Debian; without it the test says so and skips.
const repo = resolve(import.meta.dirname, '../..');
const files = [
  'scripts/provision-azure.sh',
  'scripts/setup-edge-device.sh',
  'test/fixtures/scripts/fake-az',
  'test/fixtures/scripts/fake-edgeperf',
  'test/fixtures/scripts/edgeperf-tsx',
  'test/fixtures/scripts/trap-command',
];

const installed = spawnSync('shellcheck', ['--version'], { encoding: 'utf8' }).status === 0;
if (!installed) {
  console.warn('scripts-shellcheck: shellcheck is not installed (apt-get install -y shellcheck); skipping');
}

describe.skipIf(!installed)('shellcheck', () => {
  it.each(files)('%s has no findings', (rel) => {
    const file = join(repo, rel);
    const r = spawnSync('shellcheck', ['--shell=bash', '--severity=style', '--external-sources', file], {
      encoding: 'utf8',
    });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});
