import { randomBytes, randomInt } from 'node:crypto';
import sparkplug from 'sparkplug-payload';
import type { PerfFields } from '../common/index.js';
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

/** Builds message bodies of one format and size; one per run, reused for every message. */
export class PayloadBuilder {
  readonly format: SimulatorFormat;
  readonly payloadLength: number;
  private readonly pool: string;
  private spSeq = 0;

  /**
   * @param format - body format.
   * @param payloadLength - target body size in bytes.
   */
  constructor(format: SimulatorFormat, payloadLength: number) {
    this.format = format;
    this.payloadLength = payloadLength;
    this.pool = randomAlphanumeric(payloadLength + POOL_EXTRA);
  }

  /** Encodes one message carrying `perf`; the result is `payloadLength` bytes when that is reachable. */
  build(perf: PerfFields): Buffer {
    return this.format === 'sparkplug' ? this.buildSparkplug(perf) : this.buildJson(perf);
  }

  private padding(length: number): string {
    if (length <= 0) return '';
    const start = randomInt(0, this.pool.length - length + 1);
    return this.pool.slice(start, start + length);
  }

  private buildJson(perf: PerfFields): Buffer {
    const head = `{"perf":${JSON.stringify(perf)},"payload":"`;
    const tail = '"}';
    // sid and dev are validated ASCII, so string length equals byte length here.
    const base = Buffer.byteLength(head) + tail.length;
    return Buffer.from(head + this.padding(this.payloadLength - base) + tail, 'utf8');
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
