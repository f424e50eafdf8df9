import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { EdgePerfError, parseSettings } from '../../modules/common/index.js';

/** `{"NAME": {"value": …}}` as in the manifest (edge-facts §3). */
const envSchema = z.record(z.string(), z.object({ value: z.union([z.string(), z.number(), z.boolean()]) }));

const moduleSchema = z.object({
  version: z.string().optional(),
  type: z.literal('docker'),
  status: z.enum(['running', 'stopped']).default('running'),
  restartPolicy: z.enum(['never', 'on-failure', 'on-unhealthy', 'always']).default('always'),
  startupOrder: z.number().int().min(0).optional(),
  settings: z.object({ image: z.string().min(1), createOptions: z.string().optional() }).loose(),
  env: envSchema.optional(),
});

const systemModuleSchema = z
  .object({
    type: z.literal('docker'),
    settings: z.object({ image: z.string().min(1), createOptions: z.string().optional() }).loose(),
    env: envSchema.optional(),
  })
  .loose();

const edgeAgentSchema = z.object({
  schemaVersion: z.string(),
  runtime: z.object({ type: z.literal('docker') }).loose(),
  systemModules: z.object({ edgeAgent: systemModuleSchema, edgeHub: systemModuleSchema }),
  modules: z
    .record(z.string().regex(/^[A-Za-z0-9_-]+$/, 'module names are letters, digits, - and _'), moduleSchema)
    .default({}),
});

const edgeHubSchema = z
  .object({
    schemaVersion: z.string(),
    routes: z.record(z.string(), z.unknown()).default({}),
    storeAndForwardConfiguration: z
      .object({ timeToLiveSecs: z.number().int().min(0).optional() })
      .loose()
      .optional(),
  })
  .loose();

/** A module the agent should run or register. */
export interface ModuleSpec {
  readonly name: string;
  readonly image: string;
  readonly status: 'running' | 'stopped';
  readonly restartPolicy: 'never' | 'on-failure' | 'on-unhealthy' | 'always';
  readonly startupOrder: number;
  /** Env from the manifest, values as strings (what a container would see). */
  readonly env: Readonly<Record<string, string>>;
  readonly createOptions?: string;
  /** The module twin's desired properties from `modulesContent.<name>`, `{}` when absent. */
  readonly desired: Readonly<Record<string, unknown>>;
}

/** A deployment manifest reduced to what the local runtime needs. */
export interface DeploymentSpec {
  readonly modules: readonly ModuleSpec[];
  /** edgeHub's env from `systemModules.edgeHub.env`, as strings. */
  readonly edgeHubEnv: Readonly<Record<string, string>>;
  /** `$edgeHub` desired properties: routes, storeAndForwardConfiguration, schemaVersion. */
  readonly edgeHubDesired: Readonly<Record<string, unknown>>;
  /**
   * `properties.desired` of `$edgeAgent` and `$edgeHub` as given (unparsed, no defaults added):
   * what IoT Hub stores in those twins when the deployment is applied.
   */
  readonly systemDesired: {
    readonly $edgeAgent: Readonly<Record<string, unknown>>;
    readonly $edgeHub: Readonly<Record<string, unknown>>;
  };
  /** The manifest as given (after placeholder resolution), for re-deploys and reports. */
  readonly raw: Readonly<Record<string, unknown>>;
}

/** Options for {@link resolvePlaceholders}. */
export interface PlaceholderOptions {
  /** Image tag used for `${MODULES.x}` placeholders; default `local`. */
  readonly tag?: string;
  /** Repository prefix for `${MODULES.x}`; default `edgeperf`. */
  readonly registry?: string;
}

/**
 * Resolves IoT Edge tooling placeholders in a deployment template: `${MODULES.name}` and
 * `${MODULES.name.platform}` become `<registry>/<name>:<tag>`. Other `${…}` placeholders (env
 * references in the tooling) are left for the caller and reported by {@link parseDeployment}.
 */
