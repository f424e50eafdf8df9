import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Command, CommanderError } from 'commander';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseDeployment } from '../../emulator/agent/manifest.js';
import { buildProgram } from '../../perf-cli/program.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'edgeperf-manifest-cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
afterEach(() => {
  vi.restoreAllMocks();
  process.exitCode = undefined;
});

/** Runs `edgeperf ...args` in-process; commander errors are thrown, not exits. */
async function run(
  ...args: string[]
): Promise<{ out: string; err: string; exitCode: number; error?: CommanderError }> {
  let out = '';
  let err = '';
  const program = buildProgram();
  // exitOverride/configureOutput are not inherited by commands added before they are set.
  const apply = (c: Command): void => {
    c.exitOverride().configureOutput({
      writeOut: (s) => {
        out += s;
      },
      writeErr: (s) => {
        err += s;
      },
    });
    for (const sub of c.commands) apply(sub);
  };
  apply(program);
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  });
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    err += String(chunk);
    return true;
  });
  try {
    await program.parseAsync(['node', 'edgeperf', ...args]);
  } catch (e) {
    if (!(e instanceof CommanderError)) throw e;
    return { out, err, exitCode: 2, error: e };
  } finally {
    vi.restoreAllMocks();
  }
  const code = process.exitCode ?? 0;
  process.exitCode = undefined;
  return { out, err, exitCode: typeof code === 'number' ? code : Number(code) };
}

describe('edgeperf manifest', () => {
  it('writes a manifest the local runtime accepts and prints the decisions', async () => {
    const file = join(dir, 'deployment.json');
    const r = await run(
      'manifest',
      '--profile',
      'high-rate',
      '--rate',
      '2000',
      '--payload-length',
      '1024',
      '--disk-gb',
      '32',
      '-o',
      file,
    );
    expect(r.exitCode).toBe(0);
    expect(r.out).toMatch(/profile high-rate: 2000 msg\/s × 1024 B, disk 32 GB/);
    expect(r.out).toMatch(/MaxUpstreamBatchSize 1\b/);
    const json = JSON.parse(await readFile(file, 'utf8'));
    expect(parseDeployment(json).modules.map((m) => m.name)).toEqual(['translator', 'simulator']);
  });

  it('prints {report, manifest} with --json and no -o, honouring --set, --registry and --tag', async () => {
    const r = await run(
      'manifest',
      '--profile',
      'baseline',
      '--registry',
      'myacr.azurecr.io',
      '--tag',
      '1.0.0',
      '--set',
      '$edgeHub.env.MaxUpstreamBatchSize=50',
      '--set',
      'translator.env.BatchMaxBytes=200000',
      '--json',
    );
    expect(r.exitCode).toBe(0);
    const { report, manifest } = JSON.parse(r.out);
    expect(report.profile).toBe('baseline');
    const agent = manifest.modulesContent.$edgeAgent['properties.desired'];
    expect(agent.systemModules.edgeHub.env.MaxUpstreamBatchSize.value).toBe('50');
    expect(agent.modules.translator.env.BatchMaxBytes.value).toBe('200000');
    expect(agent.modules.translator.settings.image).toBe('myacr.azurecr.io/translator:1.0.0');
  });

  it.each([
    [
      ['--profile', 'fast'],
      /--profile.*'fast' is invalid\. Allowed choices are baseline, high-rate, offline-tolerant, multi-module/,
    ],
    [['--rate', 'lots'], /--rate <msg\/s>.*must be a number from 0\.001 to 1000000/],
    [['--payload-length', '300000'], /--payload-length.*must be an integer from 1 to 262144/],
    [['--target', 'cloud'], /--target.*Allowed choices are local, device/],
    [['--set', 'novalue'], /--set.*expected TARGET\.PATH=VALUE/],
    [['--tag', 'bad tag'], /--tag.*must be a tag/],
  ])('rejects %j naming the flag and what is allowed', async (args, message) => {
    const r = await run('manifest', ...args);
    expect(r.exitCode).toBe(2);
    expect(r.error?.code).toBe('commander.invalidArgument');
    expect(r.err.split('\n')[0]).toMatch(message);
  });

  it('a TTL the disk cannot hold is one line and exit 2', async () => {
    const r = await run('manifest', '--profile', 'offline-tolerant', '--rate', '2000', '--disk-gb', '32');
    expect(r.exitCode).toBe(2);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toMatch(
      /^edgeperf: invalid manifest options: profile offline-tolerant timeToLiveSecs: 86400 s/,
    );
  });
});

