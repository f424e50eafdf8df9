import fc from 'fast-check';
import rhea, { type Message } from 'rhea';
import { describe, expect, it } from 'vitest';
import {
  BATCH_MESSAGE_FORMAT,
  decodeIncoming,
  EntityNotFoundError,
  EventLog,
  encodeOutgoing,
  MalformedMessageError,
  PositionOutOfRangeError,
  parseSelector,
  UnsupportedFilterError,
} from '../../emulator/eventhubs/index.js';
import { ConfigError } from '../../modules/common/index.js';

const ev = (s: string, extra: Record<string, unknown> = {}) => ({ body: Buffer.from(s), ...extra });

function clock(start = 1_700_000_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

describe('EventLog configuration', () => {
  it('creates hubs with partitions and $Default, case-insensitively', () => {
    const log = new EventLog({ hubs: [{ name: 'Hub', partitionCount: 3, consumerGroups: ['asa'] }] });
    const hub = log.hub('hub');
    expect(hub.partitionIds).toEqual(['0', '1', '2']);
    expect(hub.hasConsumerGroup('$default')).toBe(true);
    expect(hub.hasConsumerGroup('ASA')).toBe(true);
    expect(hub.hasConsumerGroup('other')).toBe(false);
    expect(new EventLog({ hubs: [{ name: 'x' }] }).hub('x').partitionIds).toHaveLength(4);
    expect(() => log.hub('missing')).toThrow(EntityNotFoundError);
    expect(() => hub.partition('3')).toThrow(EntityNotFoundError);
  });

  it('reports every invalid field at once', () => {
    let error: unknown;
    try {
      new EventLog({
        hubs: [{ name: 'bad/name', partitionCount: 0 }],
        retention: { maxEventsPerPartition: -1 },
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const fields = (error as ConfigError).issues.map((i) => i.field);
    expect(fields).toEqual(
      expect.arrayContaining([
        'eventHubs.hubs.0.name',
        'eventHubs.hubs.0.partitionCount',
        'eventHubs.retention.maxEventsPerPartition',
      ]),
    );
  });
});

describe('appending', () => {
  it('assigns sequence numbers, byte offsets and non-decreasing enqueue times per partition', () => {
    const c = clock();
    const hub = new EventLog({ hubs: [{ name: 'h', partitionCount: 2 }], now: c.now }).hub('h');
    const [a, b] = hub.append([ev('aaaa'), ev('bb')], { partitionId: '1' });
    expect(a).toMatchObject({ sequenceNumber: 0, offset: '0', enqueuedTimeMs: c.now() });
    expect(b?.sequenceNumber).toBe(1);
    expect(Number(b?.offset)).toBeGreaterThan(4);
    const [late] = hub.append([ev('c', { enqueuedTimeMs: c.now() - 5000 })], { partitionId: '1' });
    expect(late?.enqueuedTimeMs).toBe(c.now());
    expect(hub.partition('0').info()).toMatchObject({
      isEmpty: true,
      lastEnqueuedSequenceNumber: -1,
      lastEnqueuedOffset: '-1',
    });
  });

  it('keeps a key on one partition, stores the key, and round-robins unkeyed appends', () => {
    const hub = new EventLog({ hubs: [{ name: 'h', partitionCount: 4 }] }).hub('h');
    const pid = hub.partitionIdForKey('dev-1');
    for (let i = 0; i < 5; i++) hub.append([ev(`k${i}`)], { partitionKey: 'dev-1' });
    const keyed = hub.partition(pid).read(0, 100);
    expect(keyed).toHaveLength(5);
    expect(keyed.every((e) => e.partitionKey === 'dev-1')).toBe(true);
    const hub2 = new EventLog({ hubs: [{ name: 'h', partitionCount: 4 }] }).hub('h');
    for (let i = 0; i < 8; i++) hub2.append([ev(`r${i}`)]);
    expect(hub2.partitionIds.map((p) => hub2.partition(p).size)).toEqual([2, 2, 2, 2]);
  });

  it('notifies listeners after storing, and not after unsubscribing', () => {
    const hub = new EventLog({ hubs: [{ name: 'h', partitionCount: 1 }] }).hub('h');
    const seen: number[] = [];
    const off = hub.partition('0').onAppend((events) => seen.push(...events.map((e) => e.sequenceNumber)));
    hub.append([ev('a'), ev('b')]);
    off();
    hub.append([ev('c')]);
    expect(seen).toEqual([0, 1]);
  });

  it('isolates a throwing listener from the producer and from other listeners', () => {
    const errors: unknown[] = [];
    const hub = new EventLog({
      hubs: [{ name: 'h', partitionCount: 1 }],
      onListenerError: (e) => errors.push(e),
    }).hub('h');
    let calls = 0;
    hub.partition('0').onAppend(() => {
      throw new Error('consumer bug');
    });
    hub.partition('0').onAppend(() => {
      calls += 1;
    });
    expect(hub.append([ev('a')])).toHaveLength(1);
    expect(calls).toBe(1);
    expect(errors).toHaveLength(1);
  });
});

describe('retention', () => {
  it('evicts by count, by bytes and by age', () => {
    const c = clock();
    const log = new EventLog({
      hubs: [{ name: 'h', partitionCount: 1 }],
      retention: { maxEventsPerPartition: 3, maxBytesPerPartition: 100_000, retentionSecs: 10 },
      now: c.now,
    });
    const p = log.hub('h').partition('0');
    log.hub('h').append([ev('1'), ev('2'), ev('3'), ev('4')]);
    expect(p.read(0, 10).map((e) => e.sequenceNumber)).toEqual([1, 2, 3]);
    c.advance(5_000);
    log.hub('h').append([ev('5')]);
    c.advance(6_000);
    expect(p.read(0, 10).map((e) => e.sequenceNumber)).toEqual([4]);
    c.advance(10_000);
    expect(p.info()).toMatchObject({ isEmpty: true, beginSequenceNumber: 5, lastEnqueuedSequenceNumber: 4 });

    const bytes = new EventLog({
      hubs: [{ name: 'b', partitionCount: 1 }],
      retention: { maxBytesPerPartition: 2048 },
    });
    bytes.hub('b').append(Array.from({ length: 10 }, () => ({ body: Buffer.alloc(500) })));
    expect(bytes.hub('b').partition('0').sizeBytes).toBeLessThanOrEqual(2048);
    expect(bytes.hub('b').partition('0').size).toBe(3);
  });

  it('never holds more than the bounds and reads stay contiguous (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 1, max: 20 }), fc.integer({ min: 0, max: 300 })), {
          maxLength: 60,
        }),
        (ops) => {
          const log = new EventLog({
            hubs: [{ name: 'p', partitionCount: 1 }],
            retention: { maxEventsPerPartition: 25, maxBytesPerPartition: 4096 },
          });
          const p = log.hub('p').partition('0');
          for (const [count, size] of ops) {
            log.hub('p').append(Array.from({ length: count }, () => ({ body: Buffer.alloc(size) })));
            expect(p.size).toBeLessThanOrEqual(25);
            const all = p.read(0, 1000);
            all.forEach((e, i) => {
              if (i > 0) expect(e.sequenceNumber).toBe((all[i - 1]?.sequenceNumber ?? 0) + 1);
            });
            expect(all.at(-1)?.sequenceNumber).toBe(p.endSequenceNumber - 1);
          }
        },
      ),
      { numRuns: 50 },
    );
  });
});

