import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

// scripts/setup-edge-device.sh, run with --dry-run against fixtures: exact apt / iotedge command
// lines, the disk check (edgeperf size or the bash fallback) and argument errors.
const repo = resolve(import.meta.dirname, '../..');
const script = join(repo, 'scripts/setup-edge-device.sh');
const fixtures = join(repo, 'test/fixtures/scripts');
const KEY = 'c2VjcmV0LWtleS1mb3ItdGVzdHM=';
const CS = `HostName=perf-hub.azure-devices.net;DeviceId=dev-1;SharedAccessKey=${KEY}`;

let tmp: string;
let bin: string;
let trapLog: string;
let edgeperfLog: string;

beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'edgeperf-setup-'));
  bin = join(tmp, 'bin');
  mkdirSync(bin);
  trapLog = join(tmp, 'trap.log');
  edgeperfLog = join(tmp, 'edgeperf.log');
  writeFileSync(trapLog, '');
  writeFileSync(edgeperfLog, '');
  // Nothing that installs, configures or reaches the network may run in a dry run.
  for (const cmd of [
    'apt-get',
    'curl',
    'wget',
    'dpkg',
    'iotedge',
    'systemctl',
    'chown',
    'chmod',
    'install',
  ]) {
    onPath(cmd, 'trap-command');
  }
});

afterEach(() => {
  rmSync(tmp, { recursive: true, force: true });
});

function onPath(name: string, fixture: string): void {
  const file = join(bin, name);
  writeFileSync(file, `#!/usr/bin/env bash\nexec bash ${JSON.stringify(join(fixtures, fixture))} "$@"\n`);
  chmodSync(file, 0o755);
}

function run(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync('bash', [script, ...args], {
    encoding: 'utf8',
    env: {
      ...process.env,
      PATH: `${bin}:${process.env.PATH ?? ''}`,
      TRAP_LOG: trapLog,
      FAKE_EDGEPERF_LOG: edgeperfLog,
      EDGEPERF_DEVICE_CONNECTION_STRING: '',
      ...env,
    },
    timeout: 25_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, lines: r.stdout.split('\n').filter(Boolean) };
}

function dryRun(extra: string[], env: Record<string, string> = {}) {
  const storage = join(tmp, 'storage', 'edgeHub');
  const r = run(
    [
      '--dry-run',
      '--connection-string',
      CS,
      '--os-release',
      join(fixtures, 'os-release-ubuntu-22.04'),
      '--storage-dir',
      storage,
      '--config-file',
      '/etc/aziot/config.toml',
      ...extra,
    ],
    env,
  );
  return { ...r, storage };
}

describe('setup-edge-device.sh --dry-run', () => {
  it('prints the apt, configuration and iotedge commands for Ubuntu 22.04, key redacted', () => {
    const r = dryRun(['--edgeperf', 'no-such-edgeperf', '--edge-version', '1.5.13-1']);
    expect(r.stderr).not.toMatch(/error|failed/i);
    expect(r.code).toBe(0);
    expect(readFileSync(trapLog, 'utf8')).toBe('');
    expect(r.lines).toEqual([
      'apt-get update',
      'apt-get install -y --no-install-recommends curl ca-certificates',
      'curl -fsSL -o /tmp/packages-microsoft-prod.deb https://packages.microsoft.com/config/ubuntu/22.04/packages-microsoft-prod.deb',
      'dpkg -i /tmp/packages-microsoft-prod.deb',
      'rm -f /tmp/packages-microsoft-prod.deb',
      'apt-get update',
      'apt-get install -y moby-engine',
      "install -m 644 /dev/stdin /etc/docker/daemon.json <<'EOF'",
      '{ "log-driver": "local" }',
      'EOF',
      'systemctl restart docker',
      'apt-get install -y aziot-edge=1.5.13-1',
      "install -m 600 /dev/stdin /etc/aziot/config.toml <<'EOF'",
      '# Written by setup-edge-device.sh: manual provisioning with a device connection string.',
      '[provisioning]',
      'source = "manual"',
      'connection_string = "HostName=perf-hub.azure-devices.net;DeviceId=dev-1;SharedAccessKey=<redacted>"',
      'EOF',
      `mkdir -p ${r.storage}`,
      `chown 1000 ${r.storage}`,
      `chmod 700 ${r.storage}`,
      'iotedge config apply -c /etc/aziot/config.toml',
    ]);
    // The key never appears, on stdout or stderr.
    expect(r.stdout + r.stderr).not.toContain(KEY);
  });

  it('uses the Debian 12 repository and skips moby with --no-moby', () => {
    const r = run(
      [
        '--dry-run',
        '--no-moby',
        '--os-release',
        join(fixtures, 'os-release-debian-12'),
        '--storage-dir',
        join(tmp, 's'),
        '--edgeperf',
        'no-such-edgeperf',
        '--rate',
        '1',
        '--ttl-secs',
        '1',
      ],
      { EDGEPERF_DEVICE_CONNECTION_STRING: CS },
    );
    expect(r.code).toBe(0);
    expect(r.lines).toContain(
      'curl -fsSL -o /tmp/packages-microsoft-prod.deb https://packages.microsoft.com/config/debian/12/packages-microsoft-prod.deb',
    );
    expect(r.stdout).not.toContain('moby-engine');
    expect(r.lines).toContain('apt-get install -y aziot-edge');
  });

  it('sizes the queue with edgeperf size --json and the given flags', () => {
    onPath('edgeperf', 'fake-edgeperf');
    const r = dryRun(
      [
        '--rate',
        '2000',
        '--payload-length',
        '512',
        '--ttl-secs',
        '600',
        '--queues',
        '2',
        '--records-per-message',
        '50',
      ],
      { FAKE_EDGEPERF_DISK_BYTES: '1234567' },
    );
    expect(r.code).toBe(0);
    expect(readFileSync(edgeperfLog, 'utf8').trim()).toBe(
      'size --rate 2000 --payload-length 512 --ttl-secs 600 --queues 2 --records-per-message 50 --overhead-bytes 256 --json',
    );
    expect(r.lines[0]).toBe(
      'edgeperf size --rate 2000 --payload-length 512 --ttl-secs 600 --queues 2 --records-per-message 50 --overhead-bytes 256 --json',
    );
    expect(r.stderr).toContain('queue worst case 0.00 GB (edgeperf size');
  });

  it('stops before installing anything when the disk cannot hold the queue', () => {
    onPath('edgeperf', 'fake-edgeperf');
    const r = dryRun([], { FAKE_EDGEPERF_DISK_BYTES: '9.9e+20' });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/has [\d.]+ GB free but the queue needs 990000000000\.00 GB/);
    expect(r.stdout).not.toContain('apt-get');
  });

  it('--skip-disk-check only warns', () => {
    onPath('edgeperf', 'fake-edgeperf');
    const r = dryRun(['--skip-disk-check'], { FAKE_EDGEPERF_DISK_BYTES: '9.9e+20' });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('warning: the disk of');
    expect(r.stdout).toContain('apt-get install -y aziot-edge');
  });

  it('takes the TTL from a manifest: its largest timeToLiveSecs', () => {
    onPath('edgeperf', 'fake-edgeperf');
    const r = dryRun(['--manifest', join(fixtures, 'manifest-ttl.json')], { FAKE_EDGEPERF_DISK_BYTES: '1' });
    expect(r.code).toBe(0);
    expect(readFileSync(edgeperfLog, 'utf8')).toContain('--ttl-secs 3600 ');
  });

  it('computes the same worst case in bash as the real edgeperf size', () => {
    const args = ['--rate', '1500.5', '--payload-length', '700', '--ttl-secs', '3600', '--queues', '2'];
    const real = dryRun([...args, '--edgeperf', join(fixtures, 'edgeperf-tsx')]);
    expect(real.code, real.stderr).toBe(0);
    const fallback = dryRun([...args, '--edgeperf', 'no-such-edgeperf']);
    expect(fallback.code).toBe(0);
    const worst = (stderr: string) => /queue worst case ([\d.]+ GB)/.exec(stderr)?.[1];
    expect(worst(real.stderr)).toBeDefined();
    expect(worst(fallback.stderr)).toBe(worst(real.stderr));
    expect(real.stderr).toContain('(edgeperf size:');
    expect(fallback.stderr).toContain('(rate x (payload + overhead/records) x TTL x queues:');
  }, 30_000);
});

