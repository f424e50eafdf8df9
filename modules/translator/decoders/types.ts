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

/** JSON text taken as it is: \`bytes\` less the bytes \`[cutStart, cutEnd)\` (an empty cut when equal). */
export interface RawJson {
  readonly bytes: Buffer;
  readonly cutStart: number;
  readonly cutEnd: number;
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
       * For a single record: its \`data\` as the payload's own UTF-8 JSON. The pipeline writes these
       * bytes instead of serialising \`data\` again (json.ts).
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
