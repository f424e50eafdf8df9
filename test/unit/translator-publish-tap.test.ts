import { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { TappedPublish } from '../../modules/translator/source/publish-tap.js';
import { PublishTap } from '../../modules/translator/source/publish-tap.js';
import { remainingLength } from './mqtt-length.js';

// MQTT packets written by hand from the spec (3.1.1 §2.2, §3.3; 5.0 §3.3.2.3), so the tap is
// checked against the wire format rather than against another parser.
interface PublishSpec {
  topic: string;
  payload: Buffer;
  qos: 0 | 1 | 2;
  messageId?: number;
  dup?: boolean;
  /** v5 property bytes (already encoded); omitted for 3.1.1. */
  properties?: Buffer;
}

function publish(p: PublishSpec): Buffer {
  const topic = Buffer.from(p.topic, 'utf8');
  const parts: Buffer[] = [Buffer.from([topic.length >> 8, topic.length & 0xff]), topic];
  if (p.qos > 0) parts.push(Buffer.from([(p.messageId ?? 1) >> 8, (p.messageId ?? 1) & 0xff]));
  if (p.properties) parts.push(remainingLength(p.properties.length), p.properties);
  parts.push(p.payload);
  const body = Buffer.concat(parts);
  const first = 0x30 | (p.dup ? 0x08 : 0) | (p.qos << 1);
  return Buffer.concat([Buffer.from([first]), remainingLength(body.length), body]);
}

const SUBACK = Buffer.from([0x90, 0x03, 0x00, 0x01, 0x01]);
const PINGRESP = Buffer.from([0xd0, 0x00]);

/** A socket stand-in: `feed` makes bytes arrive; `written` holds what the tap wrote. */
function fakeSocket() {
  const written: Buffer[] = [];
  const socket = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, cb) {
      written.push(chunk);
      cb();
    },
  });
  return { socket, written, feed: (b: Buffer) => socket.push(b) };
}

/** Deterministic chunk sizes from 1 byte to 20 KB. */
function* chunks(all: Buffer, seed: number): Generator<Buffer> {
  let x = seed;
  for (let at = 0; at < all.length; ) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    const size = x % 7 === 0 ? 1 : 1 + (x % 20_000);
    yield all.subarray(at, at + size);
    at += size;
  }
}

const tick = () => new Promise((r) => setImmediate(r));

async function readAll(tap: PublishTap): Promise<Buffer> {
  const parts: Buffer[] = [];
  let chunk: Buffer | null;
  // biome-ignore lint/suspicious/noAssignInExpressions: the stream read loop
  while ((chunk = tap.read() as Buffer | null) !== null) parts.push(chunk);
  return Buffer.concat(parts);
}

function expectSame(got: TappedPublish[], want: PublishSpec[]): void {
  expect(got.map((g) => [g.topic, g.qos, g.messageId, g.dup, g.payload.toString('hex')])).toEqual(
    want.map((w) => [
      w.topic,
      w.qos,
      w.qos === 0 ? 0 : (w.messageId ?? 1),
      w.dup ?? false,
      w.payload.toString('hex'),
    ]),
  );
}