describe('edgeperf lint', () => {
  it('exit 0 on a clean manifest, --json prints one object', async () => {
    const file = join(dir, 'clean.json');
    await run('manifest', '--profile', 'high-rate', '-o', file);
    const r = await run('lint', file, '--disk-gb', '32', '--json');
    expect(r.exitCode).toBe(0);
    const result = JSON.parse(r.out);
    expect(result).toMatchObject({ file, exitCode: 0, errors: 0, warnings: 0, findings: [] });
  });

  it('warnings exit 0, or 1 with --strict; the table names rule, pointer and fix', async () => {
    const file = join(dir, 'baseline.json');
    await run('manifest', '--profile', 'baseline', '-o', file);
    const lax = await run('lint', file);
    expect(lax.exitCode).toBe(0);
    expect(lax.out).toMatch(/storage-not-bound/);
    expect(lax.out).toMatch(
      /\/modulesContent\/\$edgeAgent\/properties\.desired\/systemModules\/edgeHub\/env/,
    );
    expect(lax.out).toMatch(/fix: set \$edgeHub env MaxUpstreamBatchSize=256/);
    expect(lax.out).toMatch(/0 error\(s\), 3 warning\(s\)/);
    const strict = await run('lint', file, '--strict');
    expect(strict.exitCode).toBe(1);
  });

  it('errors exit 2', async () => {
    const file = join(dir, 'small-disk.json');
    await run('manifest', '--profile', 'high-rate', '--disk-gb', '32', '-o', file);
    const r = await run('lint', file, '--disk-gb', '8', '--json');
    expect(r.exitCode).toBe(2);
    expect(JSON.parse(r.out).findings[0]).toMatchObject({ rule: 'disk-overflow', severity: 'error' });
  });

  it('lints the template (placeholders resolved, createOptions objects allowed)', async () => {
    const r = await run('lint', join(repoRoot, 'deployment', 'deployment.template.json'), '--json');
    expect(JSON.parse(r.out).errors).toBe(0);
  });

  it('a missing or non-JSON file is one line and exit 2', async () => {
    const missing = await run('lint', join(dir, 'nope.json'));
    expect(missing.exitCode).toBe(2);
    expect(missing.err).toMatch(/^edgeperf: manifest .*nope\.json: cannot read/);
    const bad = join(dir, 'bad.json');
    await writeFile(bad, '{ not json');
    const r = await run('lint', bad);
    expect(r.exitCode).toBe(2);
    expect(r.err).toMatch(/not valid JSON/);
  });

  it('rejects a bad --disk-gb naming the flag', async () => {
    const r = await run('lint', 'x.json', '--disk-gb', '-3');
    expect(r.exitCode).toBe(2);
    expect(r.err).toMatch(/--disk-gb <GB>.*must be a number from 0\.001/);
  });
});

describe('edgeperf size', () => {
  it('prints the blog figures and the longest TTL for a disk', async () => {
    const r = await run(
      'size',
      '--rate',
      '2000',
      '--payload-length',
      '1024',
      '--ttl-secs',
      '7200',
      '--disk-gb',
      '32',
    );
    expect(r.exitCode).toBe(0);
    expect(r.out).toMatch(/payload \(rule of #835\)\s*│ 14\.7 GB \(13\.7 GiB\)/);
    expect(r.out).toMatch(/longest TTL that fits\s*│ 10000 s/);
    expect(r.out).toMatch(/GB = 10\^9 bytes, GiB = 2\^30 bytes/);
  });

  it('--json prints one object', async () => {
    const r = await run('size', '--rate', '100', '--json');
    const s = JSON.parse(r.out);
    expect(s.payloadBytes).toBe(100 * 1024 * 7200);
    expect(s.ttlSecs).toBe(7200);
  });

  it.each([
    [[], /required option '--rate <msg\/s>' not specified/],
    [['--rate', '-5'], /--rate <msg\/s>.*must be a number from 0 to 1000000/],
    [['--rate', '10', '--queues', '0'], /--queues <n>.*must be an integer from 1 to 100/],
    [['--rate', '10', '--ttl-secs', '1.5'], /--ttl-secs <s>.*must be an integer from 0 to 4294967295/],
  ])('rejects %j', async (args, message) => {
    const r = await run('size', ...args);
    expect(r.exitCode).toBe(2);
    expect(r.err.split('\n')[0]).toMatch(message);
  });

  it('help lists every flag with units and defaults', async () => {
    const r = await run('size', '--help');
    expect(r.error?.code).toBe('commander.helpDisplayed');
    expect(r.out).toMatch(/--payload-length <bytes>\s+bytes per source message, 1–262144 \(default: 1024\)/);
    expect(r.out).toMatch(/--ttl-secs <s>\s+time to live in seconds[\s\S]*?\(default:\s+7200\)/);
  });
});
