import type { EnvelopeRecord } from '../../common/index.js';

/**
 * Why a source message went to the `deadletter` output (the `reason` property on it):
 * - `malformed-json`: the payload is not JSON (json decoder);
 * - `invalid-sparkplug`: the payload is not a Sparkplug B protobuf, or the topic is not
 *   `spBv1.0/{group}/{type}/{node}[/{device}]`;
 * - `record-too-large`: one record cannot fit a 256 KiB upstream message with its properties.
 */
export type DeadLetterReason = 'malformed-json' | 'invalid-sparkplug' | 'record-too-large';

/** Every dead-letter reason, for metrics that want a zero series per label. */
export const DEAD_LETTER_REASONS: readonly DeadLetterReason[] = [
  'malformed-json',
  'invalid-sparkplug',
  'record-too-large',
];

/**
 * JSON text taken as it is: `bytes` less the bytes `[cutStart, cutEnd)` (an empty cut when
 * equal). The JSON decoder puts one in a record's `data` instead of the parsed value, which
 * nothing on the pipeline's path reads (the bytes go into the envelope as they are); `toJSON`
 * parses it, so `JSON.stringify(record)` writes what it wrote for the parsed value.
 *
 * Why not a lazy getter on the record: an object literal with an accessor cost 2 µs per record,
 * a third of the decoder's time at 1 KB.
 */
export class RawJson {
  /**
   * @param perfStart - with `perfEnd`, the removed `perf` value's bytes when they are exactly what
   *   the record serialiser writes for the record's `perf` (plain-perf.ts), so it may copy them;
   *   -1 otherwise.
   */
  constructor(
    readonly bytes: Buffer,
    readonly cutStart: number,
    readonly cutEnd: number,
    readonly perfStart = -1,
    readonly perfEnd = -1,
  ) {}

  /** The value the text spells. */
  toJSON(): unknown {
    const { bytes, cutStart, cutEnd } = this;
    return JSON.parse(bytes.toString('utf8', 0, cutStart) + bytes.toString('utf8', cutEnd));
  }
}

/** What a decoder made of one source message. */
export type DecodeResult =
  | {
      readonly ok: true;
      readonly records: EnvelopeRecord[];
      /**
       * True when every string in the records' `data` and `perf` came from JSON text without a
       * backslash, so none needs escaping (the pipeline then serialises with plainRecordJson).
       */
      readonly plainStrings?: boolean;
      /**
       * For a single record: its `data` as the payload's own UTF-8 JSON. The pipeline writes these
       * bytes instead of serialising `data` again (json.ts).
       */
      readonly rawData?: RawJson;
    }
  | { readonly ok: false; readonly reason: DeadLetterReason; readonly detail: string };

/** Payload formats the translator decodes. */
export type DecoderFormat = 'json' | 'sparkplug' | 'raw';

/**
 * Turns one source message into records. Never throws: bad input comes back as `{ ok: false }`.
 * `ingestTimeMs` is the unix ms at which the translator received the message.
 */
export type Decoder = (topic: string, payload: Buffer, ingestTimeMs: number) => DecodeResult;
