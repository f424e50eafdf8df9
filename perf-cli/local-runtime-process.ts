import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { RuntimeReadyInfo } from '../emulator/index.js';
import { EdgePerfError, type Logger } from '../modules/common/index.js';
import type { ControlReply, ControlRequest } from './emulator-control.js';

const here = dirname(fileURLToPath(import.meta.url));
const root =
  [resolve(here, '..'), resolve(here, '..', '..')].find((d) => existsSync(join(d, 'package.json'))) ?? here;

/** Options for {@link LocalRuntimeProcess}. */
export interface LocalRuntimeProcessOptions {
  /** `edgeperf emulator` arguments (manifest, state dir, ports, link model …). */
  readonly args: readonly string[];
  readonly logger: Logger;
  /** How long to wait for the ready line, ms. Default 60,000. */
  readonly readyTimeoutInMs?: number;
}

/**
 * The local runtime as a child process (`edgeperf emulator --json`), so `edgeperf local` talks to it
 * exactly as to Azure (printed connection strings) and can SIGKILL and restart it (fault drills).
 * Fault requests travel over the child's IPC channel.
 */
export class LocalRuntimeProcess {
  private child: ChildProcess | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, (r: ControlReply) => void>();
  /** Arguments of the next {@link start}; `edgeperf local` pins the ports after the first start. */
  args: readonly string[];

  constructor(private readonly options: LocalRuntimeProcessOptions) {
    this.args = options.args;
  }

  /** Starts the runtime; resolves with its ready line. */
  async start(): Promise<RuntimeReadyInfo & { stateDir: string }> {
    const main = join(root, 'dist', 'perf-cli', 'main.js');
    if (!existsSync(main)) throw new EdgePerfError('E_BUILD', `${main} is missing: run npm run build first`);
    const child = spawn(process.execPath, [main, 'emulator', '--json', ...this.args], {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn' },
    });
    this.child = child;
    child.on('message', (m: ControlReply) => {
      this.pending.get(m.id)?.(m);
      this.pending.delete(m.id);
    });
    const stderr: string[] = [];
    child.stderr?.on('data', (d: Buffer) => {
      stderr.push(d.toString());
      if (stderr.length > 50) stderr.shift();
    });
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    return new Promise((resolveReady, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new EdgePerfError('E_RUNTIME', `local runtime not ready in time: ${lastLine(stderr)}`));
      }, this.options.readyTimeoutInMs ?? 60_000);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(
          new EdgePerfError('E_RUNTIME', `local runtime exited (code ${code}): ${lastLine(stderr)}`, {
            exitCode: code === 2 ? 2 : 1,
          }),
        );
      });
      lines.once('line', (line) => {
        clearTimeout(timer);
        try {
          resolveReady(JSON.parse(line) as RuntimeReadyInfo & { stateDir: string });
        } catch {
          reject(
            new EdgePerfError('E_RUNTIME', `unexpected output from the local runtime: ${line.slice(0, 200)}`),
          );
        }
      });
    });
  }

  /** Sends a control request (fault injection); resolves with the reply. */
  control(
    req: ControlRequest extends infer R ? (R extends unknown ? Omit<R, 'id'> : never) : never,
  ): Promise<ControlReply> {
    const child = this.child;
    if (!child?.connected)
      return Promise.resolve({ id: 0, ok: false, detail: 'local runtime is not running' });
    const id = this.nextId++;
    return new Promise((res) => {
      this.pending.set(id, res);
      child.send({ ...req, id });
    });
  }

  /** SIGKILLs the runtime (fault drill); its modules die with it (orphan guard). */
  kill(): void {
    this.child?.removeAllListeners('exit');
    this.child?.kill('SIGKILL');
  }

  /** Graceful stop: SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs = 15_000): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.removeAllListeners('exit');
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(t);
  }
}

function lastLine(lines: string[]): string {
  const text = lines.join('').trim().split('\n').filter(Boolean);
  return (text.at(-1) ?? '').slice(0, 300);
}