describe('setup-edge-device.sh arguments', () => {
  it.each([
    [[], '--connection-string is required (or set EDGEPERF_DEVICE_CONNECTION_STRING)'],
    [['--connection-string', 'HostName=h;DeviceId=d'], '--connection-string is not valid'],
    [
      ['--connection-string', `HostName=h;DeviceId=d;ModuleId=m;SharedAccessKey=${KEY}`],
      '--connection-string is not valid',
    ],
    [['--connection-string', CS, '--rate', 'fast'], "--rate 'fast' is not valid: a number from 0 to 1000000"],
    [['--connection-string', CS, '--payload-length', '0'], "--payload-length '0' is not valid"],
    [
      ['--connection-string', CS, '--storage-dir', 'relative/dir'],
      "--storage-dir 'relative/dir' is not valid",
    ],
    [['--connection-string', CS, '--ttl-secs'], '--ttl-secs needs a value'],
    [['--connection-string', CS, '--reboot'], "unknown argument '--reboot'"],
  ])('rejects %j with one line and exit 2', (args, message) => {
    const r = run(['--dry-run', ...args]);
    expect(r.code).toBe(2);
    const lines = r.stderr.split('\n').filter(Boolean);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(message);
    expect(lines[0]).toMatch(/^setup-edge-device\.sh: .*\(run with --help for usage\)$/);
    expect(r.stderr).not.toContain(KEY);
  });

  it('refuses an unsupported OS with one line', () => {
    const r = run([
      '--dry-run',
      '--connection-string',
      CS,
      '--os-release',
      join(fixtures, 'os-release-centos-9'),
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(
      "setup-edge-device.sh: unsupported OS 'centos 9': setup-edge-device.sh supports ubuntu 20.04, 22.04, 24.04; debian 11, 12",
    );
  });

  it('prints --help with every flag and its default', () => {
    const r = run(['--help']);
    expect(r.code).toBe(0);
    for (const flag of [
      '--connection-string',
      '--edge-version',
      '--no-moby',
      '--storage-dir',
      '--rate',
      '--payload-length',
      '--ttl-secs',
      '--queues',
      '--records-per-message',
      '--overhead-bytes',
      '--manifest',
      '--edgeperf',
      '--skip-disk-check',
      '--config-file',
      '--os-release',
      '--dry-run',
    ]) {
      expect(r.stdout).toContain(flag);
    }
    expect(r.stdout).toContain('(default: /etc/iotedge/storage)');
  });
});
