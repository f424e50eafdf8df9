import { randomBytes, randomInt } from 'node:crypto';
import sparkplug from 'sparkplug-payload';
import { BufferPool, type PerfFields } from '../common/index.js';
import type { SimulatorFormat } from './settings.js';
import { perfToSparkplugMetrics } from './sparkplug-perf.js';

/**
 * Message bodies the simulator publishes.
 *
 * JSON (`format: json`): `{"perf":{"sid":…,"burst":…,"seq":…,"ts":…,"vc":…,"dev":…},"payload":"…"}`.
 * `payload` is a random alphanumeric string sized so the whole UTF-8 body is exactly
 * `payloadLength` bytes; when `payloadLength` is smaller than the body without padding (about
 * 90–130 bytes, depending on the ids), the body is that minimum and `payload` is empty.
 *
 * Sparkplug B (`format: sparkplug`): a DDATA payload (protobuf, `sparkplug-payload`) whose
 * `timestamp` is the creation time and whose metrics are the perf fields (sparkplug-perf.ts) plus
 * a String metric `payload` holding the padding. The padding is sized so the encoded protobuf is
 * exactly `payloadLength` bytes (same minimum rule as JSON), except at the few sizes where a
 * protobuf length prefix grows by a byte, which are unreachable: those come out 1–2 bytes short.
 * Only DDATA is sent, no NBIRTH/DBIRTH: every metric is named in every message, no alias is used.
 */

/** Name of the Sparkplug metric (String) holding the random padding. */
export const SPARKPLUG_PADDING_METRIC = 'payload';

const sp = sparkplug.get('spBv1.0');
if (sp === null) throw new Error('sparkplug-payload lacks the spBv1.0 namespace');
const spb = sp;

type SparkplugPayload = Parameters<typeof spb.encodePayload>[0];

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
// Padding is a random slice of one pre-generated pool: random enough that compression cannot
// shrink it much, and it costs no randomness per message at 2,000 msg/s.
const POOL_EXTRA = 64 * 1024;
/**
 * Acknowledged JSON bodies kept for reuse, at most this many and {@link SPARE_MAX_BYTES}. At
 * 8 KB a new body per message was a new ArrayBuffer per message, and V8 starts collections on
 * the external memory those add up to (`--trace-gc` of the simulator).
 */
const SPARE_MAX_BODIES = 64;
const SPARE_MAX_BYTES = 4 * 1024 * 1024;

/** Builds message bodies of one format and size; one per run, reused for every message. */
export class PayloadBuilder {
  readonly format: SimulatorFormat;
  readonly payloadLength: number;
  private readonly pool: string;
  /** `pool` as bytes: JSON padding is copied from here, with no string per message. */
  private readonly poolBytes: Buffer;
  private spSeq = 0;
  private readonly bodies: BufferPool;

  /**
   * @param format - body format.
   * @param payloadLength - target body size in bytes.
   */
  constructor(format: SimulatorFormat, payloadLength: number) {
    this.format = format;
    this.payloadLength = payloadLength;
    this.pool = randomAlphanumeric(payloadLength + POOL_EXTRA);
    this.poolBytes = Buffer.from(this.pool, 'latin1');
    const keep = Math.min(SPARE_MAX_BODIES, Math.floor(SPARE_MAX_BYTES / Math.max(1, payloadLength)));
    this.bodies = new BufferPool(payloadLength, keep);
  }

  /**
   * Encodes one message carrying `perf`; the result is `payloadLength` bytes when that is reachable.
   * The body may be one given back earlier with {@link release}.
   */
  build(perf: PerfFields): Buffer {
    return this.format === 'sparkplug' ? this.buildSparkplug(perf) : this.buildJson(perf);
  }

  /**
   * Gives back a body from {@link build} once its publisher is done with it (acknowledged): it
   * may be written over by a later `build`. Never release a body whose publish failed, because
   * the client may still hold it to resend. Bodies not lent by this builder are ignored.
   */
  release(body: Buffer): void {
    this.bodies.give(body);
  }

  /** Padding for Sparkplug's String metric. */
  private padding(length: number): string {
    if (length <= 0) return '';
    const start = randomInt(0, this.pool.length - length + 1);
    return this.pool.slice(start, start + length);
  }

  private buildJson(perf: PerfFields): Buffer {
    const head = `{"perf":${JSON.stringify(perf)},"payload":"`;
    const headBytes = Buffer.byteLength(head);
    const padLength = Math.max(0, this.payloadLength - headBytes - 2);
    const length = headBytes + padLength + 2;
    // Bodies of the target size are reused; a minimum body (target unreachable) is not.
    const body = this.bodies.take(length) ?? Buffer.allocUnsafe(length);
    body.write(head, 0, headBytes, 'utf8');
    // Padding is copied from the pool's bytes: building an 8 KB string and encoding it cost a
    // quarter of the simulator's CPU at 8 KB (--cpu-prof).
    const start = padLength === 0 ? 0 : randomInt(0, this.poolBytes.length - padLength + 1);
    this.poolBytes.copy(body, headBytes, start, start + padLength);
    body[length - 2] = 0x22; // "
    body[length - 1] = 0x7d; // }
    return body;
  }

  private buildSparkplug(perf: PerfFields): Buffer {
    // Sparkplug's payload seq wraps at 256 (spec); the gap-free number is perf/seq.
    const seq = this.spSeq;
    this.spSeq = (this.spSeq + 1) % 256;
    const metrics = perfToSparkplugMetrics(perf);
    const encode = (pad: string): Uint8Array =>
      spb.encodePayload({
        timestamp: perf.ts,
        seq,
        metrics: [...metrics, { name: SPARKPLUG_PADDING_METRIC, type: 'String', value: pad }],
      });
    let body = encode('');
    let padLength = this.payloadLength - body.length;
    // Varint length prefixes grow with the padding, so converge in a few re-encodes. Where a prefix
    // grows by a byte exactly at the target, the target is unreachable: settle 1–2 bytes short.
    for (let i = 0; i < 3 && padLength > 0 && body.length !== this.payloadLength; i++) {
      body = encode(this.padding(padLength));
      padLength += this.payloadLength - body.length;
    }
    for (let i = 0; i < 3 && body.length > this.payloadLength && padLength > 0; i++) {
      padLength--;
      body = encode(this.padding(padLength));
    }
    return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  }
}

/** Decodes a Sparkplug B payload (convenience for tests and decoders). */
export function decodeSparkplug(body: Uint8Array): SparkplugPayload {
  return spb.decodePayload(body);
}

function randomAlphanumeric(length: number): string {
  const bytes = randomBytes(length);
  let out = '';
  // 62 symbols: the modulo bias is irrelevant for padding.
  for (let i = 0; i < length; i++) out += ALPHABET[(bytes[i] as number) % ALPHABET.length];
  return out;
}
