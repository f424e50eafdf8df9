import {
  EventHubConsumerClient,
  EventHubProducerClient,
  type EventPosition,
  earliestEventPosition,
  latestEventPosition,
  type ReceivedEventData,
  type SubscribeOptions,
  type Subscription,
} from '@azure/event-hubs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventHubsServer, EventLog } from '../../emulator/eventhubs/index.js';
import { createLogger } from '../../modules/common/index.js';

// Real @azure/event-hubs clients against the endpoint on loopback (edge-facts §10).

const KEY = 'dGVzdC1rZXktZm9yLWV2ZW50LWh1YnMtZW11bGF0b3I=';
let log: EventLog;
let server: EventHubsServer;
let cs: (hub: string) => string;
const clients: { close(): Promise<void> }[] = [];

beforeAll(async () => {
  log = new EventLog({
    hubs: [
      { name: 'telemetry', partitionCount: 4, consumerGroups: ['asa'] },
      { name: 'positions', partitionCount: 1 },
      { name: 'owners', partitionCount: 2 },
      { name: 'builtin', partitionCount: 2 },
    ],
  });
  server = new EventHubsServer({
    log,
    port: 0,
    sharedAccessKeys: [{ keyName: 'RootManageSharedAccessKey', key: KEY }],
    logger: createLogger('eventhubs-test', { level: 'silent' }),
  });
  await server.start();
  cs = (hub) => server.connectionString(hub);
});

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  await server.stop();
});

function producer(hub: string): EventHubProducerClient {
  const client = new EventHubProducerClient(cs(hub), { retryOptions: { maxRetries: 0, timeoutInMs: 5000 } });
  clients.push(client);
  return client;
}

function consumer(hub: string, group = '$Default'): EventHubConsumerClient {
  const client = new EventHubConsumerClient(group, cs(hub), {
    retryOptions: { maxRetries: 0, timeoutInMs: 5000 },
  });
  clients.push(client);
  return client;
}

interface Collected {
  events: ReceivedEventData[];
  errors: Error[];
  partitions: Set<string>;
  lastEnqueuedSeq: number | undefined;
  closeReasons: string[];
  subscription: Subscription;
  until(n: number, timeoutMs?: number): Promise<ReceivedEventData[]>;
}

function collect(
  client: EventHubConsumerClient,
  partitionId: string | undefined,
  options: SubscribeOptions,
): Collected {
  const out = {
    events: [] as ReceivedEventData[],
    errors: [] as Error[],
    partitions: new Set<string>(),
    lastEnqueuedSeq: undefined as number | undefined,
    closeReasons: [] as string[],
  };
  const handlers = {
    processEvents: async (
      events: ReceivedEventData[],
      ctx: { partitionId: string; lastEnqueuedEventProperties?: { sequenceNumber?: number } },
    ) => {
      for (const e of events) {
        out.events.push(e);
        out.partitions.add(ctx.partitionId);
      }
      if (events.length > 0) out.lastEnqueuedSeq = ctx.lastEnqueuedEventProperties?.sequenceNumber;
    },
    processError: async (err: Error) => {
      out.errors.push(err);
    },
    processClose: async (reason: string) => {
      out.closeReasons.push(reason);
    },
  };
  const opts = { maxWaitTimeInSeconds: 0.2, ...options };
  const subscription =
    partitionId === undefined
      ? client.subscribe(handlers, opts)
      : client.subscribe(partitionId, handlers, opts);
  const until = async (n: number, timeoutMs = 8000): Promise<ReceivedEventData[]> => {
    const deadline = Date.now() + timeoutMs;
    while (out.events.length < n && Date.now() < deadline) await sleep(20);
    return out.events;
  };
  return Object.assign(out, { subscription, until });
}

