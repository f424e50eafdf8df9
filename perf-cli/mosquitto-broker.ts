import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { EdgePerfError } from '../modules/common/index.js';
import { freePort } from './local-ports.js';

/** Where Debian installs it; PATH is searched too. */
const CANDIDATES = ['/usr/sbin/mosquitto', '/usr/bin/mosquitto'];

/** Options for {@link MosquittoBroker}. */
export interface MosquittoBrokerOptions {
  /**
   * Save sessions and queued messages to disk (every second and on SIGTERM), so a restart keeps
   * them. Default true; the bench turns it off, as a field broker tuned for rate would.
   */
  readonly persistence?: boolean;
  /**
   * QoS 1 messages sent to one client and not yet acknowledged; 0 (the default) = no cap. The
   * translator holds acks until edgeHub acks, so a cap below the batch size caps the batch.
   */
  readonly maxInflightMessages?: number;
  /** Publish `$SYS` topics (stored-message counts, …) every this many seconds; default off. */
  readonly sysIntervalSecs?: number;
}

/**
 * A Mosquitto source broker for `edgeperf local --source-broker mosquitto` and the bench: loopback
 * only, no inflight cap (the translator holds acks until edgeHub acks; Mosquitto's default cap of
 * 20 would cap batches at 20 messages) and no queue cap (the broker keeps the backlog).
 */
export class MosquittoBroker {
  private child: ChildProcess | undefined;
  private readonly subscribed = new Set<string>();
  private waiters: (() => void)[] = [];
  private stderrTail = '';

  constructor(
    private readonly dir: string,
    readonly port: number,
    private readonly options: MosquittoBrokerOptions = {},
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
        ...(this.options.persistence === false
          ? ['persistence false']
          : ['persistence true', `persistence_location ${this.dir}/`, 'autosave_interval 1']),
        `max_inflight_messages ${this.options.maxInflightMessages ?? 0}`,
        'max_queued_messages 0',
        'max_queued_bytes 0',
        `sys_interval ${this.options.sysIntervalSecs ?? 0}`,
        // Started as root, Mosquitto drops to user mosquitto, which cannot write a folder root made.
        ...(process.getuid?.() === 0 ? ['user root'] : []),
        // Subscriptions are logged so callers can wait for a module's subscription; stderr, because
        // Mosquitto's stdout is block-buffered into a pipe.
        'log_dest stderr',
        'log_type error',
        'log_type subscribe',
        '',
      ].join('\n'),
    );
    const child = spawn(bin, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    if (child.stderr) {
      createInterface({ input: child.stderr }).on('line', (line) => {
        // "<unix time>: <client id> <qos> <topic filter>"
        const m = /^\d+: (\S+) [012] (\S+)$/.exec(line);
        if (!m) {
          this.stderrTail = `${this.stderrTail}${line}\n`.slice(-1000);
          return;
        }
        this.subscribed.add(m[2] as string);
        for (const w of this.waiters.splice(0)) w();
      });
    }
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
        throw new EdgePerfError(
          'E_MOSQUITTO',
          `mosquitto did not listen on ${this.port}: ${this.stderrTail.trim() || 'no error output'}`,
        );
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /**
   * Resolves once some client has subscribed to `topicFilter` (since this broker started).
   * @throws EdgePerfError `E_MOSQUITTO` after `timeoutInMs` or when the broker exits.
   */
  async waitForSubscription(topicFilter: string, timeoutInMs: number): Promise<void> {
    const deadline = Date.now() + timeoutInMs;
    while (!this.subscribed.has(topicFilter)) {
      const left = deadline - Date.now();
      if (left <= 0 || this.child?.exitCode !== null)
        throw new EdgePerfError('E_MOSQUITTO', `no subscription to ${topicFilter} within ${timeoutInMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 500));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Kills the broker and removes its folder (config, persistence). */
  async destroy(): Promise<void> {
    await this.stop('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Graceful restart: SIGTERM (Mosquitto saves its persistence file), then start again. */
  async restart(downMs = 1000): Promise<string> {
    await this.stop();
    await new Promise((r) => setTimeout(r, downMs));
    await this.start();
    return `mosquitto restarted (down ${downMs} ms)`;
  }

  /**
   * SIGTERM (Mosquitto saves its persistence file and exits; SIGKILL after 5 s), or SIGKILL at
   * once: a crash, where only what was saved survives.
   */
  async stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill(signal);
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  }
}

/**
 * A broker on a free loopback port with its config and persistence in a new temp folder;
 * {@link MosquittoBroker.destroy} kills it and removes the folder.
 * @throws EdgePerfError `E_MOSQUITTO` when Mosquitto is not installed or does not listen.
 */
export async function startMosquittoInTempDir(
  options: MosquittoBrokerOptions = {},
): Promise<MosquittoBroker> {
  const broker = new MosquittoBroker(
    mkdtempSync(join(tmpdir(), 'edgeperf-mosquitto-')),
    await freePort(),
    options,
  );
  await broker.start();
  return broker;
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
