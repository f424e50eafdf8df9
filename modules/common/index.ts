export { BufferPool } from './buffer-pool.js';
export type { ModuleConnectionInfo } from './connection-string.js';
export {
  formatConnectionString,
  parseConnectionString,
  parseModuleConnectionString,
} from './connection-string.js';
export type { EnvelopeBatch, EnvelopeEncoding, EnvelopeRecord } from './envelope.js';
export {
  decodeEnvelopeBody,
  ENVELOPE_PROPS,
  ENVELOPE_VERSION,
  isBatch,
  perfFieldsOfBody,
} from './envelope.js';
export type { ConfigIssue } from './errors.js';
export { ConfigError, EdgePerfError, toError } from './errors.js';
export type { Logger, LoggerOptions } from './logger.js';
export { createLogger, redactSecrets } from './logger.js';
export { quietMqttLog } from './mqtt-log.js';
export type { PerfFields } from './perf-fields.js';
export { readPerfFields } from './perf-fields.js';
export type { SasToken, SasVerdict } from './sas.js';
export { createSasToken, parseSasToken, verifySasToken } from './sas.js';
export { parseSettings } from './settings.js';
