import { afterEach, describe, expect, it } from 'vitest';
import type { EdgeMessage } from '../../emulator/edgehub/message.js';
import { StoreAndForward } from '../../emulator/edgehub/store-and-forward.js';
import {
  d2cThrottlePerSec,
  IotHubIngest,
  MessageTooLargeError,
  ThrottledError,
} from '../../emulator/iothub/ingest.js';
import { LinkDownError, LinkModel } from '../../emulator/iothub/link-model.js';
import { desiredSettings, envSettings, makeMessage, until } from './pump-helpers.js';

const inputs = { deliver: () => Promise.reject(new Error('not connected')) };
const batchOf = (n: number, bodyBytes = 100): EdgeMessage[] =>
  Array.from({ length: n }, () => makeMessage('a', { bodyBytes }));

describe('IoT Hub ingest', () => {
  it('stamps enqueue time, partitions by device id, counts 4 KB units and batches', async () => {
    const seen: { partition: number; id: string; t: number }[] = [];
    const ingest = new IotHubIngest({
      clockMs: () => 1_700_000_000_123,
      onEnqueued: (partition, message, t) => seen.push({ partition, id: message.id, t }),
    });
    const big = makeMessage('a', { bodyBytes: 5000 });
    await ingest.acceptBatch([makeMessage('a', { bodyBytes: 10 }), big]);
    expect(seen).toHaveLength(2);
    expect(seen[1]).toMatchObject({ id: big.id, t: 1_700_000_000_123 });
    expect(ingest.getStats()).toMatchObject({ messages: 2, batches: 1, meteredUnits: 3 });
    // One device → one partition; many devices spread over the 4 partitions.
    expect(new Set(seen.map((s) => s.partition)).size).toBe(1);
    const partitions = new Set(Array.from({ length: 50 }, (_, i) => ingest.partitionOf(`device-${i}`)));
    expect([...partitions].sort()).toEqual([0, 1, 2, 3]);
    expect(ingest.partitionOf('edge1')).toBe(ingest.partitionOf('edge1'));
  });

  it('refuses a message over 256 KB, enqueuing nothing of the batch', async () => {
    const seen: EdgeMessage[] = [];
    const ingest = new IotHubIngest({ onEnqueued: (_p, m) => seen.push(m) });
    const err = await ingest
      .acceptBatch([makeMessage('a'), makeMessage('a', { bodyBytes: 256 * 1024 + 1 })])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MessageTooLargeError);
    expect((err as MessageTooLargeError).permanent).toBe(true);
    expect(seen).toEqual([]);
    await expect(
      ingest.acceptBatch([makeMessage('a', { bodyBytes: 256 * 1024 - 100 })]),
    ).resolves.toBeUndefined();
  });

  it('throttle rates per tier and units (edge-facts §9)', () => {
    expect(d2cThrottlePerSec('S1', 1)).toBe(100);
    expect(d2cThrottlePerSec('S1', 20)).toBe(240);
    expect(d2cThrottlePerSec('S2', 1)).toBe(120);
    expect(d2cThrottlePerSec('S2', 3)).toBe(360);
    expect(d2cThrottlePerSec('S3', 2)).toBe(12_000);
    expect(d2cThrottlePerSec('unlimited', 1)).toBe(Number.POSITIVE_INFINITY);
  });

  it('S1: passes a one-second burst, queues the excess briefly, then answers 429', async () => {
    const ingest = new IotHubIngest({ tier: 'S1', units: 1, maxThrottleQueueMs: 200 });
    const t0 = performance.now();
    await ingest.acceptBatch(batchOf(100));
    expect(performance.now() - t0).toBeLessThan(50);
    const t1 = performance.now();
    await ingest.acceptBatch(batchOf(10));
    expect(performance.now() - t1).toBeGreaterThanOrEqual(80);
    const err = await ingest.acceptBatch(batchOf(30)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ThrottledError);
    expect((err as ThrottledError).status).toBe(429);
    expect(ingest.getStats()).toMatchObject({ messages: 110, throttledBatches: 1 });
  });
});

