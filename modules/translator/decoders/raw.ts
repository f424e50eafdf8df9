import type { TopicFieldExtractor } from './topic-template.js';
import type { Decoder } from './types.js';

/** Raw decoder: the payload bytes as base64 text in `data`; never fails. */
export function createRawDecoder(fieldsOf?: TopicFieldExtractor): Decoder {
  return (topic, payload, ingestTimeMs) => {
    const fields = fieldsOf?.(topic);
    const data = payload.toString('base64');
    return {
      ok: true,
      records: [
        fields === undefined ? { topic, it: ingestTimeMs, data } : { topic, it: ingestTimeMs, fields, data },
      ],
    };
  };
}
