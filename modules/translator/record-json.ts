import type { EnvelopeRecord } from '../common/index.js';
import type { Utf8Arena } from './batcher/utf8-arena.js';
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
 * What follows `data` in the JSON of a record from the JSON decoder whose `data` is the payload's
 * own bytes (`rawData`): ts, fields, perf, in {@link plainRecordJson}'s key order, and the `}`.
 */
function plainRecordTail(record: EnvelopeRecord): string {
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
  return `${tail}}`;
}

const DATA_KEY = Buffer.from(',"data":');
const TS_KEY = Buffer.from(',"ts":');
const PERF_KEY = Buffer.from(',"perf":');
/** Topics whose record head is kept; more are rare (one per device and measurement) and start over. */
const MAX_HEADS = 1024;

/**
 * The JSON of a record from the JSON decoder around its `data`, for a `data` written as the
 * payload's own bytes (`rawData`): exactly `JSON.stringify(record)` for a canonical payload
 * (test/unit/translator-record-json.test.ts). Written straight into the arena: the record's
 * head up to `"it":` from a per-topic cache, numbers as digits, the payload less its `perf`
 * member, and that member's own bytes when the decoder found them canonical (RawJson.perfStart).
 * Records with `fields` or a perf spelled otherwise take the string tail.
 *
 * Why: building the head and tail as strings and encoding them cost about 5 µs per message at
 * 1 KB, a fifth of the translator's time (--cpu-prof: plainRecordJsonAround, Buffer#write).
 */
export class RecordWriter {
  private readonly heads = new Map<string, Buffer>();

  /** The record `{topic, it, data: raw, ts?, fields?, perf?}` as UTF-8 JSON, a slice of `arena`. */
  write(arena: Utf8Arena, record: EnvelopeRecord, raw: RawJson): Buffer {
    const head = this.headOf(record.topic);
    const { bytes, cutStart, cutEnd, perfStart, perfEnd } = raw;
    const fast = record.fields === undefined && (record.perf === undefined || perfStart >= 0);
    const tail = fast ? '' : plainRecordTail(record);
    const worst =
      head.length +
      MAX_NUMBER_BYTES +
      DATA_KEY.length +
      bytes.length -
      (cutEnd - cutStart) +
      (fast
        ? TS_KEY.length + MAX_NUMBER_BYTES + PERF_KEY.length + (perfEnd - perfStart) + 1
        : tail.length * 3);
    const out = arena.begin(worst);
    let at = arena.cursor;
    out.set(head, at);
    at = writeNumber(out, at + head.length, record.it);
    out.set(DATA_KEY, at);
    at += DATA_KEY.length;
    if (cutStart > 0) at += bytes.copy(out, at, 0, cutStart);
    at += bytes.copy(out, at, cutEnd);
    if (fast) {
      if (record.ts !== undefined) {
        out.set(TS_KEY, at);
        at = writeNumber(out, at + TS_KEY.length, record.ts);
      }
      if (record.perf !== undefined) {
        out.set(PERF_KEY, at);
        at += PERF_KEY.length;
        at += bytes.copy(out, at, perfStart, perfEnd);
      }
      out[at++] = 0x7d; // }
    } else at += out.write(tail, at, 'utf8');
    return arena.commit(at);
  }

  /** `{"topic":<topic as JSON>,"it":` as UTF-8. */
  private headOf(topic: string): Buffer {
    let head = this.heads.get(topic);
    if (head === undefined) {
      if (this.heads.size >= MAX_HEADS) this.heads.clear();
      head = Buffer.from(`{"topic":${JSON.stringify(topic)},"it":`, 'utf8');
      this.heads.set(topic, head);
    }
    return head;
  }
}

/** Longest `String(n)` of a finite number, e.g. `-1.2345678901234567e-308`. */
const MAX_NUMBER_BYTES = 25;

/** Writes `plainJson(n)` at `at` (digits for safe integers, `String` otherwise); returns the end. */
function writeNumber(out: Buffer, at: number, n: number): number {
  if (!Number.isSafeInteger(n)) return at + out.write(plainJson(n), at, 'latin1');
  let v = n;
  let i = at;
  if (v < 0) {
    out[i++] = 0x2d; // -
    v = -v;
  }
  let digits = 1;
  for (let x = v; x >= 10; x = Math.floor(x / 10)) digits++;
  const end = i + digits;
  for (let k = end - 1; k >= i; k--) {
    out[k] = 0x30 + (v % 10);
    v = Math.floor(v / 10);
  }
  return end;
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