describe('start positions', () => {
  const c = clock();
  const hub = new EventLog({ hubs: [{ name: 'h', partitionCount: 1 }], now: c.now }).hub('h');
  const stored = [0, 1, 2, 3].map((i) => {
    c.advance(1000);
    return hub.append([ev(`e${i}`)])[0];
  });
  const p = hub.partition('0');

  it('resolves offsets, sequence numbers, enqueued times, earliest and latest', () => {
    expect(p.resolve({ kind: 'earliest' })).toBe(0);
    expect(p.resolve({ kind: 'latest' })).toBe(4);
    expect(p.resolve({ kind: 'offset', offset: stored[1]?.offset ?? '', inclusive: false })).toBe(2);
    expect(p.resolve({ kind: 'offset', offset: stored[1]?.offset ?? '', inclusive: true })).toBe(1);
    expect(p.resolve({ kind: 'sequence', sequenceNumber: 2, inclusive: false })).toBe(3);
    expect(p.resolve({ kind: 'sequence', sequenceNumber: 3, inclusive: false })).toBe(4);
    expect(
      p.resolve({ kind: 'enqueued', enqueuedTimeMs: stored[2]?.enqueuedTimeMs ?? 0, inclusive: false }),
    ).toBe(3);
    expect(p.resolve({ kind: 'enqueued', enqueuedTimeMs: 0, inclusive: false })).toBe(0);
    expect(() => p.resolve({ kind: 'sequence', sequenceNumber: 9, inclusive: false })).toThrow(
      PositionOutOfRangeError,
    );
    expect(() => p.resolve({ kind: 'offset', offset: '999999', inclusive: false })).toThrow(
      PositionOutOfRangeError,
    );
  });

  it('parses the selector filters the SDK sends', () => {
    expect(parseSelector("amqp.annotation.x-opt-offset > '-1'")).toEqual({ kind: 'earliest' });
    expect(parseSelector("amqp.annotation.x-opt-offset > '@latest'")).toEqual({ kind: 'latest' });
    expect(parseSelector("amqp.annotation.x-opt-offset >= '120'")).toEqual({
      kind: 'offset',
      offset: '120',
      inclusive: true,
    });
    expect(parseSelector("amqp.annotation.x-opt-sequence-number > '7'")).toEqual({
      kind: 'sequence',
      sequenceNumber: 7,
      inclusive: false,
    });
    expect(parseSelector("amqp.annotation.x-opt-enqueued-time > '1700000000000'")).toEqual({
      kind: 'enqueued',
      enqueuedTimeMs: 1_700_000_000_000,
      inclusive: false,
    });
    expect(parseSelector(undefined)).toEqual({ kind: 'earliest' });
    expect(() => parseSelector('1 = 1')).toThrow(UnsupportedFilterError);
    expect(() => parseSelector("amqp.annotation.x-opt-offset > 'abc'")).toThrow(UnsupportedFilterError);
  });
});

