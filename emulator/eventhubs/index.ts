export type { EventHubsServerOptions, SharedAccessKeyOptions } from './amqp-server.js';
export { EventHubsServer } from './amqp-server.js';
export type { RuntimeInfo } from './codec.js';
export {
  BATCH_MESSAGE_FORMAT,
  decodeIncoming,
  encodeOutgoing,
  MalformedMessageError,
  parseSelector,
  UnsupportedFilterError,
} from './codec.js';
export type {
  AppendListener,
  AppendTarget,
  EventHubConfig,
  EventInput,
  EventLogOptions,
  PartitionInfo,
  RetentionOptions,
  StartPosition,
} from './event-log.js';
export {
  DEFAULT_CONSUMER_GROUP,
  EntityNotFoundError,
  EventHub,
  EventLog,
  PartitionLog,
  PositionOutOfRangeError,
} from './event-log.js';
export type { StoredEvent } from './partition-log.js';
