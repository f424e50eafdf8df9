import type { EnvelopeRecord } from '../../common/index.js';
import { readPerfFields } from '../../common/index.js';
import type { TopicFieldExtractor } from './topic-template.js';
import type { Decoder } from './types.js';

/**
 * JSON decoder: an object is one record, an array is one record per element (an empty array
 * yields none). A numeric `ts` at the top of an element is the source timestamp; a `perf` object
 * (the simulator's fields) moves to the record's `perf` and is not repeated in `data`.
 */
export function createJsonDecoder(fieldsOf?: TopicFieldExtractor): Decoder {
  return (topic, payload, ingestTimeMs) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(payload.toString('utf8'));
    } catch (err) {
      return { ok: false, reason: 'malformed-json', detail: (err as Error).message };
    }
    const fields = fieldsOf?.(topic);
    // 0x5c is `\`: without one, no string in the payload needs escaping when written back.
    const plainStrings = payload.indexOf(0x5c) === -1;
    if (Array.isArray(parsed)) {
      const records: EnvelopeRecord[] = new Array(parsed.length);
      for (let i = 0; i < parsed.length; i++) records[i] = toRecord(topic, parsed[i], ingestTimeMs, fields);
      return { ok: true, records, plainStrings };
    }
    return { ok: true, records: [toRecord(topic, parsed, ingestTimeMs, fields)], plainStrings };
  };
}

function toRecord(
  topic: string,
  value: unknown,
  it: number,
  fields: Record<string, string> | undefined,
): EnvelopeRecord {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return fields === undefined ? { topic, it, data: value } : { topic, it, fields, data: value };
  }
  const obj = value as Record<string, unknown>;
  const ts = typeof obj.ts === 'number' && Number.isFinite(obj.ts) ? obj.ts : undefined;
  const perf = readPerfFields(obj);
  let data: unknown = obj;
  if (perf !== undefined) {
    const { perf: _moved, ...rest } = obj;
    data = rest;
  }
  // Build the record with only the keys that are present: JSON.stringify would drop undefined
  // values anyway, but a stable shape keeps the hot path monomorphic.
  const record: { -readonly [K in keyof EnvelopeRecord]: EnvelopeRecord[K] } = { topic, it, data };
  if (ts !== undefined) record.ts = ts;
  if (fields !== undefined) record.fields = fields;
  if (perf !== undefined) record.perf = perf;
  return record;
}
