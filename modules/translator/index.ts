// The translator module's public surface: wiring, configuration, transports, metrics, control,
// and the pipeline parts. Internals (encoders, wire helpers) stay behind these names.
export type { BatcherOptions, BatchInfo, BatchTrigger } from './batcher/index.js';
export { Batcher } from './batcher/index.js';
export type {
  BatchSettings,
  DesiredOutcome,
  EmbeddedBrokerSettings,
  MetricsSettings,
  SettingsSection,
  SourceSettings,
  TranslatorSettings,
  TranslatorSettingsInput,
} from './config/index.js';
export {
  changedSections,
  isInsideIotEdge,
  mergeDesiredPatch,
  resolveSettings,
  settingsFromEnv,
  settingsFromTwin,
  TranslatorConfig,
  translatorEnvSchema,
  translatorTwinSchema,
} from './config/index.js';
export type { TranslatorControlOptions } from './control.js';
export { TRANSLATOR_METHODS, TranslatorControl } from './control.js';
export type { DeadLetterReason, DecoderFormat, DecoderOptions } from './decoders/index.js';
export { createDecoder, DEAD_LETTER_REASONS } from './decoders/index.js';
export type { MetricLabels, TranslatorMetricsOptions } from './metrics.js';
export { metricLabelsFromEnv, TranslatorMetrics } from './metrics.js';
export type { CreateTransportOptions, TranslatorModuleOptions, TranslatorStats } from './module.js';
export { createTransport, TranslatorModule } from './module.js';
export type {
  OverflowPolicy,
  PipelineHooks,
  PipelineOptions,
  PipelineState,
  PipelineStats,
  PipelineStopOptions,
} from './pipeline.js';
export { DEAD_LETTER_REASON_PROPERTY, DEAD_LETTER_TOPIC_PROPERTY, Pipeline } from './pipeline.js';
export type {
  ControllableTransport,
  MethodHandler,
  MethodResponse,
  ModuleControlChannel,
  RawMqttTransportOptions,
  SdkTransportOptions,
  TwinDocument,
} from './transports/index.js';
export { RawMqttTransport, rawMqttOptionsFromEnv, SdkTransport } from './transports/index.js';
export type { TransportName, UpstreamMessage, UpstreamTransport } from './upstream-transport.js';
