import {
  type Route,
  type RouteError,
  type RouteSpec,
  tryParseRoutes,
} from '../../emulator/edgehub/routes/index.js';
import { type AppBatchOptions, MAX_MESSAGE_BYTES, type UpstreamShape, upstreamShape } from './sizing.js';

/**
 * Reading a deployment manifest the way the generator and the linter both need it: module
 * definitions, env values as strings, which modules are translators, the parsed routes and the
 * store-and-forward queues they create (one per endpoint and priority, edge-facts §2).
 */

/** Translator defaults the model assumes when an env var is absent (modules/translator/config/settings.ts). */
export const TRANSLATOR_DEFAULTS = {
  batchEnabled: true,
  batchMaxMessages: 500,
  batchMaxBytes: MAX_MESSAGE_BYTES,
  batchMaxWaitTimeInMs: 50,
  outputName: 'output1',
  deadletterOutput: 'deadletter',
} as const;

/** edgeHub defaults (edge-facts §1). */
export const EDGEHUB_DEFAULTS = {
  maxUpstreamBatchSize: 10,
  messageCleanupIntervalSecs: 1800,
  checkEntireQueueOnCleanup: false,
  usePersistentStorage: true,
} as const;

type Obj = Record<string, unknown>;

/** Plain-object guard. */
export function isObject(value: unknown): value is Obj {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** RFC 6901 JSON pointer from path segments (`~` → `~0`, `/` → `~1`). */
export function jsonPointer(...segments: readonly string[]): string {
  return segments.map((s) => `/${s.replaceAll('~', '~0').replaceAll('/', '~1')}`).join('');
}

/** Pointer prefix of `$edgeAgent` desired properties. */
export const AGENT_PTR = ['modulesContent', '$edgeAgent', 'properties.desired'] as const;
/** Pointer prefix of `$edgeHub` desired properties. */
export const HUB_PTR = ['modulesContent', '$edgeHub', 'properties.desired'] as const;

/** The module name an image stands for: last path segment without tag or digest (image-map.ts convention). */
export function imageModuleName(image: string): string {
  const withoutTag = image
    .replace(/@sha256:[0-9a-f]+$/i, '')
    .replace(/:[^/:]+$/, '')
    .replace(/\$\{MODULES\.([A-Za-z0-9_-]+)(?:\.[A-Za-z0-9_-]+)?\}/, '$1');
  return withoutTag.split('/').pop()?.toLowerCase() ?? '';
}

/** One module of the manifest (system or custom) as the model sees it. */
export interface ModuleView {
  readonly name: string;
  readonly system: boolean;
  /** JSON pointer segments of the module definition. */
  readonly path: readonly string[];
  readonly definition: Obj;
  readonly env: Readonly<Record<string, string>>;
  readonly image: string;
}

/** The parts of a manifest the rules look at; tolerant of malformed input (rules report it). */
export interface ManifestView {
  readonly content: Obj;
  readonly agentDesired: Obj;
  readonly hubDesired: Obj;
  readonly edgeHub?: ModuleView;
  readonly modules: readonly ModuleView[];
  readonly routeSpecs: Readonly<Record<string, unknown>>;
  readonly routes: readonly Route[];
  readonly routeErrors: readonly RouteError[];
  /** `storeAndForwardConfiguration.timeToLiveSecs`; undefined = edgeHub's code default (never expires). */
  readonly defaultTtlSecs?: number;
}

function envOf(definition: Obj): Record<string, string> {
  const out: Record<string, string> = {};
  const env = definition.env;
  if (!isObject(env)) return out;
  for (const [k, v] of Object.entries(env)) {
    if (isObject(v) && v.value !== undefined && v.value !== null) out[k] = String(v.value);
  }
  return out;
}

function moduleView(name: string, system: boolean, path: readonly string[], definition: Obj): ModuleView {
  const settings = isObject(definition.settings) ? definition.settings : {};
  return {
    name,
    system,
    path,
    definition,
    env: envOf(definition),
    image: typeof settings.image === 'string' ? settings.image : '',
  };
}

/** Builds the {@link ManifestView} of a parsed JSON manifest (`modulesContent` or `content` at the root). */
export function viewManifest(manifest: unknown): ManifestView {
  const root = isObject(manifest) ? manifest : {};
  const content = isObject(root.modulesContent)
    ? root.modulesContent
    : isObject(root.content)
      ? root.content
      : {};
  const agent = isObject(content.$edgeAgent) ? content.$edgeAgent['properties.desired'] : undefined;
  const hub = isObject(content.$edgeHub) ? content.$edgeHub['properties.desired'] : undefined;
  const agentDesired = isObject(agent) ? agent : {};
  const hubDesired = isObject(hub) ? hub : {};
  const system = isObject(agentDesired.systemModules) ? agentDesired.systemModules : {};
  const edgeHub = isObject(system.edgeHub)
    ? moduleView('$edgeHub', true, [...AGENT_PTR, 'systemModules', 'edgeHub'], system.edgeHub)
    : undefined;
  const modules: ModuleView[] = [];
  const defs = isObject(agentDesired.modules) ? agentDesired.modules : {};
  for (const [name, def] of Object.entries(defs)) {
    if (isObject(def)) modules.push(moduleView(name, false, [...AGENT_PTR, 'modules', name], def));
  }
  const routeSpecs = isObject(hubDesired.routes) ? hubDesired.routes : {};
  const valid: Record<string, RouteSpec> = {};
  for (const [name, spec] of Object.entries(routeSpecs)) {
    if (typeof spec === 'string' || (isObject(spec) && typeof spec.route === 'string')) {
      valid[name] = spec as RouteSpec;
    }
  }
  const { routes, errors } = tryParseRoutes(valid);
  const saf = isObject(hubDesired.storeAndForwardConfiguration)
    ? hubDesired.storeAndForwardConfiguration
    : {};
  const ttl =
    typeof saf.timeToLiveSecs === 'number' && saf.timeToLiveSecs > 0 ? saf.timeToLiveSecs : undefined;
  return {
    content,
    agentDesired,
    hubDesired,
    ...(edgeHub ? { edgeHub } : {}),
    modules,
    routeSpecs,
    routes,
    routeErrors: errors,
    ...(ttl !== undefined ? { defaultTtlSecs: ttl } : {}),
  };
}

/** True when the module runs this package's translator (image named `translator`). */
export function isTranslator(m: ModuleView): boolean {
  return imageModuleName(m.image) === 'translator';
}

function intEnv(env: Readonly<Record<string, string>>, key: string, fallback: number): number {
  const raw = env[key];
  const n = raw === undefined ? Number.NaN : Number(raw.trim());
  return Number.isFinite(n) ? n : fallback;
}

function boolEnv(env: Readonly<Record<string, string>>, key: string, fallback: boolean): boolean {
  const raw = env[key]?.trim().toLowerCase();
  if (raw === undefined || raw === '') return fallback;
  return raw === 'true' || raw === '1' || raw === 'yes';
}

/** A translator's application batching from its env, undefined when off. */
export function translatorBatch(m: ModuleView): AppBatchOptions | undefined {
  if (!boolEnv(m.env, 'BatchEnabled', TRANSLATOR_DEFAULTS.batchEnabled)) return undefined;
  return {
    maxMessages: intEnv(m.env, 'BatchMaxMessages', TRANSLATOR_DEFAULTS.batchMaxMessages),
    maxBytes: intEnv(m.env, 'BatchMaxBytes', TRANSLATOR_DEFAULTS.batchMaxBytes),
    maxWaitTimeInMs: intEnv(m.env, 'BatchMaxWaitTimeInMs', TRANSLATOR_DEFAULTS.batchMaxWaitTimeInMs),
  };
}

/** Outputs a translator module sends on: its telemetry output and the dead-letter output. */
export function translatorOutputs(m: ModuleView): { telemetry: string; deadletter: string } {
  return {
    telemetry: m.env.OutputName?.trim() || TRANSLATOR_DEFAULTS.outputName,
    deadletter: TRANSLATOR_DEFAULTS.deadletterOutput,
  };
}

/** edgeHub env value as a string, or undefined. */
export function hubEnv(view: ManifestView, key: string): string | undefined {
  return view.edgeHub?.env[key];
}

/** edgeHub integer env with its default. */
export function hubInt(view: ManifestView, key: string, fallback: number): number {
  return intEnv(view.edgeHub?.env ?? {}, key, fallback);
}

/** edgeHub boolean env with its default. */
export function hubBool(view: ManifestView, key: string, fallback: boolean): boolean {
  return boolEnv(view.edgeHub?.env ?? {}, key, fallback);
}

/** The normalised source path of module `m`'s output `o` (what a route's FROM must prefix). */
export function outputPath(moduleName: string, output: string): string {
  return `/messages/modules/${moduleName}/outputs/${output}/`.toLowerCase();
}

/** True when the route takes messages from module `m`'s output `o`. */
export function routeConsumes(route: Route, moduleName: string, output: string): boolean {
  return outputPath(moduleName, output).startsWith(route.sourcePrefix);
}

/** One store-and-forward queue (endpoint + priority) and the load the model puts on it. */
export interface QueueLoad {
  /** `iothub` for $upstream, else `/modules/{m}/inputs/{i}`. */
  readonly endpointId: string;
  readonly priority: number;
  /** Names of the routes feeding it. */
  readonly routes: readonly string[];
  /** Distinct effective TTLs of those routes, seconds (Infinity = never expires). */
  readonly ttlsSecs: readonly number[];
  /** Longest of {@link ttlsSecs}: how long messages can pile up. */
  readonly ttlSecs: number;
  /** True when only dead-letter outputs feed it (no steady-state load). */
  readonly deadletterOnly: boolean;
  /** Shape of the messages it stores (the largest messages among the telemetry senders feeding it). */
  readonly shape: UpstreamShape;
}

/**
 * The queues the manifest's routes create and their load when the source rate is `ratePerSec`
 * messages of `payloadLength` bytes. The model's assumptions (documented in the linter's help):
 * every telemetry queue receives the whole source rate (worst case: any queue could carry all of
 * it); dead-letter routes carry no steady-state load; translators share the rate evenly, which
 * sets how full a batch gets before its linger expires; other senders forward unbatched.
 */
export function queueLoads(view: ManifestView, ratePerSec: number, payloadLength: number): QueueLoad[] {
  const translators = view.modules.filter(isTranslator);
  const perTranslatorRate = ratePerSec / Math.max(1, translators.length);
  const byKey = new Map<
    string,
    { endpointId: string; priority: number; routes: Route[]; telemetry: boolean; shapes: UpstreamShape[] }
  >();
  for (const route of view.routes) {
    const key = `${route.sink.endpointId}|${route.priority}`;
    let q = byKey.get(key);
    if (!q) {
      q = {
        endpointId: route.sink.endpointId,
        priority: route.priority,
        routes: [],
        telemetry: false,
        shapes: [],
      };
      byKey.set(key, q);
    }
    q.routes.push(route);
    const senders = translators.filter((t) => routeConsumes(route, t.name, translatorOutputs(t).telemetry));
    // A dead-letter output carries no steady-state load (only failures).
    const onlyDeadletter = route.sourcePrefix.endsWith(`/outputs/${TRANSLATOR_DEFAULTS.deadletterOutput}/`);
    if (onlyDeadletter) continue;
    q.telemetry = true;
    if (senders.length === 0) q.shapes.push(upstreamShape(ratePerSec, payloadLength));
    for (const t of senders) {
      const s = upstreamShape(perTranslatorRate, payloadLength, translatorBatch(t));
      q.shapes.push({ ...s, messagesPerSec: ratePerSec / s.recordsPerMessage });
    }
  }
  return [...byKey.values()].map((q) => {
    const ttls = [
      ...new Set(q.routes.map((r) => r.timeToLiveSecs ?? view.defaultTtlSecs ?? Number.POSITIVE_INFINITY)),
    ];
    // The largest message sets edgeHub's batch cap; the fewest records per message the overhead.
    const shape = q.shapes.reduce<UpstreamShape>(
      (a, b) => ({
        recordsPerMessage: Math.min(a.recordsPerMessage, b.recordsPerMessage),
        messageBytes: Math.max(a.messageBytes, b.messageBytes),
        messagesPerSec: Math.max(a.messagesPerSec, b.messagesPerSec),
      }),
      q.shapes[0] ?? upstreamShape(0, payloadLength),
    );
    return {
      endpointId: q.endpointId,
      priority: q.priority,
      routes: q.routes.map((r) => r.name),
      ttlsSecs: ttls,
      ttlSecs: Math.max(...ttls),
      deadletterOnly: !q.telemetry,
      shape,
    };
  });
}
