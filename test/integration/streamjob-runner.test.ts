import { EventHubConsumerClient, earliestEventPosition, type Subscription } from '@azure/event-hubs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventHubsServer, type EventInput, EventLog } from '../../emulator/eventhubs/index.js';
import { type StreamJobRow, StreamJobRunner } from '../../emulator/streamjob/index.js';
import { createLogger } from '../../modules/common/index.js';

// The local stream job end to end on loopback: events appended to the built-in endpoint as the
// local IoT Hub appends them, read by the runner's unmodified EventHubConsumerClient, rows
// written with EventHubProducerClient and read back with a second, real consumer.

const KEY = 'c3RyZWFtam9iLXRlc3Qta2V5LWZvci1ldmVudC1odWJz';
const silent = createLogger('streamjob-test', { level: 'silent' });
let log: EventLog;
let server: EventHubsServer;
let runner: StreamJobRunner;
let reader: EventHubConsumerClient;
let subscription: Subscription;
const received: StreamJobRow[] = [];

function hubEvent(body: unknown, enqueuedMs: number, module = 'translator'): EventInput {
  return {
    body: Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body)),
    annotations: {
      'iothub-connection-device-id': 'edge-1',
      'iothub-connection-module-id': module,
      'iothub-enqueuedtime': new Date(enqueuedMs),
    },
    amqpProperties: { content_type: 'application/json', content_encoding: 'utf-8' },
    enqueuedTimeMs: enqueuedMs,
  };
}

async function until(predicate: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for stream job rows');
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  log = new EventLog({
    hubs: [
      { name: 'builtin', partitionCount: 2 },
      { name: 'results', partitionCount: 1 },
    ],
  });
  server = new EventHubsServer({
    log,
    port: 0,
    sharedAccessKeys: [{ keyName: 'RootManageSharedAccessKey', key: KEY }],
    logger: silent,
  });
  await server.start();
  runner = new StreamJobRunner({
    inputConnectionString: server.connectionString('builtin'),
    outputConnectionString: server.connectionString('results'),
    lateArrivalMaxDelaySecs: 1,
    outOfOrderMaxDelaySecs: 0,
    tickIntervalInMs: 100,
    logger: silent,
  });
  await runner.start();
  reader = new EventHubConsumerClient('$Default', server.connectionString('results'));
  subscription = reader.subscribe(
    {
      processEvents: async (events) => {
        for (const e of events) received.push(e.body as StreamJobRow);
      },
      processError: async () => undefined,
    },
    { startPosition: earliestEventPosition, maxWaitTimeInSeconds: 0.2 },
  );
}, 20_000);

afterAll(async () => {
  await subscription?.close();
  await reader?.close();
  await runner?.stop({ flush: false });
  await server?.stop();
});

describe('StreamJobRunner', () => {
  it('turns built-in endpoint events into result rows, skipping a malformed event', async () => {
    const builtin = log.hub('builtin');
    const now = Date.now();
    // Ten plain simulator messages on partition 0, one translator batch of five records on
    // partition 1, a body that is not JSON and one without perf fields in between.
    builtin.append(
      Array.from({ length: 10 }, (_, seq) =>
        hubEvent(
          { perf: { sid: 'run-1', burst: 1, seq, ts: now - 40 }, payload: 'p'.repeat(100) },
          now,
          'simulator',
        ),
      ),
      { partitionId: '0' },
    );
    builtin.append([hubEvent(Buffer.from('{not json'), now), hubEvent({ temperature: 20 }, now)], {
      partitionId: '1',
    });
    const records = Array.from({ length: 5 }, (_, i) => ({
      topic: 'sim/dev1/telemetry',
      it: now - 20,
      perf: { sid: 'run-1', burst: 1, seq: 10 + i, ts: now - 30 },
      data: { payload: 'q'.repeat(50) },
    }));
    builtin.append([hubEvent({ v: 1, records }, now)], { partitionId: '1' });

    await until(() => received.reduce((n, r) => n + r.messages, 0) >= 15, 15_000);
    const total = received.reduce(
      (acc, r) => ({
        messages: acc.messages + r.messages,
        bytes: acc.bytes + r.payloadBytes,
        maxSeq: Math.max(acc.maxSeq, r.maxSeq),
        maxLatency: Math.max(acc.maxLatency, r.latencyMaxMs),
        minLatency: Math.min(acc.minLatency, r.latencyMinMs),
      }),
      { messages: 0, bytes: 0, maxSeq: -1, maxLatency: 0, minLatency: Number.POSITIVE_INFINITY },
    );
    expect(total).toEqual({
      messages: 15,
      bytes: 10 * 100 + 5 * 50,
      maxSeq: 14,
      maxLatency: 40,
      minLatency: 30,
    });
    expect(received.every((r) => r.sid === 'run-1' && r.burst === 1)).toBe(true);
    const stats = runner.stats();
    expect(stats).toMatchObject({
      received: 13,
      undecodable: 1,
      malformed: 1,
      ignoredRecords: 1,
      messages: 15,
    });
    expect(stats.sentRows).toBe(received.length);
    expect(stats.sendFailures).toBe(0);
  });

  it('keeps running after the malformed event', async () => {
    const now = Date.now();
    log
      .hub('builtin')
      .append([hubEvent({ perf: { sid: 'run-2', burst: 3, seq: 0, ts: now - 5 }, payload: 'abc' }, now)], {
        partitionId: '0',
      });
    await until(() => received.some((r) => r.sid === 'run-2'), 15_000);
    const row = received.find((r) => r.sid === 'run-2');
    expect(row).toMatchObject({ burst: 3, messages: 1, payloadBytes: 3, latencyP50Ms: 5, latencyP99Ms: 5 });
  });
});
