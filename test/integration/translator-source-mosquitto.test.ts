import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { Pipeline, type PipelineOptions } from '../../modules/translator/pipeline.js';
import { perfBody, RecordingTransport, waitFor } from './translator-source-helpers.js';

const MOSQUITTO = '/usr/sbin/mosquitto';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

/** A Mosquitto on 127.0.0.1 with a generated config; persistence so a restart keeps sessions. */
class Mosquitto {
  readonly port: number;
  private readonly dir: string;
  private child: ChildProcess | undefined;

  private constructor(port: number, dir: string) {
    this.port = port;
    this.dir = dir;
  }

  static async create(): Promise<Mosquitto> {
    const m = new Mosquitto(await freePort(), await mkdtemp(join(tmpdir(), 'edgeperf-mosq-')));
    cleanups.push(() => m.destroy());
    await writeFile(
      join(m.dir, 'mosquitto.conf'),
      [
        `listener ${m.port} 127.0.0.1`,
        'allow_anonymous true',
        'persistence true',
        `persistence_location ${m.dir}/`,
        // Deferred PUBACKs need room: the default of 20 in-flight messages would cap batches at 20.
        'max_inflight_messages 0',
        'max_queued_messages 100000',
        'log_dest stderr',
        'log_type error',
        ...(process.getuid?.() === 0 ? ['user root'] : []),
        '',
      ].join('\n'),
    );
    await m.start();
    return m;
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const child = spawn(MOSQUITTO, ['-c', join(this.dir, 'mosquitto.conf')], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.child = child;
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const end = Date.now() + 5000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`mosquitto exited: ${stderr}`);
      const ok = await new Promise<boolean>((resolve) => {
        const s = createConnection(this.port, '127.0.0.1');
        s.once('connect', () => {
          s.destroy();
          resolve(true);
        });
        s.once('error', () => resolve(false));
      });
      if (ok) return;
      if (Date.now() > end) throw new Error(`mosquitto did not listen: ${stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** SIGTERM: Mosquitto writes its persistence file and exits. */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child === undefined || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }

  async destroy(): Promise<void> {
    await this.stop();
    await rm(this.dir, { recursive: true, force: true });
  }
}

async function publisher(url: string): Promise<mqtt.MqttClient> {
  const c = await mqtt.connectAsync(url, { clientId: `pub-${Math.random()}`, reconnectPeriod: 0 });
  cleanups.push(() => c.endAsync(true));
  return c;
}

async function pipeline(options: PipelineOptions, transport: RecordingTransport): Promise<Pipeline> {
  const p = new Pipeline(options, transport);
  cleanups.push(() => p.stop({ flush: false, deadlineMs: 200 }));
  await p.start();
  return p;
}

describe.skipIf(!existsSync(MOSQUITTO))('translator source on Mosquitto', () => {
  for (const protocolVersion of [4, 5] as const) {
    it(`MQTT ${protocolVersion === 4 ? '3.1.1' : '5'}: withheld acks are redelivered to a restarted source; acked ones are not`, async () => {
      const broker = await Mosquitto.create();
      const pub = await publisher(broker.url);
      const options: PipelineOptions = {
        source: {
          url: broker.url,
          topics: ['m/#'],
          clientId: `mosq-redeliver-${protocolVersion}`,
          protocolVersion,
        },
        batch: { maxMessages: 25, maxWaitTimeInMs: 5 },
      };
      const first = await pipeline(options, new RecordingTransport({ kind: 'withhold' }));
      for (let seq = 0; seq < 100; seq++) await pub.publishAsync('m/a', perfBody(seq), { qos: 1 });
      await waitFor(() => first.stats().received === 100, 'first run read all 100');
      await first.stop({ flush: false, deadlineMs: 100 });

      const acking = new RecordingTransport();
      const second = await pipeline(options, acking);
      await waitFor(() => new Set(acking.seqs()).size === 100, 'every sequence number upstream');
      expect(second.stats().source.redelivered).toBeGreaterThan(0);
      await waitFor(() => second.stats().source.unacked === 0, 'acks sent');
      await second.stop({ flush: true, deadlineMs: 2000 });

      const third = await pipeline(options, new RecordingTransport());
      await new Promise((r) => setTimeout(r, 300));
      expect(third.stats().received).toBe(0);
    });
  }

  it('reconnects after the broker restarts and loses nothing that was not acknowledged upstream', async () => {
    const broker = await Mosquitto.create();
    const transport = new RecordingTransport({ kind: 'fail' });
    const p = await pipeline(
      {
        source: { url: broker.url, topics: ['r/#'], clientId: 'mosq-restart', reconnectMinDelayInMs: 100 },
        batch: { maxMessages: 20, maxWaitTimeInMs: 5, retryMaxDelayInMs: 200 },
      },
      transport,
    );
    const pub = await publisher(broker.url);
    for (let seq = 0; seq < 100; seq++) await pub.publishAsync('r/a', perfBody(seq), { qos: 1 });
    await waitFor(() => p.stats().received >= 100, 'read while upstream is down');
    expect(p.stats().sendErrors).toBeGreaterThan(0);

    await broker.stop();
    await waitFor(() => !p.stats().source.connected, 'source noticed the broker is gone');
    transport.mode = { kind: 'ack' };
    await broker.start();
    await waitFor(() => p.stats().source.connects >= 2, 'source reconnected');
    await waitFor(() => new Set(transport.seqs()).size === 100, 'every sequence number upstream', 15_000);
    // Acks of the old connection were dropped, so the broker redelivered: duplicates, no loss.
    expect(p.stats().source.redelivered).toBeGreaterThan(0);
  });
});