describe('PublishTap', () => {
  const specs: PublishSpec[] = [
    { topic: 'plant/a/t', payload: Buffer.from('{"v":1}'), qos: 1, messageId: 1 },
    { topic: 'plant/ä/€', payload: Buffer.alloc(0), qos: 0 },
    { topic: 'x', payload: Buffer.alloc(200_000, 7), qos: 1, messageId: 65535, dup: true },
    { topic: 'y/z', payload: Buffer.alloc(127, 1), qos: 1, messageId: 300 },
    { topic: 'y/z', payload: Buffer.alloc(16_384, 2), qos: 0 },
  ];

  for (const seed of [1, 2, 3, 42]) {
    it(`takes QoS 0/1 PUBLISHes off a stream split anywhere (seed ${seed}) and passes the rest on`, async () => {
      const qos2 = publish({ topic: 'q2', payload: Buffer.from('two'), qos: 2, messageId: 9 });
      const stream = Buffer.concat([
        SUBACK,
        publish(specs[0] as PublishSpec),
        publish(specs[1] as PublishSpec),
        qos2,
        publish(specs[2] as PublishSpec),
        PINGRESP,
        publish(specs[3] as PublishSpec),
        publish(specs[4] as PublishSpec),
      ]);
      const { socket, feed } = fakeSocket();
      const got: TappedPublish[] = [];
      const tap = new PublishTap(socket, 4, (_t, p) => {
        got.push({ ...p, payload: Buffer.from(p.payload) });
        return undefined;
      });
      for (const c of chunks(stream, seed)) {
        feed(c);
        await tick();
      }
      expectSame(got, specs);
      expect((await readAll(tap)).toString('hex')).toBe(
        Buffer.concat([SUBACK, qos2, PINGRESP]).toString('hex'),
      );
    });
  }

  it('skips MQTT 5 properties between the packet identifier and the payload', async () => {
    // Payload format indicator (0x01) = 1, then a user property (0x26) "k" = "v".
    const properties = Buffer.from([0x01, 0x01, 0x26, 0x00, 0x01, 0x6b, 0x00, 0x01, 0x76]);
    const v5: PublishSpec[] = [
      { topic: 'a', payload: Buffer.from('one'), qos: 1, messageId: 5, properties },
      { topic: 'b', payload: Buffer.from('two'), qos: 0, properties: Buffer.alloc(0) },
    ];
    const { socket, feed } = fakeSocket();
    const got: TappedPublish[] = [];
    new PublishTap(socket, 5, (_t, p) => {
      got.push(p);
      return undefined;
    });
    feed(Buffer.concat(v5.map(publish)));
    await tick();
    expectSame(got, v5);
  });

  it('stops reading the socket while the handler holds, then goes on where it stopped', async () => {
    const list: PublishSpec[] = [1, 2, 3, 4].map((i) => ({
      topic: 't',
      payload: Buffer.from(String(i)),
      qos: 1,
      messageId: i,
    }));
    const { socket, feed } = fakeSocket();
    const got: string[] = [];
    let release: () => void = () => {};
    new PublishTap(socket, 4, (_t, p) => {
      got.push(p.payload.toString());
      return p.messageId === 2 ? new Promise<void>((r) => (release = r)) : undefined;
    });
    feed(Buffer.concat(list.map(publish)));
    await tick();
    expect(got).toEqual(['1', '2']);
    expect(socket.isPaused()).toBe(true);
    feed(publish({ topic: 't', payload: Buffer.from('5'), qos: 1, messageId: 5 }));
    await tick();
    expect(got).toEqual(['1', '2']);
    release();
    await tick();
    expect(got).toEqual(['1', '2', '3', '4', '5']);
    expect(socket.isPaused()).toBe(false);
  });

  it('hands whole packets over as views of their socket chunk and copies only a packet that spans chunks', async () => {
    const a = publish({ topic: 'a', payload: Buffer.alloc(3000, 1), qos: 1, messageId: 1 });
    const b = publish({ topic: 'b', payload: Buffer.alloc(3000, 2), qos: 1, messageId: 2 });
    const c = publish({ topic: 'c', payload: Buffer.alloc(3000, 3), qos: 1, messageId: 3 });
    const first = Buffer.concat([a, b.subarray(0, 1000)]);
    const second = Buffer.concat([b.subarray(1000), c]);
    const { socket, feed } = fakeSocket();
    const got: TappedPublish[] = [];
    new PublishTap(socket, 4, (_t, p) => {
      got.push(p);
      return undefined;
    });
    feed(first);
    await tick();
    feed(second);
    await tick();
    expect(got.map((g) => [g.topic, g.payload[0], g.payload.length])).toEqual([
      ['a', 1, 3000],
      ['b', 2, 3000],
      ['c', 3, 3000],
    ]);
    // Joining the unparsed tail to each new chunk copied every byte read (and made V8 collect).
    expect(got[0]?.payload.buffer).toBe(first.buffer);
    expect(got[1]?.payload.buffer).not.toBe(first.buffer);
    expect(got[1]?.payload.buffer).not.toBe(second.buffer);
    expect(got[2]?.payload.buffer).toBe(second.buffer);
  });

  it('reads every chunk that arrived while it held, in order, splits inside headers included', async () => {
    const list: PublishSpec[] = [1, 2, 3, 4, 5, 6].map((i) => ({
      topic: `t/${i}`,
      payload: Buffer.alloc(i * 700, i),
      qos: 1,
      messageId: i,
    }));
    const stream = Buffer.concat(list.map(publish));
    const { socket, feed } = fakeSocket();
    const got: TappedPublish[] = [];
    let release: () => void = () => {};
    new PublishTap(socket, 4, (_t, p) => {
      got.push({ ...p, payload: Buffer.from(p.payload) });
      return p.messageId === 1 ? new Promise<void>((r) => (release = r)) : undefined;
    });
    // One byte after the first packet's header byte, then the rest in pieces of 1 and 333 bytes.
    const cuts = [2, 3, 4, 336, 337, 670, 671, 2000, 2001, 2002];
    let at = 0;
    for (const cut of [...cuts, stream.length]) {
      feed(stream.subarray(at, cut));
      at = cut;
    }
    await tick();
    expect(got.map((g) => g.messageId)).toEqual([1]);
    release();
    await tick();
    expectSame(got, list);
  });

  it('fails the connection on a malformed length split across chunks', async () => {
    const { socket, feed } = fakeSocket();
    const tap = new PublishTap(socket, 4, () => undefined);
    const errors: Error[] = [];
    tap.on('error', (e) => errors.push(e));
    feed(Buffer.from([0x30, 0xff, 0xff]));
    await tick();
    expect(errors).toEqual([]);
    feed(Buffer.from([0xff, 0xff, 0x01]));
    await tick();
    expect(errors.map((e) => e.message)).toEqual(['source: malformed MQTT remaining length']);
  });

  it('passes writes to the socket and fails the connection on a malformed length', async () => {
    const { socket, written, feed } = fakeSocket();
    const tap = new PublishTap(socket, 4, () => undefined);
    const errors: Error[] = [];
    tap.on('error', (e) => errors.push(e));
    tap.write(Buffer.from([0x40, 0x02, 0x00, 0x01]));
    await tick();
    expect(Buffer.concat(written).toString('hex')).toBe('40020001');
    feed(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]));
    await tick();
    expect(errors.map((e) => e.message)).toEqual(['source: malformed MQTT remaining length']);
    expect(socket.destroyed).toBe(true);
  });
});