describe('codec', () => {
  it('splits an SDK-style batch into events and carries the envelope partition key', () => {
    const inner = [
      rhea.message.encode({
        body: rhea.message.data_section(Buffer.from('one')),
        application_properties: { n: 1, when: new Date(5) },
        message_id: 'a',
        content_type: 'text/plain',
      }),
      rhea.message.encode({ body: rhea.message.data_section(Buffer.from('two')) }),
    ];
    const envelope = rhea.message.encode({
      body: rhea.message.data_sections(inner),
      message_annotations: { 'x-opt-partition-key': 'k' },
    });
    const events = decodeIncoming(envelope, BATCH_MESSAGE_FORMAT);
    expect(events.map((e) => e.body.toString())).toEqual(['one', 'two']);
    expect(events[0]).toMatchObject({
      properties: { n: 1, when: 5 },
      amqpProperties: { message_id: 'a', content_type: 'text/plain' },
      partitionKey: 'k',
    });
    expect(events[1]?.partitionKey).toBe('k');
    expect(() => decodeIncoming(Buffer.from([1, 2, 3]), BATCH_MESSAGE_FORMAT)).toThrow(MalformedMessageError);
    expect(() => decodeIncoming(Buffer.from([1]), 7)).toThrow(MalformedMessageError);
    const single = decodeIncoming({ body: 'plain' } as Message, 0);
    expect(single[0]?.body.toString()).toBe('plain');
  });

  it('encodes a stored event with x-opt annotations, stored annotations and runtime info', () => {
    const message = encodeOutgoing(
      {
        body: Buffer.from('x'),
        properties: { a: 1 },
        annotations: { 'iothub-connection-device-id': 'd1', 'x-opt-offset': 'spoofed' },
        amqpProperties: { message_id: 'm', user_id: 'u' },
        partitionKey: 'pk',
        sequenceNumber: 5,
        offset: '640',
        enqueuedTimeMs: 1000,
      },
      { lastSequenceNumber: 9, lastOffset: '900', lastEnqueuedTimeMs: 2000 },
      3000,
    );
    const decoded = rhea.message.decode(rhea.message.encode(message)) as unknown as Message;
    expect(decoded.message_annotations).toMatchObject({
      'x-opt-sequence-number': 5,
      'x-opt-offset': '640',
      'x-opt-partition-key': 'pk',
      'iothub-connection-device-id': 'd1',
    });
    expect(decoded.message_annotations?.['x-opt-enqueued-time']).toEqual(new Date(1000));
    expect(decoded.delivery_annotations).toMatchObject({
      last_enqueued_sequence_number: 9,
      last_enqueued_offset: '900',
    });
    expect(decoded.message_id).toBe('m');
    expect(Buffer.isBuffer(decoded.user_id)).toBe(true);
    expect(decoded.application_properties).toEqual({ a: 1 });
  });
});
