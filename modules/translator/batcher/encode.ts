import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import type { EnvelopeEncoding } from '../../common/index.js';
import { BufferPool, ENVELOPE_PROPS, ENVELOPE_VERSION } from '../../common/index.js';
import type { UpstreamMessage } from '../upstream-transport.js';

const gzipAsync = promisify(gzip);

/** IoT Hub's and edgeHub's maximum message size, body plus properties (edge-facts.md §2, §9). */
export const MAX_UPSTREAM_MESSAGE_BYTES = 256 * 1024;

/** IoT Hub meters device-to-cloud messages in 4 KB units (edge-facts.md §9). */
export const METERING_UNIT_BYTES = 4096;

/** `{"v":1,"records":[` — the envelope's opening, before the first record. */
export const ENVELOPE_PREFIX = `{"v":${ENVELOPE_VERSION},"records":[`;
/** `]}` — the envelope's closing. */
export const ENVELOPE_SUFFIX = ']}';

/** Content type and encoding of every envelope message (edgeHub routes on `$body` only for these). */
export const JSON_CONTENT_TYPE = 'application/json';

/**
 * Size of an upstream message as IoT Hub counts it: body plus application property names and
 * values plus the system properties the module sets (content type, content encoding, message id).
 */
export function upstreamMessageBytes(message: UpstreamMessage): number {
  let n =
    message.body.length + Buffer.byteLength(message.contentType) + Buffer.byteLength(message.contentEncoding);
  if (message.messageId !== undefined) n += Buffer.byteLength(message.messageId);
  for (const [k, v] of Object.entries(message.properties)) n += Buffer.byteLength(k) + Buffer.byteLength(v);
  return n;
}

/** Body bytes of an envelope holding records whose JSON sizes sum to `recordBytes`. */
export function envelopeBodyBytes(count: number, recordBytes: number): number {
  return ENVELOPE_PREFIX.length + recordBytes + Math.max(0, count - 1) + ENVELOPE_SUFFIX.length;
}

/** {@link ENVELOPE_PREFIX}, {@link ENVELOPE_SUFFIX} and the separator as bytes (ASCII). */
const PREFIX_BYTES = Buffer.from(ENVELOPE_PREFIX);
const SUFFIX_BYTES = Buffer.from(ENVELOPE_SUFFIX);
const COMMA = 0x2c;

/**
 * Builds the upstream message for records already serialised to UTF-8 JSON. `batched` false sends
 * the single record as the whole body (the naive, unbatched shape); true wraps them in envelope v1.
 */
export async function encodeUpstreamMessage(
  recordJson: readonly Buffer[],
  batched: boolean,
  encoding: EnvelopeEncoding,
  bodies?: BodyPool,
): Promise<UpstreamMessage> {
  const json = batched ? envelopeBody(recordJson, bodies) : (recordJson[0] ?? Buffer.from('null'));
  let body = json;
  if (encoding === 'gzip') {
    body = await gzipAsync(json);
    bodies?.give(json);
  }
  return {
    body,
    contentType: JSON_CONTENT_TYPE,
    contentEncoding: encoding === 'gzip' ? 'gzip' : 'utf-8',
    properties: {
      [ENVELOPE_PROPS.version]: String(ENVELOPE_VERSION),
      [ENVELOPE_PROPS.count]: String(recordJson.length),
      [ENVELOPE_PROPS.encoding]: encoding,
    },
  };
}

/** `{"v":1,"records":[r0,r1,…]}`: the records' bytes copied once into one buffer. */
function envelopeBody(records: readonly Buffer[], bodies: BodyPool | undefined): Buffer {
  let recordBytes = 0;
  for (const r of records) recordBytes += r.length;
  const size = envelopeBodyBytes(records.length, recordBytes);
  const out = bodies?.take(size) ?? Buffer.allocUnsafe(size);
  let at = PREFIX_BYTES.copy(out, 0);
  for (let i = 0; i < records.length; i++) {
    if (i > 0) out[at++] = COMMA;
    at += (records[i] as Buffer).copy(out, at);
  }
  SUFFIX_BYTES.copy(out, at);
  return out;
}

/**
 * Envelope bodies to write into again: a batch's body goes back once edgeHub acknowledged it on
 * the first attempt (after a failed one a client may still hold the body in its queue).
 * Why: a new 256 KiB body per batch is a new ArrayBuffer, and those (with the record chunks, see
 * utf8-arena.ts) made V8 start a mark-compact for "external memory pressure" about twice a second
 * at 8 KB messages.
 */
export class BodyPool extends BufferPool {
  /** @param keep - most free bodies held (about the batches in flight). */
  constructor(keep: number) {
    super(MAX_UPSTREAM_MESSAGE_BYTES, keep);
  }
}

/** Exact bytes of the properties and content type/encoding of an envelope message of `count` records. */
export function envelopePropertyBytes(count: number, encoding: EnvelopeEncoding): number {
  return (
    ENVELOPE_PROPS.version.length +
    String(ENVELOPE_VERSION).length +
    ENVELOPE_PROPS.count.length +
    String(count).length +
    ENVELOPE_PROPS.encoding.length +
    encoding.length +
    JSON_CONTENT_TYPE.length +
    (encoding === 'gzip' ? 'gzip' : 'utf-8').length
  );
}

/** Worst-case bytes of everything but the body for messages of up to `maxRecords` records. */
export function worstCasePropertyBytes(maxRecords: number): number {
  const n = Math.max(1, maxRecords);
  return Math.max(envelopePropertyBytes(n, 'json'), envelopePropertyBytes(n, 'gzip'));
}

/**
 * Chooses where to cut `count` buffered records so the message ends just under a 4 KB boundary,
 * when that meters better than sending them all. `sizeOf(k)` is the full message size (body,
 * properties and reserve) of the first k records. Only ever moves the cut earlier: the records
 * left behind stay buffered with their own linger deadline, so packing never delays a record.
 */
export function packCutTo4KB(count: number, sizeOf: (k: number) => number): number {
  const total = sizeOf(count);
  const units = Math.ceil(total / METERING_UNIT_BYTES);
  if (units <= 1) return count;
  const target = (units - 1) * METERING_UNIT_BYTES;
  let k = count - 1;
  while (k > 0 && sizeOf(k) > target) k--;
  if (k === 0) return count;
  const efficiencyAll = total / (units * METERING_UNIT_BYTES);
  const efficiencyCut = sizeOf(k) / target;
  return efficiencyCut > efficiencyAll ? k : count;
}
