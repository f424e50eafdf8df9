import { Duplex } from 'node:stream';

/** One inbound QoS 0 or 1 PUBLISH, read off the byte stream by {@link PublishTap}. */
export interface TappedPublish {
  readonly topic: string;
  /** A view into the socket's chunk; valid for as long as it is referenced. */
  readonly payload: Buffer;
  readonly qos: 0 | 1;
  readonly dup: boolean;
  /** Packet identifier (QoS 1); 0 for QoS 0. */
  readonly messageId: number;
}

/**
 * Receives each tapped PUBLISH. Return a promise to stop reading the socket (and so push back on
 * the broker through TCP) until it settles; it must not reject.
 */
export type TappedPublishHandler = (tap: PublishTap, publish: TappedPublish) => Promise<void> | undefined;

const PUBLISH = 3;

/**
 * A duplex between MQTT.js and its socket that takes inbound QoS 0 and 1 PUBLISH packets off the
 * byte stream and hands them to a handler; every other packet (CONNACK, SUBACK, PINGRESP, QoS 2,
 * anything unusual) goes on to MQTT.js unchanged, which keeps the connection, keepalive,
 * reconnects and subscriptions. Writes pass straight to the socket.
 *
 * Why: MQTT.js costs about 17 µs of CPU per received message (its stream plumbing, mqtt-packet's
 * parser, a packet object and a tick per message), half of the translator's CPU at 1 KB
 * (`npm run bench -- --cpu-prof`). Here a message is a header read and two slices.
 *
 * MQTT 3.1.1 §2.2 and §3.3; MQTT 5 adds a property block after the packet identifier, which is
 * skipped. A PUBLISH with an empty topic (a v5 topic alias, which we never allow) goes to MQTT.js.
 */
export class PublishTap extends Duplex {
  private readonly inner: Duplex;
  private readonly v5: boolean;
  private readonly handler: TappedPublishHandler;
  /** Unparsed bytes start at `pos` in `buf`; later chunks wait in `more` until a packet is whole. */
  private buf: Buffer | undefined;
  private pos = 0;
  private more: Buffer[] = [];
  private moreBytes = 0;
  /** Bytes from `pos` that the next packet needs; 0 when unknown. */
  private need = 0;
  private held = false;

  constructor(inner: Duplex, protocolVersion: 4 | 5, handler: TappedPublishHandler) {
    super({ allowHalfOpen: false });
    this.inner = inner;
    this.v5 = protocolVersion === 5;
    this.handler = handler;
    inner.on('data', (chunk: Buffer) => this.onData(chunk));
    inner.on('end', () => this.push(null));
    inner.on('error', (err) => this.destroy(err));
    inner.on('close', () => this.destroy());
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.inner.write(chunk, callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.inner.end(callback);
  }

  override _read(): void {
    // Control packets are few and small: they are pushed as they come.
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.buf = undefined;
    this.more = [];
    this.inner.destroy(error ?? undefined);
    callback(error);
  }

  private onData(chunk: Buffer): void {
    if (this.buf === undefined) {
      this.buf = chunk;
      this.pos = 0;
    } else {
      this.more.push(chunk);
      this.moreBytes += chunk.length;
      // Join only once the waiting packet is whole: a large packet over many chunks is copied once.
      if (this.held || this.buf.length - this.pos + this.moreBytes < this.need) return;
      this.buf = Buffer.concat([this.buf.subarray(this.pos), ...this.more]);
      this.pos = 0;
      this.more = [];
      this.moreBytes = 0;
    }
    this.parse();
  }

  private parse(): void {
    const buf = this.buf;
    if (buf === undefined) return;
    let pos = this.pos;
    while (!this.held) {
      const header = readHeader(buf, pos);
      if (header === MALFORMED) {
        this.destroy(new Error('source: malformed MQTT remaining length'));
        return;
      }
      if (header === INCOMPLETE) {
        this.need = 0;
        break;
      }
      const end = header + readRemaining(buf, pos);
      if (end > buf.length) {
        this.need = end - pos;
        break;
      }
      const first = buf[pos] as number;
      const qos = (first >> 1) & 3;
      if (first >> 4 !== PUBLISH || qos > 1 || !this.deliver(buf, first, qos, header, end)) {
        this.push(buf.subarray(pos, end));
      }
      // The handler may have stopped the source, which destroys this stream.
      if (this.destroyed) return;
      pos = end;
    }
    if (pos >= buf.length) {
      this.buf = undefined;
      this.pos = 0;
    } else {
      this.pos = pos;
    }
  }

  /** Hands one PUBLISH to the handler; false when it must go to MQTT.js instead. */
  private deliver(buf: Buffer, first: number, qos: number, start: number, end: number): boolean {
    const topicLength = ((buf[start] as number) << 8) | (buf[start + 1] as number);
    if (topicLength === 0) return false;
    let p = start + 2 + topicLength;
    const topic = buf.toString('utf8', start + 2, p);
    let messageId = 0;
    if (qos === 1) {
      messageId = ((buf[p] as number) << 8) | (buf[p + 1] as number);
      p += 2;
    }
    if (this.v5) {
      const h = readHeader(buf, p - 1);
      if (h < 0) return false;
      p = h + readRemaining(buf, p - 1);
    }
    if (p > end) return false;
    const hold = this.handler(this, {
      topic,
      payload: buf.subarray(p, end),
      qos: qos as 0 | 1,
      dup: (first & 0x08) !== 0,
      messageId,
    });
    if (hold !== undefined) this.holdUntil(hold);
    return true;
  }

  private holdUntil(hold: Promise<void>): void {
    this.held = true;
    this.inner.pause();
    void hold.then(() => {
      this.held = false;
      if (this.destroyed) return;
      this.inner.resume();
      if (this.more.length > 0) {
        const rest = this.buf === undefined ? [] : [this.buf.subarray(this.pos)];
        this.buf = Buffer.concat([...rest, ...this.more]);
        this.pos = 0;
        this.more = [];
        this.moreBytes = 0;
      }
      this.parse();
    });
  }
}

const INCOMPLETE = -1;
const MALFORMED = -2;

/**
 * Reads the fixed header at `pos` (one byte, then the variable-length remaining length, §2.2.3).
 * Returns where the variable header starts, or INCOMPLETE / MALFORMED. Also used for the v5
 * property length, which has the same encoding (called with `pos` one byte before it).
 */
function readHeader(buf: Buffer, pos: number): number {
  for (let i = 1; i <= 4; i++) {
    const at = pos + i;
    if (at >= buf.length) return INCOMPLETE;
    if (((buf[at] as number) & 0x80) === 0) return at + 1;
  }
  return MALFORMED;
}

/** The remaining length at `pos` (the header must be complete). */
function readRemaining(buf: Buffer, pos: number): number {
  let value = 0;
  let mul = 1;
  for (let i = 1; i <= 4; i++) {
    const b = buf[pos + i] as number;
    value += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) break;
    mul *= 128;
  }
  return value;
}
