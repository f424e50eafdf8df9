export type { EmbeddedBrokerOptions } from './embedded-broker.js';
export { EmbeddedBroker } from './embedded-broker.js';
export type {
  MqttSourceOptions,
  MqttSourceStats,
  SourceMessage,
  SourceMessageHandler,
} from './mqtt-source.js';
export { MqttSource } from './mqtt-source.js';
