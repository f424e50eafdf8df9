export type {
  BatcherCloseOptions,
  BatcherHandlers,
  BatcherOptions,
  BatcherState,
  BatchInfo,
  BatchItem,
  BatchTrigger,
  ResolvedBatcherOptions,
} from './batcher.js';
export { Batcher, resolveBatcherOptions } from './batcher.js';
export {
  BodyPool,
  ENVELOPE_PREFIX,
  ENVELOPE_SUFFIX,
  encodeUpstreamMessage,
  envelopeBodyBytes,
  envelopePropertyBytes,
  JSON_CONTENT_TYPE,
  MAX_UPSTREAM_MESSAGE_BYTES,
  METERING_UNIT_BYTES,
  packCutTo4KB,
  upstreamMessageBytes,
  worstCasePropertyBytes,
} from './encode.js';
export { Utf8Arena } from './utf8-arena.js';
