import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { ConfigError, type ConfigIssue, parseSettings } from '../../modules/common/index.js';
import { parseRoute, type Route, RouteError, type RouteSpec } from './routes/index.js';

/**
 * edgeHub settings from its two sources: environment variables (edge-facts §1) and the
 * `$edgeHub` module twin's desired properties (§3). Each source has one schema; every invalid
 * field of a source is reported at once (ConfigError).
 */

const boolString = (name: string) =>
  z
    .string()
    .trim()
    .toLowerCase()
    .refine((v) => v === 'true' || v === 'false', { message: `${name} must be true or false` })
    .transform((v) => v === 'true');

const intString = (name: string, min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, { message: `${name} must be an integer from ${min} to ${max}` })
    .transform(Number)
    .refine((n) => n >= min && n <= max, { message: `${name} must be an integer from ${min} to ${max}` });

const envSchema = z.object({
  MaxUpstreamBatchSize: intString('MaxUpstreamBatchSize', 1, 10_000).default(10),
  UpstreamFanOutFactor: intString('UpstreamFanOutFactor', 1, 1_000).default(10),
  UsePersistentStorage: boolString('UsePersistentStorage').default(true),
  StorageFolder: z.string().min(1, { message: 'StorageFolder must be a non-empty path' }).optional(),
  EnableNonPersistentStorageBackup: boolString('EnableNonPersistentStorageBackup').default(false),
  MessageCleanupIntervalSecs: intString('MessageCleanupIntervalSecs', 1, 31_536_000).default(1800),
  CheckEntireQueueOnCleanup: boolString('CheckEntireQueueOnCleanup').default(false),
  MessageAckTimeoutSecs: intString('MessageAckTimeoutSecs', 1, 86_400).default(30),
  Metrics__Listener__Port: intString('Metrics__Listener__Port', 0, 65_535).default(9600),
  UpstreamProtocol: z
    .string()
    .refine((v) => ['amqp', 'amqpws', 'mqtt', 'mqttws'].includes(v.toLowerCase()), {
      message: 'UpstreamProtocol must be Amqp, AmqpWs, Mqtt or MqttWs',
    })
    .optional(),
});

/** Upstream protocol edgeHub uses to reach IoT Hub (informational in the local runtime). */
export type UpstreamProtocol = 'Amqp' | 'AmqpWs' | 'Mqtt' | 'MqttWs';

/** edgeHub settings from environment variables; defaults as edgeHub's (edge-facts §1). */
export interface EdgeHubEnvSettings {
  /** Max messages in one upstream batch. Default 10. */
  readonly maxUpstreamBatchSize: number;
  /** Sender groups sent upstream in parallel. Default 10. */
  readonly upstreamFanOutFactor: number;
  /** false = in-memory store. Default true. */
  readonly usePersistentStorage: boolean;
  /** `StorageFolder` (default the OS temp dir) with `edgeHub` appended, as edgeHub does. */
  readonly storageFolder: string;
  /** In-memory store saved on graceful stop and reloaded on start. Default false. */
  readonly enableNonPersistentStorageBackup: boolean;
  /** Interval of the TTL cleanup task, seconds. Default 1800. */
  readonly messageCleanupIntervalSecs: number;
  /** false: cleanup checks only each queue's head. Default false. */
  readonly checkEntireQueueOnCleanup: boolean;
  /** How long to wait for a module's ack, seconds. Default 30. */
  readonly messageAckTimeoutSecs: number;
  /** Port of the Prometheus `/metrics` listener. Default 9600; 0 = ephemeral. */
  readonly metricsListenerPort: number;
  /** Default Amqp. */
  readonly upstreamProtocol: UpstreamProtocol;
}

/**
 * Reads edgeHub's environment variables (unknown variables are ignored).
 * @param env - e.g. `process.env` or a module's manifest `env` flattened to strings.
 * @throws ConfigError naming every invalid variable.
 */
export function parseEdgeHubEnv(env: Readonly<Record<string, string | undefined>>): EdgeHubEnvSettings {
  const known: Record<string, string> = {};
  for (const key of Object.keys(envSchema.shape)) {
    const v = env[key];
    if (v !== undefined && v !== '') known[key] = v;
  }
  const s = parseSettings(envSchema, known, 'env');
  const protocols: readonly UpstreamProtocol[] = ['Amqp', 'AmqpWs', 'Mqtt', 'MqttWs'];
  return {
    maxUpstreamBatchSize: s.MaxUpstreamBatchSize,
    upstreamFanOutFactor: s.UpstreamFanOutFactor,
    usePersistentStorage: s.UsePersistentStorage,
    storageFolder: join(s.StorageFolder ?? tmpdir(), 'edgeHub'),
    enableNonPersistentStorageBackup: s.EnableNonPersistentStorageBackup,
    messageCleanupIntervalSecs: s.MessageCleanupIntervalSecs,
    checkEntireQueueOnCleanup: s.CheckEntireQueueOnCleanup,
    messageAckTimeoutSecs: s.MessageAckTimeoutSecs,
    metricsListenerPort: s.Metrics__Listener__Port,
    upstreamProtocol: protocols.find((p) => p.toLowerCase() === s.UpstreamProtocol?.toLowerCase()) ?? 'Amqp',
  };
}

