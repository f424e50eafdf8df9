export type { ManifestOptions, ManifestReport, ManifestTarget } from './generator.js';
export { generateManifest, generateManifestWithReport, validateGenerated } from './generator.js';
export type { LintContext, LintFinding, LintRule, Severity } from './lint-rules.js';
export { LINT_RULES } from './lint-rules.js';
export type { LintOptions, LintResult, SkippedRule } from './linter.js';
export { DEFAULT_RAM_GB, lintExitCode, lintManifest } from './linter.js';
export type {
  DeploymentManifest,
  EdgeAgentDesired,
  EdgeHubDesired,
  EnvMap,
  ModuleDefinition,
  ModuleSettings,
  RouteDefinition,
  SystemModuleDefinition,
} from './manifest-types.js';
export type { Profile, ProfileName, TranslatorInstance } from './profiles.js';
export { getProfile, isProfileName, PROFILE_NAMES } from './profiles.js';
export type { SetAssignment } from './set-path.js';
export { applyAssignments, parseSetAssignment } from './set-path.js';
export type { AppBatchOptions, QueueSizing, QueueSizingOptions, UpstreamShape } from './sizing.js';
export {
  appBatchFor256KiB,
  DEFAULT_OVERHEAD_BYTES_PER_MESSAGE,
  DEFAULT_USABLE_DISK_FRACTION,
  formatBytes,
  formatDuration,
  GB,
  GIB,
  MAX_MESSAGE_BYTES,
  matchedUpstreamBatchSize,
  sizeQueues,
  upstreamShape,
} from './sizing.js';
