// The naive competitor module (benchmark baseline): named exports only.
export type { NaiveModuleOptions, NaiveSettings, NaiveStats } from './naive.js';
export { NaiveModule, naiveSettingsFromEnv } from './naive.js';
