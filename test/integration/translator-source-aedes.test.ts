import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { ENVELOPE_PROPS } from '../../modules/common/index.js';
import { Pipeline, type PipelineOptions } from '../../modules/translator/pipeline.js';
import { EmbeddedBroker } from '../../modules/translator/source/index.js';
import { perfBody, RecordingTransport, waitFor } from './translator-source-helpers.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

async function broker(): Promise<EmbeddedBroker> {
  const b = new EmbeddedBroker({ port: 0 });
  await b.start();
  cleanups.push(() => b.stop());
  return b;
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

describe('translator source on the embedded aedes broker', () => {
  it('delivers every record batched, and bad input to deadletter while the stream goes on', async () => {
    const b = await broker();
    const transport = new RecordingTransport();
    const p = await pipeline(
      {
        source: { url: b.url, topics: ['plant/#'], clientId: 'aedes-1' },
        decoder: { topicTemplate: 'plant/{site}/{sensor}' },
        batch: { maxMessages: 50, maxWaitTimeInMs: 20 },
      },
      transport,
    );
    const pub = await publisher(b.url);
    const published: Promise<unknown>[] = [];
    for (let seq = 0; seq < 300; seq++) {
      published.push(pub.publishAsync('plant/s1/temp', perfBody(seq), { qos: 1 }));
      if (seq === 100)
        published.push(pub.publishAsync('plant/s1/temp', Buffer.from('{not json'), { qos: 1 }));
      if (seq === 200) {
        published.push(
          pub.publishAsync('plant/s1/temp', Buffer.from(`"${'x'.repeat(300_000)}"`), { qos: 1 }),
        );
      }
    }
    await Promise.all(published);
    await waitFor(() => transport.seqs().length >= 300, '300 records upstream');
    await waitFor(
      () => transport.sent.filter((s) => s.output === 'deadletter').length === 2,
      'two dead letters',
    );
    expect(new Set(transport.seqs()).size).toBe(300);
    const batches = transport.sent.filter((s) => s.output === 'output1');
    // A burst batches well even on a loaded machine (300 records, maxMessages 50).
    expect(batches.length).toBeLessThan(100);
    const first = JSON.parse(String(batches[0]?.message.body));
    expect(first.v).toBe(1);
    expect(first.records[0].fields).toEqual({ site: 's1', sensor: 'temp' });
    expect(typeof first.records[0].it).toBe('number');
    const dls = transport.sent
      .filter((s) => s.output === 'deadletter')
      .map((s) => s.message.properties.reason);
    expect(dls.sort()).toEqual(['malformed-json', 'record-too-large']);
    const stats = p.stats();
    expect(stats.deadLetters).toMatchObject({ 'malformed-json': 1, 'record-too-large': 1 });
    expect(stats.sentRecords).toBe(300);
    await waitFor(() => p.stats().source.unacked === 0, 'all acked to the broker');
  });

  it('withheld upstream acks keep messages at the broker: a restarted source gets them again', async () => {
    const b = await broker();
    const pub = await publisher(b.url);
    const options: PipelineOptions = {
      source: { url: b.url, topics: ['f/#'], clientId: 'aedes-redeliver' },
      batch: { maxMessages: 20, maxWaitTimeInMs: 5 },
    };
    const withholding = new RecordingTransport({ kind: 'withhold' });
    const first = await pipeline(options, withholding);
    for (let seq = 0; seq < 50; seq++) await pub.publishAsync('f/a', perfBody(seq), { qos: 1 });
    await waitFor(() => first.stats().received === 50, 'first run read all 50');
    expect(first.stats().source.unacked).toBe(50);
    await first.stop({ flush: false, deadlineMs: 100 });

    // Same client id, persistent session: the broker redelivers all 50; this time they are acked.
    const acking = new RecordingTransport();
    const second = await pipeline(options, acking);
    await waitFor(() => acking.seqs().length >= 50, 'redelivered records upstream');
    expect([...new Set(acking.seqs())].sort((x, y) => x - y)).toEqual([...Array(50).keys()]);
    await waitFor(() => second.stats().source.unacked === 0, 'acks sent');
    await second.stop({ flush: true, deadlineMs: 2000 });

    // And acked ones are gone: a third run gets nothing redelivered.
    const third = await pipeline(options, new RecordingTransport());
    await new Promise((r) => setTimeout(r, 300));
    expect(third.stats().received).toBe(0);
  });

  it('bounds memory with a slow upstream (backpressure), then delivers everything', async () => {
    const b = await broker();
    const transport = new RecordingTransport({ kind: 'ack', delayMs: 20 });
    const maxBufferedBytes = 32 * 1024;
    const p = await pipeline(
      {
        source: { url: b.url, topics: ['slow/#'], clientId: 'aedes-slow' },
        batch: { maxMessages: 10, maxWaitTimeInMs: 5, maxInFlightBatches: 1 },
        maxBufferedBytes,
      },
      transport,
    );
    const pub = await publisher(b.url);
    let peak = 0;
    let paused = false;
    const sampler = setInterval(() => {
      const s = p.stats();
      peak = Math.max(peak, s.bufferedBytes);
      paused ||= s.source.paused;
    }, 2);
    cleanups.push(async () => clearInterval(sampler));
    const total = 600;
    await Promise.all(
      Array.from({ length: total }, (_, seq) => pub.publishAsync('slow/a', perfBody(seq, 1000), { qos: 1 })),
    );
    await waitFor(() => transport.seqs().length >= total, 'all records upstream', 20_000);
    clearInterval(sampler);
    expect(paused).toBe(true);
    // One message may cross the bound before the source is held.
    expect(peak).toBeLessThanOrEqual(maxBufferedBytes + 1500);
    expect(new Set(transport.seqs()).size).toBe(total);
  });

  it('drop-oldest drops and counts instead of holding the source', async () => {
    const b = await broker();
    const transport = new RecordingTransport({ kind: 'ack', delayMs: 50 });
    const p = await pipeline(
      {
        source: { url: b.url, topics: ['drop/#'], clientId: 'aedes-drop' },
        batch: { maxMessages: 5, maxWaitTimeInMs: 5, maxInFlightBatches: 1 },
        maxBufferedBytes: 8 * 1024,
        overflow: 'drop-oldest',
      },
      transport,
    );
    const pub = await publisher(b.url);
    const total = 300;
    await Promise.all(
      Array.from({ length: total }, (_, seq) => pub.publishAsync('drop/a', perfBody(seq, 1000), { qos: 1 })),
    );
    await waitFor(() => p.stats().received === total, 'all read');
    await p.flush();
    await waitFor(() => p.stats().bufferedRecords === 0, 'buffer drained');
    const s = p.stats();
    expect(s.dropped).toBeGreaterThan(0);
    expect(s.dropped + s.sentRecords).toBe(total);
    expect(transport.seqs()).toHaveLength(s.sentRecords);
    // Dropped messages were acknowledged too: nothing is left at the broker.
    await waitFor(() => p.stats().source.unacked === 0, 'every message acked');
  });

  it('batching off sends one upstream message per source message, and gzip bodies decode', async () => {
    const b = await broker();
    const naive = new RecordingTransport();
    await pipeline(
      { source: { url: b.url, topics: ['n/#'], clientId: 'aedes-naive' }, batch: { enabled: false } },
      naive,
    );
    const gz = new RecordingTransport();
    await pipeline(
      {
        source: { url: b.url, topics: ['n/#'], clientId: 'aedes-gzip' },
        batch: { encoding: 'gzip', maxWaitTimeInMs: 10 },
      },
      gz,
    );
    const pub = await publisher(b.url);
    for (let seq = 0; seq < 20; seq++) await pub.publishAsync('n/a', perfBody(seq), { qos: 1 });
    await waitFor(() => naive.seqs().length === 20 && gz.seqs().length === 20, 'both pipelines delivered');
    expect(naive.sent).toHaveLength(20);
    expect(JSON.parse(String(naive.sent[0]?.message.body)).perf.seq).toBe(0);
    expect(gz.sent.length).toBeLessThan(20);
    expect(gz.sent[0]?.message.properties[ENVELOPE_PROPS.encoding]).toBe('gzip');
  });
  it('applies batching changes live (twin desired properties) without a restart', async () => {
    const b = await broker();
    const transport = new RecordingTransport();
    const p = await pipeline(
      { source: { url: b.url, topics: ['live/#'], clientId: 'aedes-live' }, batch: { enabled: false } },
      transport,
    );
    const pub = await publisher(b.url);
    await Promise.all(
      Array.from({ length: 10 }, (_, seq) => pub.publishAsync('live/a', perfBody(seq), { qos: 1 })),
    );
    await waitFor(() => transport.seqs().length === 10, 'unbatched records');
    expect(transport.sent).toHaveLength(10);
    p.configureBatch({ enabled: true, maxMessages: 20, maxWaitTimeInMs: 10_000 });
    await Promise.all(
      Array.from({ length: 40 }, (_, i) => pub.publishAsync('live/a', perfBody(10 + i), { qos: 1 })),
    );
    await waitFor(() => transport.seqs().length === 50, 'batched records');
    expect(transport.sent).toHaveLength(12);
    p.resetStats();
    expect(p.stats().sentRecords).toBe(0);
  });
});
