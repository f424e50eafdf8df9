import type { Socket } from 'node:net';

/**
 * Largest MQTT packet or AMQP frame the edgeHub endpoints accept, bytes (1 MiB). IoT Hub's message
 * limit is 256 KiB; the rest is headroom for topics, properties and framing.
 */
export const MAX_WIRE_FRAME_BYTES = 1024 * 1024;

/** What {@link guardMqttPacketSize} and {@link guardAmqpFrameSize} report when they drop a peer. */
export interface OversizedFrame {
  /** Size the peer announced, bytes (MQTT: remaining length; AMQP: frame size). */
  readonly announcedBytes: number;
  /** The limit it exceeded, bytes. */
  readonly maxBytes: number;
}

// Neither aedes (mqtt-packet) nor rhea has a size limit: both buffer whatever length a peer
// announces (up to 256 MB for MQTT, 4 GB for AMQP) before parsing. These guards watch the
// socket's bytes alongside the parser and destroy the socket as soon as an announced size
// exceeds the limit, so an oversized or hostile frame costs at most one read of memory.

/**
 * Watches an MQTT byte stream (after TLS) and destroys the socket when a packet's remaining
 * length exceeds `maxBytes`. Calls `onTooLarge` once before destroying.
 */
export function guardMqttPacketSize(
  socket: Socket,
  maxBytes: number,
  onTooLarge: (info: OversizedFrame) => void,
): void {
  // state: 'header' waits for the fixed-header byte, 'length' reads the variable byte integer,
  // 'body' skips `remaining` bytes.
  let state: 'header' | 'length' | 'body' = 'header';
  let remaining = 0;
  let multiplier = 1;
  let lengthBytes = 0;
  const onData = (chunk: Buffer) => {
    let i = 0;
    while (i < chunk.length) {
      if (state === 'body') {
        const skip = Math.min(remaining, chunk.length - i);
        i += skip;
        remaining -= skip;
        if (remaining === 0) state = 'header';
        continue;
      }
      const byte = chunk[i++] as number;
      if (state === 'header') {
        state = 'length';
        remaining = 0;
        multiplier = 1;
        lengthBytes = 0;
        continue;
      }
      remaining += (byte & 0x7f) * multiplier;
      multiplier *= 128;
      lengthBytes += 1;
      if (remaining > maxBytes) return drop(remaining);
      if ((byte & 0x80) === 0) state = remaining === 0 ? 'header' : 'body';
      else if (lengthBytes >= 4) return drop(remaining); // malformed; the parser refuses it too
    }
  };
  const drop = (announcedBytes: number) => {
    socket.off('data', onData);
    onTooLarge({ announcedBytes, maxBytes });
    socket.destroy();
  };
  socket.on('data', onData);
}

const AMQP_HEADER = Buffer.from('AMQP');

/**
 * Watches an AMQP 1.0 byte stream (after TLS; SASL and AMQP protocol headers included) and
 * destroys the socket when a frame announces more than `maxBytes`. Calls `onTooLarge` once first.
 */
export function guardAmqpFrameSize(
  socket: Socket,
  maxBytes: number,
  onTooLarge: (info: OversizedFrame) => void,
): void {
  let pending = Buffer.alloc(0); // at most 7 bytes of an unfinished header or size field
  let skip = 0;
  const onData = (chunk: Buffer) => {
    let buf = pending.length > 0 ? Buffer.concat([pending, chunk]) : chunk;
    pending = Buffer.alloc(0);
    while (buf.length > 0) {
      if (skip > 0) {
        const n = Math.min(skip, buf.length);
        skip -= n;
        buf = buf.subarray(n);
        continue;
      }
      if (buf.length < 4) break;
      if (buf.subarray(0, 4).equals(AMQP_HEADER)) {
        // protocol header (AMQP, SASL or TLS id): 8 bytes
        skip = 8;
        continue;
      }
      const size = buf.readUInt32BE(0);
      if (size > maxBytes) {
        socket.off('data', onData);
        onTooLarge({ announcedBytes: size, maxBytes });
        socket.destroy();
        return;
      }
      // A size below the 8-byte frame header is malformed; rhea refuses it, skip past it here.
      skip = Math.max(size, 8);
    }
    pending = Buffer.from(buf);
  };
  socket.on('data', onData);
}