export function resolvePlaceholders(text: string, options: PlaceholderOptions = {}): string {
  const tag = options.tag ?? 'local';
  const registry = options.registry ?? 'edgeperf';
  return text.replace(/\$\{MODULES\.([A-Za-z0-9_-]+)(?:\.[A-Za-z0-9_-]+)?\}/g, (_m, name: string) => {
    return `${registry}/${name.toLowerCase()}:${tag}`;
  });
}

/**
 * Parses a deployment manifest (or a resolved template) into a {@link DeploymentSpec}. Every
 * invalid field is reported at once, each with its path in the manifest.
 *
 * @throws ConfigError for schema violations; EdgePerfError(E_MANIFEST) when the shape is not a manifest.
 */
export function parseDeployment(manifest: unknown): DeploymentSpec {
  if (manifest === null || typeof manifest !== 'object') {
    throw new EdgePerfError('E_MANIFEST', 'manifest: expected a JSON object with modulesContent', {
      exitCode: 2,
    });
  }
  const root = manifest as Record<string, unknown>;
  const content = (root.modulesContent ?? root.content ?? root) as Record<string, unknown>;
  const agentDesired = (content.$edgeAgent as Record<string, unknown> | undefined)?.['properties.desired'];
  const hubDesired = (content.$edgeHub as Record<string, unknown> | undefined)?.['properties.desired'];
  if (agentDesired === undefined || hubDesired === undefined) {
    throw new EdgePerfError(
      'E_MANIFEST',
      'manifest: modulesContent needs $edgeAgent and $edgeHub with "properties.desired"',
      { exitCode: 2 },
    );
  }
  const unresolved = JSON.stringify(content).match(/\$\{[^}]+\}/);
  if (unresolved) {
    throw new EdgePerfError('E_MANIFEST', `manifest: unresolved placeholder ${unresolved[0]}`, {
      exitCode: 2,
    });
  }
  const agent = parseSettings(edgeAgentSchema, agentDesired, 'modulesContent.$edgeAgent.properties.desired');
  const hub = parseSettings(edgeHubSchema, hubDesired, 'modulesContent.$edgeHub.properties.desired');
  const modules: ModuleSpec[] = Object.entries(agent.modules).map(([name, m]) => {
    const twin = (content[name] as Record<string, unknown> | undefined)?.['properties.desired'];
    return {
      name,
      image: m.settings.image,
      status: m.status,
      restartPolicy: m.restartPolicy,
      startupOrder: m.startupOrder ?? 4294967295,
      env: envToStrings(m.env),
      ...(m.settings.createOptions === undefined ? {} : { createOptions: m.settings.createOptions }),
      desired: twin !== null && typeof twin === 'object' ? (twin as Record<string, unknown>) : {},
    };
  });
  modules.sort((a, b) => a.startupOrder - b.startupOrder || a.name.localeCompare(b.name));
  return {
    modules,
    edgeHubEnv: envToStrings(agent.systemModules.edgeHub.env),
    edgeHubDesired: hub,
    systemDesired: {
      $edgeAgent: agentDesired as Record<string, unknown>,
      $edgeHub: hubDesired as Record<string, unknown>,
    },
    raw: root,
  };
}

/**
 * Reads a manifest or template file; templates (`${MODULES.…}`) are resolved first.
 * @throws EdgePerfError(E_MANIFEST) naming the file when it cannot be read or is not JSON.
 */
export async function loadDeployment(
  file: string,
  options: PlaceholderOptions = {},
): Promise<DeploymentSpec> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new EdgePerfError('E_MANIFEST', `manifest ${file}: cannot read (${(err as Error).message})`, {
      exitCode: 2,
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(resolvePlaceholders(text, options));
  } catch (err) {
    throw new EdgePerfError('E_MANIFEST', `manifest ${file}: not valid JSON (${(err as Error).message})`, {
      exitCode: 2,
    });
  }
  return parseDeployment(json);
}

function envToStrings(
  env: Record<string, { value: string | number | boolean }> | undefined,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env ?? {})) out[k] = String(v.value);
  return out;
}
