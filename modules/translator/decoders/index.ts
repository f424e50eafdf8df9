import { createJsonDecoder } from './json.js';
import { createRawDecoder } from './raw.js';
import { createSparkplugDecoder } from './sparkplug.js';
import { compileTopicTemplate } from './topic-template.js';
import type { Decoder, DecoderFormat } from './types.js';

export { createJsonDecoder } from './json.js';
export { createRawDecoder } from './raw.js';
export type { SparkplugMetricRecord } from './sparkplug.js';
export { createSparkplugDecoder } from './sparkplug.js';
export type { TopicFieldExtractor } from './topic-template.js';
export { compileTopicTemplate } from './topic-template.js';
export type { DeadLetterReason, DecodeResult, Decoder, DecoderFormat } from './types.js';
export { DEAD_LETTER_REASONS, RawJson } from './types.js';

/** Options for {@link createDecoder}. */
export interface DecoderOptions {
  /** Payload format; default `json`. */
  format?: DecoderFormat;
  /** Topic template such as `plant/{site}/line/{line}/{sensor}`; default none. */
  topicTemplate?: string;
}

/**
 * Builds the decoder for a payload format, with the topic template compiled once.
 * @throws ConfigError when the topic template is invalid.
 */
export function createDecoder(options: DecoderOptions = {}): Decoder {
  const fieldsOf =
    options.topicTemplate === undefined || options.topicTemplate === ''
      ? undefined
      : compileTopicTemplate(options.topicTemplate);
  switch (options.format ?? 'json') {
    case 'json':
      return createJsonDecoder(fieldsOf);
    case 'sparkplug':
      return createSparkplugDecoder(fieldsOf);
    case 'raw':
      return createRawDecoder(fieldsOf);
  }
}
