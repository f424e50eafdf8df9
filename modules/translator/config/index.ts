export { isInsideIotEdge, settingsFromEnv, translatorEnvSchema } from './env.js';
export type { DesiredOutcome } from './live-config.js';
export { TranslatorConfig } from './live-config.js';
export type {
  BatchSettings,
  EmbeddedBrokerSettings,
  MetricsSettings,
  SettingsSection,
  SourceSettings,
  TranslatorSettings,
  TranslatorSettingsInput,
} from './settings.js';
export { changedSections, MAX_UPSTREAM_BYTES, resolveSettings } from './settings.js';
export { mergeDesiredPatch, settingsFromTwin, settingsToReported, translatorTwinSchema } from './twin.js';
