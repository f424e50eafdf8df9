// The simulator module's public surface (style.md §2): named exports only.
export type {
  BurstClock,
  BurstEngineOptions,
  BurstPublisher,
  BurstResult,
  RunHandle,
  SimulatorState,
  SimulatorStats,
} from './burst.js';
export { BurstEngine, deviceId } from './burst.js';
export type { StandaloneOptions, StandaloneSummary } from './cli.js';
export { buildSimulatorProgram, main, runModule, runStandalone } from './cli.js';
export type { MqttPublisherOptions } from './mqtt-publisher.js';
export { MqttPublisher } from './mqtt-publisher.js';
export { decodeSparkplug, PayloadBuilder, SPARKPLUG_PADDING_METRIC } from './payload.js';
export type { BurstSettings, SimulatorConnectionSettings, SimulatorFormat } from './settings.js';
export {
  BURST_DEFAULTS,
  burstSettingsSchema,
  connectionSettingsFromEnv,
  DEFAULT_BROKER_URL,
  DEFAULT_MAX_IN_FLIGHT,
  defaultTopicFor,
  MAX_PAYLOAD_BYTES,
  parseBurstSettings,
} from './settings.js';
export type { SparkplugMetricLike, SparkplugPerfMetric } from './sparkplug-perf.js';
export {
  perfFieldsFromSparkplugMetrics,
  perfToSparkplugMetrics,
  SPARKPLUG_PERF_METRICS,
} from './sparkplug-perf.js';
