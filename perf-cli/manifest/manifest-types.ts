/**
 * Types of an IoT Edge deployment manifest as this package writes and reads it (edge-facts §3):
 * `modulesContent` with `$edgeAgent` (schema 1.1), `$edgeHub` (schema 1.2, route objects) and one
 * twin per module. Only the fields we set are typed; everything else passes through.
 */

/** `{"NAME": {"value": …}}`: a module's environment. Values are strings in what we generate. */
export type EnvMap = Record<string, { value: string | number | boolean }>;

/** Docker settings of a module; `createOptions` is a JSON **string** in a deployment. */
export interface ModuleSettings {
  image: string;
  /** Docker create options serialised as a JSON string (object form only in templates). */
  createOptions?: string;
  [key: string]: unknown;
}

/** A custom module under `$edgeAgent.properties.desired.modules`. */
export interface ModuleDefinition {
  version?: string;
  type: 'docker';
  status: 'running' | 'stopped';
  restartPolicy: 'never' | 'on-failure' | 'on-unhealthy' | 'always';
  startupOrder?: number;
  settings: ModuleSettings;
  env?: EnvMap;
  [key: string]: unknown;
}

/** `$edgeAgent` or `$edgeHub` under `systemModules`. */
export interface SystemModuleDefinition {
  type: 'docker';
  status?: 'running' | 'stopped';
  restartPolicy?: 'never' | 'on-failure' | 'on-unhealthy' | 'always';
  settings: ModuleSettings;
  env?: EnvMap;
  [key: string]: unknown;
}

/** `$edgeAgent` desired properties. */
export interface EdgeAgentDesired {
  schemaVersion: string;
  runtime: { type: 'docker'; settings: Record<string, unknown> };
  systemModules: { edgeAgent: SystemModuleDefinition; edgeHub: SystemModuleDefinition };
  modules: Record<string, ModuleDefinition>;
  [key: string]: unknown;
}

/** A route: a string, or (schema 1.1+) an object with a priority (0 highest … 9) and a TTL in seconds. */
export type RouteDefinition = string | { route: string; priority?: number; timeToLiveSecs?: number };

/** `$edgeHub` desired properties. */
export interface EdgeHubDesired {
  schemaVersion: string;
  routes: Record<string, RouteDefinition>;
  storeAndForwardConfiguration?: { timeToLiveSecs: number; [key: string]: unknown };
  [key: string]: unknown;
}

/** A deployment manifest (what `az iot edge set-modules` takes). */
export interface DeploymentManifest {
  modulesContent: {
    $edgeAgent: { 'properties.desired': EdgeAgentDesired };
    $edgeHub: { 'properties.desired': EdgeHubDesired };
    [module: string]: { 'properties.desired': Record<string, unknown> };
  };
}
