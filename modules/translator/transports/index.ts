export type {
  ControllableTransport,
  MethodHandler,
  MethodResponse,
  ModuleControlChannel,
  TwinDocument,
} from './control-channel.js';
export { backoffDelayMs } from './control-channel.js';
export type { RawMqttTransportOptions } from './raw-mqtt.js';
export { RawMqttTransport, rawMqttOptionsFromEnv } from './raw-mqtt.js';
export type { ModuleMqttIdentity } from './raw-mqtt-topic.js';
export {
  IOTHUB_API_VERSION,
  moduleClientId,
  moduleOutputTopic,
  moduleResourceUri,
  moduleUsername,
  parseTopicQuery,
} from './raw-mqtt-topic.js';
export type { SdkTransportOptions } from './sdk.js';
export { SdkTransport } from './sdk.js';
