import { existsSync } from 'node:fs';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { Pipeline, type PipelineOptions } from '../../modules/translator/pipeline.js';
import { type MosquittoBroker, startMosquittoInTempDir } from '../../perf-cli/mosquitto-broker.js';
import { perfBody, RecordingTransport, waitFor } from './translator-source-helpers.js';

const MOSQUITTO = '/usr/sbin/mosquitto';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

/** A Mosquitto on 127.0.0.1 with persistence, so a restart keeps sessions; removed after the test. */
async function mosquitto(): Promise<MosquittoBroker> {
  const broker = await startMosquittoInTempDir();
  cleanups.push(() => broker.destroy());
  return broker;
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
      const broker = await mosquitto();
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
    const broker = await mosquitto();
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
