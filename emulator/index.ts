export type { DeploymentSpec, ModuleSpec, PlaceholderOptions } from './agent/manifest.js';
export { loadDeployment, parseDeployment, resolvePlaceholders } from './agent/manifest.js';
export { createLocalHubAgent, useLocalHubAgent } from './iothub/rest-client-agent.js';
export type { RuntimeReadyInfo } from './runtime.js';
export { LocalEdgeRuntime } from './runtime.js';
export type { LocalEdgeRuntimeOptions, RuntimePorts } from './runtime-options.js';
