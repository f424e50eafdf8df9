import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import {
  guardAmqpFrameSize,
  guardMqttPacketSize,
  type OversizedFrame,
} from '../../emulator/edgehub/frame-guard.js';
import { remainingLength } from './mqtt-length.js';

// The guards only watch 'data' and call destroy(); a bare emitter stands in for the TLS socket.
function fakeSocket() {
  const emitter = new EventEmitter();
  let destroyed = 0;
  const socket = Object.assign(emitter, {
    destroy: () => {
      destroyed += 1;
    },
  }) as unknown as Socket;
  return { socket, destroyed: () => destroyed };
}

/** Feeds `bytes` split at every position into two chunks, and byte by byte. */
function splits(bytes: Buffer): Buffer[][] {
  const out: Buffer[][] = [[bytes], [...bytes].map((b) => Buffer.from([b]))];
  for (let i = 1; i < bytes.length; i++) out.push([bytes.subarray(0, i), bytes.subarray(i)]);
  return out;
}

function mqttPacket(type: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([type]), remainingLength(body.length), body]);
}

function amqpFrame(size: number): Buffer {
  const f = Buffer.alloc(Math.max(size, 8));
  f.writeUInt32BE(size, 0);
  f[4] = 2;
  return f;
}

describe('guardMqttPacketSize', () => {
  it('lets packets up to the limit through, however the stream is split', () => {
    const stream = Buffer.concat([
      mqttPacket(0x10, Buffer.alloc(200, 1)),
      mqttPacket(0xc0, Buffer.alloc(0)),
      mqttPacket(0x30, Buffer.alloc(1000, 2)),
    ]);
    for (const chunks of splits(stream)) {
      const { socket, destroyed } = fakeSocket();
      guardMqttPacketSize(socket, 1000, () => undefined);
      for (const c of chunks) socket.emit('data', c);
      expect(destroyed()).toBe(0);
    }
  });

  it('drops a packet announcing more than the limit, once, even when the length is split', () => {
    const stream = Buffer.concat([
      mqttPacket(0xc0, Buffer.alloc(0)),
      Buffer.from([0x10, 0x80, 0x80, 0x80, 0x04]),
    ]);
    for (const chunks of splits(stream)) {
      const { socket, destroyed } = fakeSocket();
      const seen: OversizedFrame[] = [];
      guardMqttPacketSize(socket, 1024 * 1024, (i) => seen.push(i));
      for (const c of chunks) socket.emit('data', c);
      socket.emit('data', Buffer.alloc(10));
      expect(destroyed()).toBe(1);
      expect(seen).toHaveLength(1);
    }
  });
});

describe('guardAmqpFrameSize', () => {
  it('skips protocol headers and frames up to the limit, however the stream is split', () => {
    const stream = Buffer.concat([
      Buffer.from('AMQP\x03\x01\x00\x00', 'latin1'),
      amqpFrame(30),
      Buffer.from('AMQP\x00\x01\x00\x00', 'latin1'),
      amqpFrame(500),
      amqpFrame(8),
    ]);
    for (const chunks of splits(stream)) {
      const { socket, destroyed } = fakeSocket();
      guardAmqpFrameSize(socket, 500, () => undefined);
      for (const c of chunks) socket.emit('data', c);
      expect(destroyed()).toBe(0);
    }
  });

  it('drops a frame announcing more than the limit', () => {
    const big = Buffer.alloc(8);
    big.writeUInt32BE(501, 0);
    const stream = Buffer.concat([Buffer.from('AMQP\x00\x01\x00\x00', 'latin1'), amqpFrame(20), big]);
    for (const chunks of splits(stream)) {
      const { socket, destroyed } = fakeSocket();
      const seen: OversizedFrame[] = [];
      guardAmqpFrameSize(socket, 500, (i) => seen.push(i));
      for (const c of chunks) socket.emit('data', c);
      expect(destroyed()).toBe(1);
      expect(seen).toEqual([{ announcedBytes: 501, maxBytes: 500 }]);
    }
  });
});
