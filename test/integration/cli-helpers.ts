import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { freePort, relocatePorts } from '../../perf-cli/local-ports.js';
import { generateManifest } from '../../perf-cli/manifest/index.js';

/** The built CLI, as users run it (tests run after `npm run build`). */
export const CLI = resolve('dist/perf-cli/main.js');
const exec = promisify(execFile);

/** Runs `edgeperf ARGS`; never throws, returns the exit code and both streams. */
export async function edgeperf(
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [CLI, ...args], {
      env,
      maxBuffer: 64 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** The ready line `edgeperf emulator --json` prints. */
export interface ReadyLine {
  iothub: string;
  eventHubs: { builtin: string; asaOutput: string };
  edgeDeviceId: string;
  caFile: string;
  edgeHub: { metrics: string };
}

/**
 * The flags that point `run` or `sweep --target azure` at an emulator: the service connection
 * string, device, CA and metrics URL, plus the built-in endpoint unless `builtin` is false.
 */
export function hubArgs(ready: ReadyLine, { builtin = true }: { builtin?: boolean } = {}): string[] {
  return [
    '--iothub-connection-string',
    ready.iothub,
    ...(builtin ? ['--eventhub-connection-string', ready.eventHubs.builtin] : []),
    '--device-id',
    ready.edgeDeviceId,
    '--ca-file',
    ready.caFile,
    '--metrics-url',
    ready.edgeHub.metrics,
  ];
}

/**
 * Starts `edgeperf emulator --json` on ephemeral ports with the high-rate profile (broker and
 * module metrics moved to free ports) and resolves with its ready line. `cleanup` receives what
 * must run afterwards (kill the emulator, remove the state dir).
 */
export async function startEmulator(
  cleanup: (() => void)[],
): Promise<{ ready: ReadyLine; emulator: ChildProcess }> {
  const dir = mkdtempSync(join(tmpdir(), 'cli-emulator-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const manifest = generateManifest({
    profile: 'high-rate',
    ratePerSec: 1000,
    payloadLength: 512,
    target: 'local',
  });
  const ports: number[] = [];
  for (let i = 0; i < 4; i++) ports.push(await freePort());
  relocatePorts(manifest as unknown as Record<string, unknown>, () => ports.shift() ?? 0);
  const file = join(dir, 'deployment.json');
  writeFileSync(file, JSON.stringify(manifest));
  const emulator = spawn(
    process.execPath,
    [
      CLI,
      'emulator',
      '--json',
      '--manifest',
      file,
      '--state-dir',
      join(dir, 'state'),
      '--mqtt-port',
      '0',
      '--amqp-port',
      '0',
      '--metrics-port',
      '0',
      '--eventhubs-port',
      '0',
    ],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  cleanup.push(() => emulator.kill('SIGKILL'));
  const line = await new Promise<string>((res) =>
    createInterface({ input: emulator.stdout as NodeJS.ReadableStream }).once('line', res),
  );
  return { ready: JSON.parse(line) as ReadyLine, emulator };
}
