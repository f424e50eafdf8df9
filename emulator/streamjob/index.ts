export type { BuiltInEndpointEvent, LogicalMessage } from './asa-input.js';
export { logicalMessagesOf, parseAsaTime, toAsaInputEvent } from './asa-input.js';
export { parseAsaJson, readJobConfig } from './asa-project.js';
export type {
  EventOrderingOptions,
  OutOfOrderPolicy,
  PushOptions,
  StreamJobEngineOptions,
  StreamJobRow,
  StreamJobStats,
} from './engine.js';
export { percentileCont, runStreamJob, StreamJobEngine } from './engine.js';
export type { StreamJobRunnerOptions, StreamJobRunnerStats, StreamJobStopOptions } from './runner.js';
export { StreamJobRunner } from './runner.js';
