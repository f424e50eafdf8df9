import { isUtf8 } from 'node:buffer';
import type { EnvelopeRecord, PerfFields } from '../../common/index.js';
import { readPerfFields } from '../../common/index.js';
import { type PlainObjectScan, scanPlainJsonObject } from './plain-json-scan.js';
import { PlainPerfReader } from './plain-perf.js';
import type { TopicFieldExtractor } from './topic-template.js';
import { type DecodeResult, type Decoder, RawJson } from './types.js';

/**
 * JSON decoder: an object is one record, an array is one record per element (an empty array
 * yields none). A numeric `ts` at the top of an element is the source timestamp; a `perf` object
 * (the simulator's fields) moves to the record's `perf` and is not repeated in `data`.
 *
 * An object payload that is valid UTF-8 without a backslash also comes back as `rawData`: its own
 * bytes, less the `perf` member. Writing those instead of serialising the parsed value again cut
 * the record's path through the translator (decode, write, batch) from 9.3 to 8.1 µs at 1 KB and
 * from 36 to 20 µs at 8 KB (the simulator's payloads through the same functions in a loop, best
 * of 6 rounds). The envelope then keeps the payload's own spelling (whitespace, number forms such
 * as `1.50`, integers beyond 2^53), which every JSON reader reads as the same value.
 *
 * Such a payload is validated by a scan that builds nothing (plain-json-scan.ts) instead of
 * `JSON.parse`; only `perf` and `ts` are parsed. Anything the scan cannot vouch for (invalid
 * JSON among it) goes through `JSON.parse`, which words the error.
 */
export function createJsonDecoder(fieldsOf?: TopicFieldExtractor): Decoder {
  const perfReader = new PlainPerfReader();
  return (topic, payload, ingestTimeMs) => {
    // 0x5c is a backslash: without one, no string in the payload needs escaping when written back.
    const plainStrings = payload.indexOf(0x5c) === -1;
    const scan = plainStrings && isUtf8(payload) ? scanPlainJsonObject(payload) : undefined;
    if (scan !== undefined)
      return scannedObject(topic, payload, scan, perfReader, ingestTimeMs, fieldsOf?.(topic));
    let parsed: unknown;
    try {
      parsed = JSON.parse(payload.toString('utf8'));
    } catch (err) {
      return { ok: false, reason: 'malformed-json', detail: (err as Error).message };
    }
    const fields = fieldsOf?.(topic);
    if (Array.isArray(parsed)) {
      const records: EnvelopeRecord[] = new Array(parsed.length);
      for (let i = 0; i < parsed.length; i++) records[i] = toRecord(topic, parsed[i], ingestTimeMs, fields);
      return { ok: true, records, plainStrings };
    }
    return { ok: true, records: [toRecord(topic, parsed, ingestTimeMs, fields)], plainStrings };
  };
}

/**
 * The record of an object payload that {@link scanPlainJsonObject} vouched for: its data is the
 * payload's own bytes less a valid `perf` member ({@link RawJson}). Only `perf` and `ts` are parsed.
 */
function scannedObject(
  topic: string,
  payload: Buffer,
  scan: PlainObjectScan,
  perfReader: PlainPerfReader,
  it: number,
  fields: Record<string, string> | undefined,
): DecodeResult {
  let perf: PerfFields | undefined;
  let canonicalPerf = false;
  if (scan.perfStart !== -1) {
    if (perfReader.read(payload, scan.perfStart, scan.perfEnd)) {
      perf = perfReader.perf;
      canonicalPerf = perfReader.canonical;
    } else
      perf = readPerfFields({ perf: JSON.parse(payload.toString('utf8', scan.perfStart, scan.perfEnd)) });
  }
  const tsValue =
    scan.tsStart === -1 ? Number.NaN : Number(payload.toString('latin1', scan.tsStart, scan.tsEnd));
  const ts = Number.isFinite(tsValue) ? tsValue : undefined;
  const rawData =
    perf === undefined
      ? new RawJson(payload, 0, 0)
      : canonicalPerf
        ? new RawJson(payload, scan.cutStart, scan.cutEnd, scan.perfStart, scan.perfEnd)
        : new RawJson(payload, scan.cutStart, scan.cutEnd);
  const record: { -readonly [K in keyof EnvelopeRecord]: EnvelopeRecord[K] } = { topic, it, data: rawData };
  if (ts !== undefined) record.ts = ts;
  if (fields !== undefined) record.fields = fields;
  if (perf !== undefined) record.perf = perf;
  return { ok: true, records: [record], plainStrings: true, rawData };
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
