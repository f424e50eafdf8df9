import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { EdgePerfError } from '../modules/common/index.js';

/** Where Debian installs it; PATH is searched too. */
const CANDIDATES = ['/usr/sbin/mosquitto', '/usr/bin/mosquitto'];

/**
 * A Mosquitto source broker for `edgeperf local --source-broker mosquitto`: loopback only, with
 * persistence so a restart (the `restart-source-broker` fault) keeps sessions and queued messages,
 * and no inflight cap (the translator holds acks until edgeHub acks; a cap of 20 would cap batches).
 */
export class MosquittoBroker {
  private child: ChildProcess | undefined;

  constructor(
    private readonly dir: string,
    readonly port: number,
  ) {}

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const bin = CANDIDATES.find((c) => existsSync(c)) ?? 'mosquitto';
    mkdirSync(this.dir, { recursive: true });
    const conf = join(this.dir, 'mosquitto.conf');
    writeFileSync(
      conf,
      [
        `listener ${this.port} 127.0.0.1`,
        'allow_anonymous true',
        'persistence true',
        `persistence_location ${this.dir}/`,
        'autosave_interval 1',
        'max_inflight_messages 0',
        'max_queued_messages 0',
        'max_queued_bytes 0',
        'log_type error',
        '',
      ].join('\n'),
    );
    const child = spawn(bin, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    await new Promise<void>((resolve, reject) => {
      child.once('error', () =>
        reject(
          new EdgePerfError(
            'E_MOSQUITTO',
            'mosquitto not found: install it (apt-get install mosquitto) or use the embedded broker',
            { exitCode: 2 },
          ),
        ),
      );
      child.once('spawn', () => resolve());
    });
    const deadline = Date.now() + 10_000;
    while (!(await listening(this.port))) {
      if (Date.now() > deadline || child.exitCode !== null)
        throw new EdgePerfError('E_MOSQUITTO', `mosquitto did not listen on ${this.port}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Graceful restart: SIGTERM (Mosquitto saves its persistence file), then start again. */
  async restart(downMs = 1000): Promise<string> {
    await this.stop();
    await new Promise((r) => setTimeout(r, downMs));
    await this.start();
    return `mosquitto restarted (down ${downMs} ms)`;
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  }
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
