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
  /** Unparsed bytes start at `pos` in `buf`; later chunks wait in `more`, in order. */
  private buf: Buffer | undefined;
  private pos = 0;
  private more: Buffer[] = [];
  private moreBytes = 0;
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
    if (this.buf === undefined && this.more.length === 0) {
      this.buf = chunk;
      this.pos = 0;
    } else {
      this.more.push(chunk);
      this.moreBytes += chunk.length;
    }
    if (!this.held) this.parse();
  }

  /**
   * Takes whole packets off the chunks in place; only a packet that spans chunks is copied, once
   * it is whole. Why: joining the unparsed tail to the next socket chunk copied every byte the
   * translator read (a 64 KiB chunk per read at 8 KB messages), and each such copy is a new
   * ArrayBuffer: with the batch copies it made V8 start a mark-compact about twice a second for
   * "external memory pressure" (`--trace-incremental-marking`).
   */
  private parse(): void {
    while (!this.held && !this.destroyed) {
      let buf = this.buf;
      if (buf === undefined) {
        const next = this.more.shift();
        if (next === undefined) return;
        this.moreBytes -= next.length;
        this.buf = buf = next;
        this.pos = 0;
      }
      const header = readHeader(buf, this.pos);
      if (header === MALFORMED) {
        this.destroy(new Error('source: malformed MQTT remaining length'));
        return;
      }
      const end = header === INCOMPLETE ? Number.POSITIVE_INFINITY : header + readRemaining(buf, this.pos);
      if (end > buf.length) {
        if (!this.bridge()) return;
        continue;
      }
      const start = this.pos;
      this.pos = end;
      if (end === buf.length) this.buf = undefined;
      this.packet(buf, start, header, end);
    }
  }

  /** One whole packet `[start, end)` of `buf`, its variable header at `header`. */
  private packet(buf: Buffer, start: number, header: number, end: number): void {
    const first = buf[start] as number;
    const qos = (first >> 1) & 3;
    if (first >> 4 !== PUBLISH || qos > 1 || !this.deliver(buf, first, qos, header, end)) {
      this.push(buf.subarray(start, end));
    }
  }

  /**
   * Replaces the partial packet at the end of `buf` with a copy of the whole packet, taken from the
   * chunks that follow; false (nothing changed) until enough bytes have arrived.
   */
  private bridge(): boolean {
    const buf = this.buf as Buffer;
    const rest = buf.length - this.pos;
    // The fixed header is at most 5 bytes: read it across the chunk boundary first.
    const head = this.peek(buf.subarray(this.pos), 5);
    const header = readHeader(head, 0);
    if (header === MALFORMED) {
      this.destroy(new Error('source: malformed MQTT remaining length'));
      return false;
    }
    if (header === INCOMPLETE) return false;
    const total = header + readRemaining(head, 0);
    if (rest + this.moreBytes < total) return false;
    const whole = Buffer.allocUnsafe(total);
    buf.copy(whole, 0, this.pos);
    let filled = rest;
    while (filled < total) {
      const c = this.more[0] as Buffer;
      const take = Math.min(c.length, total - filled);
      c.copy(whole, filled, 0, take);
      filled += take;
      this.moreBytes -= take;
      if (take === c.length) this.more.shift();
      else this.more[0] = c.subarray(take);
    }
    this.buf = whole;
    this.pos = 0;
    return true;
  }

  /** Up to `n` bytes: `first`, then the waiting chunks (a copy only when `first` is shorter). */
  private peek(first: Buffer, n: number): Buffer {
    if (first.length >= n || this.more.length === 0) return first;
    const parts = [first];
    let have = first.length;
    for (const c of this.more) {
      if (have >= n) break;
      parts.push(c.subarray(0, n - have));
      have += Math.min(c.length, n - have);
    }
    return Buffer.concat(parts, have);
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