const routeObject = z.strictObject({
  route: z.string().min(1, { message: 'route must be a non-empty route string' }),
  priority: z.number().int().min(0).max(9, { message: 'priority must be an integer from 0 to 9' }).optional(),
  timeToLiveSecs: z.number().int().min(0, { message: 'timeToLiveSecs must be an integer >= 0' }).optional(),
});

const SCHEMA_VERSIONS = ['1.0', '1.1', '1.2', '1.3'] as const;

const desiredSchema = z
  .looseObject({
    schemaVersion: z.enum(SCHEMA_VERSIONS, {
      message: `schemaVersion must be one of ${SCHEMA_VERSIONS.join(', ')}`,
    }),
    routes: z.record(z.string(), z.union([z.string().min(1), routeObject]), {
      message: 'routes must be an object of name: route string or {route, priority, timeToLiveSecs}',
    }),
    storeAndForwardConfiguration: z
      .looseObject({
        timeToLiveSecs: z
          .number()
          .int()
          .min(0, { message: 'timeToLiveSecs must be an integer >= 0' })
          .optional(),
        storeLimits: z
          .looseObject({
            maxSizeBytes: z.number().int().positive({ message: 'maxSizeBytes must be a positive integer' }),
          })
          .optional(),
      })
      .optional(),
  })
  .superRefine((value, ctx) => {
    if (value.schemaVersion !== '1.0') return;
    for (const [name, spec] of Object.entries(value.routes)) {
      if (typeof spec === 'object') {
        ctx.addIssue({
          code: 'custom',
          path: ['routes', name],
          message: 'route objects {route, priority, timeToLiveSecs} need schemaVersion 1.1 or later',
        });
      }
    }
  });

// Route syntax is checked outside the schema so that route errors are reported together with
// every other invalid field (zod skips refinements once a field fails).
function routeIssues(desired: unknown): ConfigIssue[] {
  if (desired === null || typeof desired !== 'object') return [];
  const routes = (desired as { routes?: unknown }).routes;
  if (routes === null || typeof routes !== 'object') return [];
  const issues: ConfigIssue[] = [];
  for (const [name, spec] of Object.entries(routes as Record<string, unknown>)) {
    const text = typeof spec === 'string' ? spec : (spec as { route?: unknown } | null)?.route;
    if (typeof text !== 'string' || text === '') continue;
    try {
      parseRoute(name, text);
    } catch (err) {
      if (!(err instanceof RouteError)) throw err;
      issues.push({ field: `$edgeHub.routes.${name}`, message: err.message });
    }
  }
  return issues;
}

/** edgeHub settings from the `$edgeHub` desired properties. */
export interface EdgeHubDesiredSettings {
  readonly schemaVersion: (typeof SCHEMA_VERSIONS)[number];
  readonly routes: readonly Route[];
  /** `storeAndForwardConfiguration.timeToLiveSecs`; undefined or 0 = never expires (edgeHub's code default). */
  readonly timeToLiveSecs?: number;
  /** `storeLimits.maxSizeBytes`; applies to the in-memory store only. */
  readonly maxSizeBytes?: number;
}

/**
 * Reads the `$edgeHub` desired properties (`$version`, `mqttBroker` and other keys are ignored).
 * @throws ConfigError (source `$edgeHub`) naming every invalid field, including each invalid
 *   route with its position.
 */
export function parseEdgeHubDesired(desired: unknown): EdgeHubDesiredSettings {
  const fromRoutes = routeIssues(desired);
  let s: z.output<typeof desiredSchema>;
  try {
    s = parseSettings(desiredSchema, desired, '$edgeHub');
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const seen = new Set(err.issues.map((i) => i.field));
    throw new ConfigError('$edgeHub', [...err.issues, ...fromRoutes.filter((i) => !seen.has(i.field))]);
  }
  if (fromRoutes.length > 0) throw new ConfigError('$edgeHub', fromRoutes);
  const routes = Object.entries(s.routes).map(([name, spec]) => parseRoute(name, spec as RouteSpec));
  const ttl = s.storeAndForwardConfiguration?.timeToLiveSecs;
  const max = s.storeAndForwardConfiguration?.storeLimits?.maxSizeBytes;
  return {
    schemaVersion: s.schemaVersion,
    routes,
    ...(ttl !== undefined && ttl > 0 ? { timeToLiveSecs: ttl } : {}),
    ...(max !== undefined ? { maxSizeBytes: max } : {}),
  };
}