describe('link model', () => {
  it('one batch takes a round trip plus serialisation of its bytes', async () => {
    const ingest = new IotHubIngest();
    const fast = new LinkModel(ingest, { rttMs: 30, bandwidthMbps: Number.POSITIVE_INFINITY });
    let t = performance.now();
    await fast.sendBatch(batchOf(10, 1000));
    const rttOnly = performance.now() - t;
    expect(rttOnly).toBeGreaterThanOrEqual(29);
    expect(rttOnly).toBeLessThan(60);
    // 10 × (1000 + props + 120 overhead) bytes at 1 Mbit/s ≈ 90 ms more.
    const slow = new LinkModel(ingest, { rttMs: 30, bandwidthMbps: 1 });
    t = performance.now();
    await slow.sendBatch(batchOf(10, 1000));
    expect(performance.now() - t).toBeGreaterThanOrEqual(29 + 85);
    expect(slow.getStats()).toMatchObject({ batches: 1, messages: 10 });
    expect(ingest.getStats().messages).toBe(20);
  });

  it('an instant link (0 ms, no bandwidth limit) waits on no timer', async () => {
    // The bench's throughput runs rely on this: a timer per batch bounded them at whole milliseconds.
    const link = new LinkModel(new IotHubIngest(), { rttMs: 0, bandwidthMbps: Number.POSITIVE_INFINITY });
    let timerFired = false;
    const timer = setTimeout(() => {
      timerFired = true;
    }, 0);
    for (let i = 0; i < 200; i++) await link.sendBatch(batchOf(1, 256 * 1000));
    expect(timerFired).toBe(false);
    clearTimeout(timer);
    expect(link.getStats()).toMatchObject({ batches: 200, messages: 200 });
  });

  it('parallel sends share the bandwidth', async () => {
    const link = new LinkModel(new IotHubIngest(), { rttMs: 0, bandwidthMbps: 1 });
    const t = performance.now();
    await Promise.all([link.sendBatch(batchOf(5, 1000)), link.sendBatch(batchOf(5, 1000))]);
    // 2 × ~45 ms of bytes one after another.
    expect(performance.now() - t).toBeGreaterThanOrEqual(85);
  });

  it('during an outage a send fails after the connect timeout; afterwards it works', async () => {
    const ingest = new IotHubIngest();
    const link = new LinkModel(ingest, {
      rttMs: 2,
      connectTimeoutMs: 20,
      outages: [{ startMs: 0, durationMs: 80 }],
    });
    link.start();
    expect(link.isDown()).toBe(true);
    const t = performance.now();
    await expect(link.sendBatch(batchOf(1))).rejects.toBeInstanceOf(LinkDownError);
    expect(performance.now() - t).toBeGreaterThanOrEqual(19);
    await new Promise((r) => setTimeout(r, 80));
    await expect(link.sendBatch(batchOf(1))).resolves.toBeUndefined();
    link.startOutage(50);
    await expect(link.sendBatch(batchOf(1))).rejects.toBeInstanceOf(LinkDownError);
    expect(link.getStats().failedDuringOutage).toBe(2);
    expect(ingest.getStats().messages).toBe(1);
  });
});

describe('pump over the link', () => {
  const running: StoreAndForward[] = [];
  afterEach(async () => {
    await Promise.all(running.splice(0).map((s) => s.stop()));
  });

  it('an outage queues messages; they all arrive, in order, once the link is back', async () => {
    const received: number[] = [];
    const ingest = new IotHubIngest({ onEnqueued: (_p, m) => received.push(Number(m.properties.seq)) });
    const link = new LinkModel(ingest, { rttMs: 2, connectTimeoutMs: 10 });
    link.start();
    const saf = new StoreAndForward({
      env: envSettings(),
      desired: desiredSettings({ up: 'FROM /messages/* INTO $upstream' }),
      upstream: link,
      inputs,
      retryBaseMs: 10,
      retryMaxMs: 40,
    });
    running.push(saf);
    await saf.start();
    link.startOutage(60_000);
    for (let i = 0; i < 300; i++) await saf.accept(makeMessage('a', { seq: i }));
    await until(() => saf.upstreamStats.failedAttempts >= 2);
    expect(saf.store.totalLength).toBe(300);
    expect(received).toEqual([]);
    link.endOutage();
    await until(() => received.length === 300, 10_000);
    expect(received).toEqual(Array.from({ length: 300 }, (_, i) => i));
    expect(saf.upstreamStats.failedAttempts).toBeGreaterThan(0);
  });

  it('a message IoT Hub refuses as too large is dropped and does not block the queue', async () => {
    const ingest = new IotHubIngest();
    const link = new LinkModel(ingest, { rttMs: 1 });
    const saf = new StoreAndForward({
      env: envSettings({ maxUpstreamBatchSize: 1 }),
      desired: desiredSettings({ up: 'FROM /messages/* INTO $upstream' }),
      upstream: link,
      inputs,
    });
    running.push(saf);
    await saf.start();
    await saf.accept(makeMessage('a', { bodyBytes: 300 * 1024 }));
    for (let i = 0; i < 5; i++) await saf.accept(makeMessage('a'));
    await until(() => ingest.getStats().messages === 5);
    await until(() => saf.store.totalLength === 0);
    expect(saf.upstreamStats.messagesRejected).toBe(1);
  });
});
