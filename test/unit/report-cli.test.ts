import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Command, CommanderError } from 'commander';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildProgram } from '../../perf-cli/program.js';
import { sampleRun, sampleSweep } from './report-fixtures.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'edgeperf-report-cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
afterEach(() => {
  vi.restoreAllMocks();
  process.exitCode = undefined;
});

/** Runs `edgeperf ...args` in-process; commander errors are thrown, not exits. */
async function run(...args: string[]): Promise<{ out: string; err: string; exitCode: number }> {
  let out = '';
  let err = '';
  const program = buildProgram();
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
    return { out, err, exitCode: 2 };
  } finally {
    vi.restoreAllMocks();
  }
  const code = process.exitCode ?? 0;
  process.exitCode = undefined;
  return { out, err, exitCode: Number(code) };
}

describe('edgeperf report', () => {
  it('writes a page for a run summary with -o', async () => {
    const input = join(dir, 'results.json');
    await writeFile(input, JSON.stringify(sampleRun()));
    const output = join(dir, 'out.html');
    const r = await run('report', input, '-o', output, '--title', 'Lab <1>');
    expect(r.exitCode).toBe(0);
    expect(r.out).toContain(`report written to ${output}`);
    const html = await readFile(output, 'utf8');
    expect(html).toContain('<title>Lab &lt;1&gt;</title>');
    expect(html).toContain('data-chart="run-rate"');
  });

  it('defaults the output to the input name with .html, for a sweep', async () => {
    const input = join(dir, 'sweep.json');
    await writeFile(input, JSON.stringify(sampleSweep()));
    const r = await run('report', input);
    expect(r.exitCode).toBe(0);
    expect(await readFile(join(dir, 'sweep.html'), 'utf8')).toContain(
      'data-chart="sweep-payloadLength-rate"',
    );
  });

  it('a bad file exits 2 with one line naming it and what was expected', async () => {
    const notJson = join(dir, 'bad.json');
    await writeFile(notJson, 'hello');
    const wrong = join(dir, 'wrong.json');
    await writeFile(wrong, JSON.stringify({ kind: 'sweep', axes: 'x' }));
    for (const [file, re] of [
      [notJson, /not JSON/],
      [
        wrong,
        /expected the --json summary of edgeperf local\/run, an array of them, or an edgeperf sweep result; at axes/,
      ],
      [join(dir, 'missing.json'), /cannot read \(ENOENT\)/],
    ] as const) {
      const r = await run('report', file, '-o', join(dir, 'never.html'));
      expect(r.exitCode).toBe(2);
      expect(r.err.trim().split('\n')).toHaveLength(1);
      expect(r.err).toContain(`edgeperf: ${file}: `);
      expect(r.err).toMatch(re);
    }
    await expect(readFile(join(dir, 'never.html'))).rejects.toThrow();
  });

  it('an unwritable output exits 2 naming it', async () => {
    const input = join(dir, 'ok.json');
    await writeFile(input, JSON.stringify([sampleRun()]));
    const r = await run('report', input, '-o', join(dir, 'no-such-dir', 'r.html'));
    expect(r.exitCode).toBe(2);
    expect(r.err).toMatch(/report .*r\.html: cannot write \(ENOENT\)/);
  });
});