async function waitFor(cond: () => boolean, timeoutMs = 8000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await sleep(20);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

describe('EventHubProducerClient against the endpoint', () => {
  it('reports hub and partition properties through $management', async () => {
    const p = producer('telemetry');
    const hub = await p.getEventHubProperties();
    expect(hub.name).toBe('telemetry');
    expect(hub.partitionIds).toEqual(['0', '1', '2', '3']);
    expect(hub.createdOn.getTime()).toBeGreaterThan(0);
    const before = await p.getPartitionProperties('2');
    expect(before).toMatchObject({ partitionId: '2', eventHubName: 'telemetry', isEmpty: true });
    expect(before.lastEnqueuedSequenceNumber).toBe(-1);

    const batch = await p.createBatch({ partitionId: '2' });
    expect(batch.tryAdd({ body: 'a' })).toBe(true);
    expect(batch.tryAdd({ body: 'b' })).toBe(true);
    await p.sendBatch(batch);
    const after = await p.getPartitionProperties('2');
    expect(after).toMatchObject({
      isEmpty: false,
      beginningSequenceNumber: 0,
      lastEnqueuedSequenceNumber: 1,
    });
    expect(Number(after.lastEnqueuedOffset)).toBeGreaterThan(0);
    expect(after.lastEnqueuedOnUtc.getTime()).toBeGreaterThan(Date.now() - 60_000);
    await expect(p.getPartitionProperties('9')).rejects.toThrow();
  });

  it('enforces the link max message size in createBatch', async () => {
    const p = producer('telemetry');
    const batch = await p.createBatch();
    expect(batch.maxSizeInBytes).toBe(1_048_576);
    await expect(p.createBatch({ maxSizeInBytes: 2_000_000 })).rejects.toThrow(/max|size/i);
    const small = await p.createBatch({ maxSizeInBytes: 600 });
    expect(small.tryAdd({ body: 'x'.repeat(200) })).toBe(true);
    expect(small.tryAdd({ body: 'x'.repeat(500) })).toBe(false);
  });

  it('keeps a keyed batch on one partition and delivers body, properties and ids', async () => {
    const p = producer('telemetry');
    const batch = await p.createBatch({ partitionKey: 'device-42' });
    for (let i = 0; i < 5; i++) {
      batch.tryAdd({
        body: { i },
        properties: { seq: i, kind: 'perf', ok: true },
        messageId: `m-${i}`,
        contentType: 'application/json',
        correlationId: 'c-1',
      });
    }
    await p.sendBatch(batch);
    const c = consumer('telemetry', 'asa');
    const got = collect(c, undefined, { startPosition: earliestEventPosition });
    await waitFor(() => got.events.filter((e) => e.partitionKey === 'device-42').length >= 5);
    const keyed = got.events.filter((e) => e.partitionKey === 'device-42');
    expect(keyed.map((e) => (e.body as { i: number }).i)).toEqual([0, 1, 2, 3, 4]);
    expect(new Set(keyed.map((e) => e.sequenceNumber)).size).toBe(5);
    expect(keyed[0]?.properties).toEqual({ seq: 0, kind: 'perf', ok: true });
    expect(keyed[0]?.messageId).toBe('m-0');
    expect(keyed[0]?.contentType).toBe('application/json');
    expect(keyed[0]?.correlationId).toBe('c-1');
    // All five went to the partition the key maps to.
    const pid = log.hub('telemetry').partitionIdForKey('device-42');
    const stored = log.hub('telemetry').partition(pid).read(0, 1000);
    expect(stored.filter((e) => e.partitionKey === 'device-42')).toHaveLength(5);
    await got.subscription.close();
  });

  it('spreads unkeyed batches over partitions and a subscription to all partitions sees them all', async () => {
    const p = producer('telemetry');
    for (let i = 0; i < 8; i++) await p.sendBatch([{ body: `rr-${i}` }]);
    const c = consumer('telemetry');
    const got = collect(c, undefined, { startPosition: earliestEventPosition });
    await waitFor(() => got.events.filter((e) => String(e.body).startsWith('rr-')).length >= 8);
    expect(got.partitions).toEqual(new Set(['0', '1', '2', '3']));
    await got.subscription.close();
  });

  it('refuses a wrong key and an unknown hub', async () => {
    const wrong = new EventHubProducerClient(cs('telemetry').replace(KEY, 'd3Jvbmcta2V5'), {
      retryOptions: { maxRetries: 0, timeoutInMs: 3000 },
    });
    clients.push(wrong);
    await expect(wrong.getEventHubProperties()).rejects.toMatchObject({ code: 'UnauthorizedError' });
    await expect(wrong.sendBatch([{ body: 'x' }])).rejects.toMatchObject({ code: 'UnauthorizedError' });
    const missing = producer('nope');
    await expect(missing.getEventHubProperties()).rejects.toThrow(/could not be found/);
  });
});

describe('EventHubConsumerClient start positions', () => {
  let offsets: string[] = [];
  let times: number[] = [];

  beforeAll(() => {
    const base = Date.now() - 10_000;
    const stored = log.hub('positions').append(
      Array.from({ length: 6 }, (_, i) => ({ body: Buffer.from(`e${i}`), enqueuedTimeMs: base + i * 1000 })),
      { partitionId: '0' },
    );
    offsets = stored.map((e) => e.offset);
    times = stored.map((e) => e.enqueuedTimeMs);
  });

  const bodies = (events: ReceivedEventData[]) => events.map((e) => String(e.body));

  async function startAt(position: EventPosition, expected: number): Promise<string[]> {
    const c = consumer('positions');
    const got = collect(c, '0', { startPosition: position });
    await got.until(expected);
    await sleep(300); // nothing more should arrive
    await got.subscription.close();
    expect(got.errors).toEqual([]);
    return bodies(got.events);
  }

  it('earliest, offset (exclusive/inclusive), sequence number and enqueued time', async () => {
    expect(await startAt(earliestEventPosition, 6)).toEqual(['e0', 'e1', 'e2', 'e3', 'e4', 'e5']);
    expect(await startAt({ offset: offsets[2] ?? '' }, 3)).toEqual(['e3', 'e4', 'e5']);
    expect(await startAt({ offset: offsets[2] ?? '', isInclusive: true }, 4)).toEqual([
      'e2',
      'e3',
      'e4',
      'e5',
    ]);
    expect(await startAt({ sequenceNumber: 3 }, 2)).toEqual(['e4', 'e5']);
    expect(await startAt({ sequenceNumber: 3, isInclusive: true }, 3)).toEqual(['e3', 'e4', 'e5']);
    expect(await startAt({ enqueuedOn: new Date(times[3] ?? 0) }, 2)).toEqual(['e4', 'e5']);
  });

  it('latest sees only what is sent after the link attached, with last-enqueued tracking', async () => {
    const c = consumer('positions');
    const consumersBefore = server.stats().consumers;
    const got = collect(c, '0', {
      startPosition: latestEventPosition,
      trackLastEnqueuedEventProperties: true,
    });
    await waitFor(() => server.stats().consumers > consumersBefore);
    const p = producer('positions');
    await p.sendBatch([{ body: 'new-1' }, { body: 'new-2' }], { partitionId: '0' });
    await got.until(2);
    expect(bodies(got.events)).toEqual(['new-1', 'new-2']);
    expect(got.events[1]?.sequenceNumber).toBe(7);
    expect(got.lastEnqueuedSeq).toBe(7);
    await got.subscription.close();
  });

  it('refuses a sequence number beyond the end of the partition', async () => {
    const c = consumer('positions');
    const got = collect(c, '0', { startPosition: { sequenceNumber: 500 } });
    await waitFor(() => got.errors.length > 0);
    expect(got.errors[0]?.message).toMatch(/beyond/);
    await got.subscription.close();
  });
});

describe('ownerLevel exclusivity', () => {
  it('a higher owner level takes the partition; a lower one and a plain receiver are refused', async () => {
    const base = server.stats().consumers;
    const first = collect(consumer('owners'), '0', { ownerLevel: 1, startPosition: earliestEventPosition });
    await waitFor(() => server.stats().consumers > base);
    const before = server.stats().consumers;
    const second = collect(consumer('owners'), '0', { ownerLevel: 2, startPosition: earliestEventPosition });
    await waitFor(() => first.errors.length > 0);
    expect(first.errors[0]).toMatchObject({ code: 'ReceiverDisconnectedError' });
    await waitFor(() => first.closeReasons.includes('OwnershipLost'));
    expect(server.stats().consumers).toBe(before);

    const lower = collect(consumer('owners'), '0', { ownerLevel: 1, startPosition: earliestEventPosition });
    await waitFor(() => lower.errors.length > 0);
    expect(lower.errors[0]).toMatchObject({ code: 'ReceiverDisconnectedError' });
    const plain = collect(consumer('owners'), '0', { startPosition: earliestEventPosition });
    await waitFor(() => plain.errors.length > 0);
    expect(plain.errors[0]).toMatchObject({ code: 'ReceiverDisconnectedError' });

    // The owner still receives.
    await producer('owners').sendBatch([{ body: 'still-mine' }], { partitionId: '0' });
    await second.until(1);
    expect(second.events.map((e) => e.body)).toEqual(['still-mine']);
    for (const s of [first, second, lower, plain]) await s.subscription.close();
  });
});

describe('IoT Hub built-in endpoint shape', () => {
  it('delivers IoT Hub annotations, message id and content type/encoding appended by the hub', async () => {
    const enqueued = new Date();
    log.hub('builtin').append(
      [
        {
          body: Buffer.from(JSON.stringify({ perf: { sid: 's', burst: 1, seq: 0, ts: 1 } })),
          properties: { 'iothub-outputname': 'output1', batch: 'v1' },
          annotations: {
            'iothub-connection-device-id': 'edge1',
            'iothub-connection-module-id': 'translator',
            'iothub-enqueuedtime': enqueued,
            'iothub-message-source': 'Telemetry',
          },
          amqpProperties: {
            message_id: 'mid-1',
            content_type: 'application/json',
            content_encoding: 'utf-8',
          },
          enqueuedTimeMs: enqueued.getTime(),
        },
      ],
      { partitionKey: 'edge1' },
    );
    const got = collect(consumer('builtin'), undefined, { startPosition: earliestEventPosition });
    const [event] = await got.until(1);
    await got.subscription.close();
    expect(event?.systemProperties).toMatchObject({
      'iothub-connection-device-id': 'edge1',
      'iothub-connection-module-id': 'translator',
      'iothub-enqueuedtime': enqueued.getTime(),
      'iothub-message-source': 'Telemetry',
      messageId: 'mid-1',
      contentType: 'application/json',
      contentEncoding: 'utf-8',
    });
    expect(event?.properties).toEqual({ 'iothub-outputname': 'output1', batch: 'v1' });
    expect(event?.enqueuedTimeUtc.getTime()).toBe(enqueued.getTime());
    expect(event?.body).toEqual({ perf: { sid: 's', burst: 1, seq: 0, ts: 1 } });
  });
});
