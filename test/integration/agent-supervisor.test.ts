import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ModuleSpec } from '../../emulator/agent/manifest.js';
import { ModuleSupervisor } from '../../emulator/agent/supervisor.js';
import { createLogger } from '../../modules/common/index.js';

const sleeper = resolve('test/fixtures/sleeper.mjs');
const logger = createLogger('test', { level: 'silent', pretty: false });

function spec(
  name: string,
  restartPolicy: ModuleSpec['restartPolicy'],
  status: ModuleSpec['status'] = 'running',
): ModuleSpec {
  return {
    name,
    image: `edgeperf/${name}:local`,
    status,
    restartPolicy,
    startupOrder: 0,
    env: { MARKER: name },
    desired: {},
  };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

function startedLines(logDir: string): number {
  if (!existsSync(join(logDir, 'a.log'))) return 0;
  return (readFileSync(join(logDir, 'a.log'), 'utf8').match(/started a/g) ?? []).length;
}

let sup: ModuleSupervisor | undefined;
afterEach(async () => {
  await sup?.stopAll();
});

describe('module supervisor', () => {
  it('starts a module with its image’s env, which the manifest’s env overrides', async () => {
    const logDir = mkdtempSync(join(tmpdir(), 'sup-'));
    sup = new ModuleSupervisor({ logDir, logger });
    await sup.run({
      spec: spec('o', 'always'),
      entryPoint: sleeper,
      imageEnv: { NODE_OPTIONS: '--max-semi-space-size=4', MARKER: 'from-image' },
      runtimeEnv: {},
    });
    await until(() => sup?.states().o?.kind === 'running');
    const state = sup.states().o;
    if (state?.kind !== 'running') throw new Error('not running');
    const env = readFileSync(`/proc/${state.pid}/environ`, 'utf8').split('\0');
    expect(env).toContain('NODE_OPTIONS=--max-semi-space-size=4');
    // spec() sets MARKER in the manifest env.
    expect(env).toContain('MARKER=o');
  });

  it('restarts a killed module under restartPolicy always, keeps its log, and stops it cleanly', async () => {
    const logDir = mkdtempSync(join(tmpdir(), 'sup-'));
    sup = new ModuleSupervisor({ logDir, logger, restartBaseDelayInMs: 50 });
    await sup.run({ spec: spec('a', 'always'), entryPoint: sleeper, runtimeEnv: {} });
    await until(() => sup?.states().a?.kind === 'running');
    await until(() => startedLines(logDir) === 1);
    const first = sup.states().a;
    if (first?.kind !== 'running') throw new Error('not running');
    expect(sup.kill('a')).toBe(true);
    await until(() => {
      const s = sup?.states().a;
      return s?.kind === 'running' && s.pid !== first.pid;
    });
    expect(sup.states().a?.restarts).toBe(1);
    await until(() => startedLines(logDir) === 2);
    const second = sup.states().a;
    await sup.stopAll();
    if (second?.kind === 'running') expect(alive(second.pid)).toBe(false);
  });

  it('does not restart under never, and does not start a stopped module', async () => {
    sup = new ModuleSupervisor({
      logDir: mkdtempSync(join(tmpdir(), 'sup-')),
      logger,
      restartBaseDelayInMs: 50,
    });
    await sup.run({ spec: spec('n', 'never'), entryPoint: sleeper, runtimeEnv: {} });
    await sup.run({ spec: spec('s', 'always', 'stopped'), entryPoint: sleeper, runtimeEnv: {} });
    await until(() => sup?.states().n?.kind === 'running');
    sup.kill('n');
    await until(() => sup?.states().n?.kind === 'stopped');
    await new Promise((r) => setTimeout(r, 300));
    expect(sup.states().n?.kind).toBe('stopped');
    expect(sup.states().s?.kind).toBe('stopped');
  });

  it('leaves no orphan when the runtime process is SIGKILLed', async () => {
    // A parent that supervises one module, then gets SIGKILLed: the orphan guard must end the child.
    const script = `
      import { ModuleSupervisor } from ${JSON.stringify(resolve('dist/emulator/agent/supervisor.js'))};
      import { createLogger } from ${JSON.stringify(resolve('dist/modules/common/index.js'))};
      const sup = new ModuleSupervisor({ logDir: ${JSON.stringify(mkdtempSync(join(tmpdir(), 'sup-')))}, logger: createLogger('t', { level: 'silent', pretty: false }) });
      sup.on('started', (_n, pid) => process.stdout.write(pid + '\\n'));
      await sup.run({ spec: ${JSON.stringify(spec('o', 'always'))}, entryPoint: ${JSON.stringify(sleeper)}, runtimeEnv: {} });
      setInterval(() => {}, 1000);
    `;
    const parent = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const childPid = await new Promise<number>((res) =>
      parent.stdout.once('data', (d: Buffer) => res(Number(d.toString().trim()))),
    );
    expect(alive(childPid)).toBe(true);
    parent.kill('SIGKILL');
    await until(() => !alive(childPid), 5000);
  });
});
