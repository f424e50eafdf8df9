import sparkplugPayload from 'sparkplug-payload';
import type { EnvelopeRecord } from '../../common/index.js';
import type { TopicFieldExtractor } from './topic-template.js';
import type { Decoder } from './types.js';

const codec = sparkplugPayload.get('spBv1.0');

/** Sparkplug message types decoded into records; others (NCMD, DCMD, STATE) are skipped. */
const DATA_TYPES: ReadonlySet<string> = new Set(['NBIRTH', 'DBIRTH', 'NDATA', 'DDATA', 'NDEATH', 'DDEATH']);

/** One Sparkplug metric as it appears in a record's `data.metrics`. */
export interface SparkplugMetricRecord {
  readonly name?: string;
  readonly alias?: number;
  /** Metric timestamp, unix ms. */
  readonly timestamp?: number;
  readonly type?: string;
  /** Int64/UInt64 become numbers (exact up to 2^53), bytes become base64. */
  readonly value: unknown;
}

/**
 * Sparkplug B decoder for topics `spBv1.0/{group}/{type}/{node}[/{device}]`: one record per
 * message, `fields` = group, type, node (and device), `ts` = the payload timestamp,
 * `data` = `{ seq, metrics: [...] }`. Topic-template fields, when configured, are merged over these.
 * NCMD/DCMD/STATE yield no record; a foreign topic or undecodable payload is `invalid-sparkplug`.
 */
export function createSparkplugDecoder(fieldsOf?: TopicFieldExtractor): Decoder {
  return (topic, payload, ingestTimeMs) => {
    const levels = topic.split('/');
    if (levels[0] !== 'spBv1.0' || levels.length < 4 || levels.length > 5) {
      return {
        ok: false,
        reason: 'invalid-sparkplug',
        detail: `topic "${topic}" is not spBv1.0/{group}/{type}/{node}[/{device}]`,
      };
    }
    const [, group, type, node, device] = levels as [string, string, string, string, string | undefined];
    if (!DATA_TYPES.has(type)) {
      if (type === 'NCMD' || type === 'DCMD' || type === 'STATE') return { ok: true, records: [] };
      return { ok: false, reason: 'invalid-sparkplug', detail: `unknown message type "${type}"` };
    }
    if (codec === null) return { ok: false, reason: 'invalid-sparkplug', detail: 'no spBv1.0 codec' };
    let decoded: ReturnType<typeof codec.decodePayload>;
    try {
      decoded = codec.decodePayload(payload);
    } catch (err) {
      return { ok: false, reason: 'invalid-sparkplug', detail: (err as Error).message };
    }
    const metrics: SparkplugMetricRecord[] = (decoded.metrics ?? []).map((m) => {
      const out: { -readonly [K in keyof SparkplugMetricRecord]: SparkplugMetricRecord[K] } = {
        value: plain(m.value),
      };
      if (m.name !== undefined && m.name !== null) out.name = m.name;
      if (m.alias !== undefined && m.alias !== null) out.alias = toNumber(m.alias);
      if (m.timestamp !== undefined && m.timestamp !== null) out.timestamp = toNumber(m.timestamp);
      if (m.type !== undefined) out.type = m.type;
      return out;
    });
    const fields: Record<string, string> = { group, type, node };
    if (device !== undefined) fields.device = device;
    const extra = fieldsOf?.(topic);
    if (extra !== undefined) Object.assign(fields, extra);
    const data: { seq?: number; metrics: SparkplugMetricRecord[] } = { metrics };
    if (decoded.seq !== undefined && decoded.seq !== null) data.seq = toNumber(decoded.seq);
    const record: { -readonly [K in keyof EnvelopeRecord]: EnvelopeRecord[K] } = {
      topic,
      it: ingestTimeMs,
      fields,
      data,
    };
    if (decoded.timestamp !== undefined && decoded.timestamp !== null)
      record.ts = toNumber(decoded.timestamp);
    return { ok: true, records: [record] };
  };
}

/** protobufjs gives 64-bit integers as Long objects; JSON wants numbers. */
function toNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (isLong(v)) return v.toNumber();
  return Number(v);
}

function isLong(v: unknown): v is { toNumber(): number } {
  return v !== null && typeof v === 'object' && typeof (v as { toNumber?: unknown }).toNumber === 'function';
}

/** Makes a metric value JSON-friendly: Long → number, bytes → base64, nested objects unchanged. */
function plain(v: unknown): unknown {
  if (isLong(v)) return v.toNumber();
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
  return v;
}
