import { type ChildProcess, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../../modules/common/index.js';
import { orphanGuardPath } from './image-map.js';
import type { ModuleSpec } from './manifest.js';

/** What the supervisor needs to start one module process. */
export interface ModuleProcessSpec {
  readonly spec: ModuleSpec;
  /** Absolute path of the module's `main.js`. */
  readonly entryPoint: string;
  /** Env the module's image sets (its Dockerfile's ENV); the manifest's env overrides it. */
  readonly imageEnv?: Readonly<Record<string, string>>;
  /** Env on top of the manifest's: `EdgeHubConnectionString`, `EdgeModuleCACertificateFile`, … */
  readonly runtimeEnv: Readonly<Record<string, string>>;
}

/** Options for {@link ModuleSupervisor}. */
export interface ModuleSupervisorOptions {
  /** Folder for `<module>.log` files (stdout and stderr of each module, appended). */
  readonly logDir: string;
  readonly logger: Logger;
  /** First restart delay; doubles per consecutive failure up to 30 s, like edgeAgent's backoff. Default 1000. */
  readonly restartBaseDelayInMs?: number;
  /** Time between SIGTERM and SIGKILL on stop. Default 5000. */
  readonly stopGraceInMs?: number;
}

/** State of one supervised module, as `getStats`/status reports show it. */
export type ModuleState =
  | { readonly kind: 'running'; readonly pid: number; readonly since: number; readonly restarts: number }
  | { readonly kind: 'backoff'; readonly restarts: number; readonly lastExit: string }
  | { readonly kind: 'stopped'; readonly restarts: number; readonly lastExit?: string };

interface Events {
  started: [name: string, pid: number];
  exited: [name: string, code: number | null, signal: NodeJS.Signals | null];
}

interface Entry {
  proc: ModuleProcessSpec;
  child?: ChildProcess;
  log: WriteStream;
  restarts: number;
  wanted: boolean;
  timer?: NodeJS.Timeout;
  lastExit?: string;
  startedAt: number;
}

/**
 * Runs modules as child processes, honouring `status` and `restartPolicy` from the manifest.
 * Children get the orphan guard preloaded, so none outlives a killed runtime.
 */
export class ModuleSupervisor extends EventEmitter<Events> {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly options: ModuleSupervisorOptions) {
    super();
  }

  /** Starts (or restarts with a new spec) one module. A `stopped` module is recorded, not started. */
  async run(proc: ModuleProcessSpec): Promise<void> {
    const existing = this.entries.get(proc.spec.name);
    if (existing) await this.stopOne(proc.spec.name);
    mkdirSync(this.options.logDir, { recursive: true });
    const entry: Entry = {
      proc,
      log: createWriteStream(join(this.options.logDir, `${proc.spec.name}.log`), { flags: 'a' }),
      restarts: existing?.restarts ?? 0,
      wanted: proc.spec.status === 'running',
      startedAt: 0,
    };
    this.entries.set(proc.spec.name, entry);
    if (entry.wanted) this.spawn(entry);
  }

  /** Sends a signal to a running module (fault injection: `SIGKILL`); the restart policy then applies. */
  kill(name: string, signal: NodeJS.Signals = 'SIGKILL'): boolean {
    const child = this.entries.get(name)?.child;
    if (!child || child.exitCode !== null) return false;
    return child.kill(signal);
  }

  /** Current state of each known module. */
  states(): Record<string, ModuleState> {
    const out: Record<string, ModuleState> = {};
    for (const [name, e] of this.entries) {
      if (e.child && e.child.exitCode === null && e.child.signalCode === null && e.child.pid !== undefined) {
        out[name] = { kind: 'running', pid: e.child.pid, since: e.startedAt, restarts: e.restarts };
      } else if (e.wanted && e.timer) {
        out[name] = { kind: 'backoff', restarts: e.restarts, lastExit: e.lastExit ?? '' };
      } else {
        out[name] = {
          kind: 'stopped',
          restarts: e.restarts,
          ...(e.lastExit ? { lastExit: e.lastExit } : {}),
        };
      }
    }
    return out;
  }

  /** Path of a module's log file. */
  logFile(name: string): string {
    return join(this.options.logDir, `${name}.log`);
  }

  /** Stops one module: SIGTERM, then SIGKILL after the grace period. */
  async stopOne(name: string): Promise<void> {
    const e = this.entries.get(name);
    if (!e) return;
    e.wanted = false;
    if (e.timer) clearTimeout(e.timer);
    const child = e.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((res) => child.once('exit', () => res()));
      child.kill('SIGTERM');
      const grace = setTimeout(() => child.kill('SIGKILL'), this.options.stopGraceInMs ?? 5000);
      await exited;
      clearTimeout(grace);
    }
    await new Promise<void>((res) => e.log.end(() => res()));
    this.entries.delete(name);
  }

  /** Stops every module (used on runtime shutdown). */
  async stopAll(): Promise<void> {
    await Promise.all([...this.entries.keys()].map((n) => this.stopOne(n)));
  }

  private spawn(e: Entry): void {
    const { spec, entryPoint, runtimeEnv, imageEnv = {} } = e.proc;
    const child = spawn(process.execPath, ['--import', orphanGuardPath(), entryPoint], {
      env: { ...process.env, ...imageEnv, ...spec.env, ...runtimeEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    e.child = child;
    e.startedAt = Date.now();
    child.stdout?.pipe(e.log, { end: false });
    child.stderr?.pipe(e.log, { end: false });
    child.once('spawn', () => {
      this.options.logger.info({ module: spec.name, pid: child.pid }, 'module started');
      if (child.pid !== undefined) this.emit('started', spec.name, child.pid);
    });
    child.once('error', (err) =>
      this.options.logger.error({ module: spec.name, err: err.message }, 'module failed to start'),
    );
    child.once('exit', (code, signal) => {
      e.lastExit = signal ? `signal ${signal}` : `code ${code}`;
      this.emit('exited', spec.name, code, signal);
      if (!e.wanted || e.child !== child) return;
      const failed = signal !== null || code !== 0;
      const restart = spec.restartPolicy === 'always' || (failed && spec.restartPolicy !== 'never');
      this.options.logger.warn({ module: spec.name, exit: e.lastExit, restart }, 'module exited');
      if (!restart) return;
      const delay = Math.min(
        30_000,
        (this.options.restartBaseDelayInMs ?? 1000) * 2 ** Math.min(e.restarts, 5),
      );
      e.restarts += 1;
      e.timer = setTimeout(() => {
        e.timer = undefined;
        if (e.wanted) this.spawn(e);
      }, delay);
    });
  }
}
