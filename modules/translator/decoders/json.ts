import { isUtf8 } from 'node:buffer';
import type { EnvelopeRecord } from '../../common/index.js';
import { readPerfFields } from '../../common/index.js';
import { topLevelMemberRange } from './json-member-range.js';
import type { TopicFieldExtractor } from './topic-template.js';
import type { Decoder, RawJson } from './types.js';

/**
 * JSON decoder: an object is one record, an array is one record per element (an empty array
 * yields none). A numeric `ts` at the top of an element is the source timestamp; a `perf` object
 * (the simulator's fields) moves to the record's `perf` and is not repeated in `data`.
 *
 * An object payload that is valid UTF-8 without a backslash also comes back as `rawData`: its own
 * bytes, less the `perf` member. Writing those instead of serialising the parsed value again cut
 * the record's path through the translator (decode, write, batch) from 9.3 to 8.1 µs at 1 KB and
 * from 36 to 20 µs at 8 KB (the simulator's payloads through the same functions in a loop, best
 * of 6 rounds); in paired bench runs the 8 KB rate went from 50–52 to 50–55 MB/s, and 1 KB stayed
 * within the noise. The
 * envelope then keeps the payload's own spelling (whitespace, number forms such as `1.50`,
 * integers beyond 2^53), which every JSON reader reads as the same value.
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
    const record = toRecord(topic, parsed, ingestTimeMs, fields);
    const rawData = plainStrings ? rawDataOf(payload, parsed, record) : undefined;
    return rawData === undefined
      ? { ok: true, records: [record], plainStrings }
      : { ok: true, records: [record], plainStrings, rawData };
  };
}

const PERF_NAME = Buffer.from('perf');
const PERF_KEY = Buffer.from('"perf"');

/** The payload's bytes that spell \`record.data\`, when they can be taken as they are. */
function rawDataOf(payload: Buffer, parsed: unknown, record: EnvelopeRecord): RawJson | undefined {
  if (parsed === null || typeof parsed !== 'object' || !isUtf8(payload)) return undefined;
  if (record.perf === undefined) return { bytes: payload, cutStart: 0, cutEnd: 0 };
  const range = topLevelMemberRange(payload, PERF_NAME);
  // \`"perf"\` again after it may be a repeated member (JSON.parse keeps the last): serialise.
  if (range === undefined || payload.indexOf(PERF_KEY, range[1]) !== -1) return undefined;
  return { bytes: payload, cutStart: range[0], cutEnd: range[1] };
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
