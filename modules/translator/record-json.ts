import type { EnvelopeRecord } from '../common/index.js';
import { RawJson } from './decoders/types.js';

/**
 * The JSON of a record whose `data` and `perf` came from JSON text with no backslash in it (the
 * JSON decoder says so with `plainStrings`). Such text cannot hold a string that needs escaping
 * (a quote, a backslash, a control character or a lone surrogate all need a backslash), so every
 * string serialises as itself between quotes. The result is exactly `JSON.stringify(record)`
 * (test/unit/translator-record-json.test.ts compares them on generated payloads); `topic` and
 * `fields` come from the MQTT topic and still go through `JSON.stringify`.
 *
 * Why: Node 20's `JSON.stringify` checks every character of every string for escapes; that took
 * 4.9 µs for the simulator's 850-character padding and was the translator's largest cost
 * (12 ms of CPU per 1,000 messages, `npm run bench -- --cpu-prof`).
 */
export function plainRecordJson(record: EnvelopeRecord): string {
  let out = '{';
  let first = true;
  for (const key of Object.keys(record)) {
    const value = (record as unknown as Record<string, unknown>)[key];
    if (value === undefined) continue;
    const json = key === 'topic' || key === 'fields' ? JSON.stringify(value) : plainJson(value);
    out += `${first ? '"' : ',"'}${key}":${json}`;
    first = false;
  }
  return `${out}}`;
}

/**
 * The JSON of a record from the JSON decoder around its `data`, `[head, tail]`, for a `data` that
 * is written as the payload's own bytes (`rawData`). Keys and order are those of
 * {@link plainRecordJson} for such a record: topic, it, data, ts, fields, perf.
 */
export function plainRecordJsonAround(record: EnvelopeRecord): [string, string] {
  const head = `{"topic":${JSON.stringify(record.topic)},"it":${plainJson(record.it)},"data":`;
  let tail = '';
  if (record.ts !== undefined) tail += `,"ts":${plainJson(record.ts)}`;
  if (record.fields !== undefined) tail += `,"fields":${JSON.stringify(record.fields)}`;
  const p = record.perf;
  if (p !== undefined) {
    // readPerfFields' key order; every value is a plain string or a finite number.
    tail += `,"perf":{"sid":"${p.sid}","burst":${p.burst},"seq":${p.seq},"ts":${p.ts}`;
    if (p.vc !== undefined) tail += `,"vc":${p.vc}`;
    if (p.dev !== undefined) tail += `,"dev":"${p.dev}"`;
    tail += '}';
  }
  return [head, `${tail}}`];
}

/** A value parsed from backslash-free JSON text, serialised without escaping its strings. */
function plainJson(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return `"${value}"`;
    case 'number':
      return Number.isFinite(value) ? String(value) : 'null';
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      if (value === null) return 'null';
      // JSON text kept as it is (the JSON decoder's data): JSON.stringify writes its toJSON value.
      if (value instanceof RawJson) return plainJson(value.toJSON());
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i++) out += (i === 0 ? '' : ',') + plainJson(value[i]);
        return `${out}]`;
      }
      let out = '{';
      let first = true;
      for (const key of Object.keys(value)) {
        const v = (value as Record<string, unknown>)[key];
        if (v === undefined) continue;
        out += `${first ? '"' : ',"'}${key}":${plainJson(v)}`;
        first = false;
      }
      return `${out}}`;
    }
    default:
      // Not produced by JSON.parse; JSON.stringify decides (functions and symbols vanish in objects).
      return JSON.stringify(value) ?? 'null';
  }
}
