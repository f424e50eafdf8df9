import { gunzipSync } from 'node:zlib';
import type { PerfFields } from './perf-fields.js';
import { readPerfFields } from './perf-fields.js';

/**
 * The translator's upstream envelope, version 1.
 *
 * A batched message body is `{"v":1,"records":[Record, …]}` (JSON, or that JSON gzipped). An
 * unbatched message body is one Record object on its own. ASA unpacks batches with
 * `CROSS APPLY GetArrayElements(e.records)` and reads a plain message's fields directly.
 *
 * Message application properties name the shape so consumers need not sniff bodies:
 * - `edgeperf-envelope`: `"1"`;
 * - `edgeperf-count`: records in the message;
 * - `edgeperf-encoding`: `json` or `gzip`.
 */
export const ENVELOPE_VERSION = 1;

/** Application property names the translator sets on every upstream message. */
export const ENVELOPE_PROPS = {
  version: 'edgeperf-envelope',
  count: 'edgeperf-count',
  encoding: 'edgeperf-encoding',
} as const;

/** Body encodings of an upstream message. */
export type EnvelopeEncoding = 'json' | 'gzip';

/** One decoded source message as the translator forwards it. */
export interface EnvelopeRecord {
  /** Source topic. */
  readonly topic: string;
  /** Source timestamp, unix ms, when the payload carried one (Sparkplug `timestamp`, JSON `ts`). */
  readonly ts?: number;
  /** Ingest time at the translator, unix ms. */
  readonly it: number;
  /** Fields lifted from the topic by the topic template. */
  readonly fields?: Readonly<Record<string, string>>;
  /** Perf fields the simulator put in, passed through unchanged. */
  readonly perf?: PerfFields;
  /** Decoded payload: JSON value, Sparkplug metrics, or base64 text for raw bytes. */
  readonly data: unknown;
}

/** A batch body: the versioned array ASA unpacks. */
export interface EnvelopeBatch {
  readonly v: typeof ENVELOPE_VERSION;
  readonly records: readonly EnvelopeRecord[];
}

/**
 * Decodes an upstream message body into the objects it carries: every record of a batch, or the
 * single object of a plain message. Works for bodies of any producer (a plain JSON message from a
 * naive module is one object).
 *
 * @throws Error when the body is not JSON (after gunzip when `encoding` is gzip).
 */
export function decodeEnvelopeBody(body: Uint8Array, encoding: string | undefined): unknown[] {
  // A view, not a copy: edgeperf decodes every 256 KB batch it receives.
  const raw =
    encoding === 'gzip' ? gunzipSync(body) : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const parsed: unknown = JSON.parse(raw.toString('utf8'));
  if (isBatch(parsed)) return parsed.records as unknown[];
  return [parsed];
}

/** True when the value is a version-1 batch envelope. */
export function isBatch(value: unknown): value is EnvelopeBatch {
  return (
    value !== null &&
    typeof value === 'object' &&
    (value as { v?: unknown }).v === ENVELOPE_VERSION &&
    Array.isArray((value as { records?: unknown }).records)
  );
}

/** Perf fields of every logical message in an upstream body; records without them are skipped. */
export function perfFieldsOfBody(body: Uint8Array, encoding: string | undefined): PerfFields[] {
  const out: PerfFields[] = [];
  for (const item of decodeEnvelopeBody(body, encoding)) {
    const perf = readPerfFields(item);
    if (perf !== undefined) out.push(perf);
  }
  return out;
}
