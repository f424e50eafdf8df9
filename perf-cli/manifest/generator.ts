import templateJson from '../../deployment/deployment.template.json' with { type: 'json' };
import { parseDeployment, resolvePlaceholders } from '../../emulator/agent/manifest.js';
import { parseEdgeHubDesired, parseEdgeHubEnv } from '../../emulator/edgehub/settings.js';
import { ConfigError, type ConfigIssue, EdgePerfError } from '../../modules/common/index.js';
import { translatorEnvSchema } from '../../modules/translator/config/index.js';
import { isObject, isTranslator, queueLoads, viewManifest } from './manifest-model.js';
import type {
  DeploymentManifest,
  EdgeHubDesired,
  ModuleDefinition,
  RouteDefinition,
} from './manifest-types.js';
import { addMetricsCollector } from './metrics-collector.js';
import { getProfile, type Profile, type ProfileName } from './profiles.js';
import { applyAssignments, parseSetAssignment } from './set-path.js';
import {
  appBatchFor256KiB,
  DEFAULT_USABLE_DISK_FRACTION,
  formatBytes,
  GB,
  matchedUpstreamBatchSize,
  type QueueSizing,
  sizeQueues,
} from './sizing.js';

/** Where the manifest will run: the local runtime (loopback) or a real IoT Edge device (Docker network). */
export type ManifestTarget = 'local' | 'device';

/** Options of {@link generateManifest}. Defaults are those of `edgeperf manifest`. */
export interface ManifestOptions {
  /** Profile from deployment/profiles; default `high-rate`. */
  readonly profile?: ProfileName;
  /** Source messages per second the manifest is sized for; default 2000. */
  readonly ratePerSec?: number;
  /** Bytes per source message; default 1024. */
  readonly payloadLength?: number;
  /** Disk available to edgeHub's store, GB (10^9 bytes); default 32. */
  readonly diskGb?: number;
  /** TTL override, seconds (else the profile's: fixed or sized to the disk). */
  readonly ttlSecs?: number;
  /** Image repository prefix for `${MODULES.x}`; default `edgeperf` (what the local runtime maps). */
  readonly registry?: string;
  /** Image tag for `${MODULES.x}`; default `local`. */
  readonly tag?: string;
  /**
   * `local` (default): servers on 127.0.0.1, the simulator publishes to mqtt://127.0.0.1:1883.
   * `device`: servers on 0.0.0.0 and modules reach the broker by module name on the Docker
   * network (mqtt://translator:1883).
   */
  readonly target?: ManifestTarget;
  /** `TARGET.PATH=VALUE` assignments applied last (see set-path.ts). */
  readonly set?: readonly string[];
  /** Add the IoT Edge metrics collector (workspace settings from EDGEPERF_* env vars); default false. */
  readonly metricsCollector?: boolean;
}

/** What {@link generateManifestWithReport} decided, for people. */
export interface ManifestReport {
  readonly profile: ProfileName;
  readonly ratePerSec: number;
  readonly payloadLength: number;
  readonly diskGb: number;
  readonly timeToLiveSecs: number;
  readonly maxUpstreamBatchSize: number;
  /** Upstream message size the batch size was matched to, bytes. */
  readonly upstreamMessageBytes: number;
  readonly recordsPerMessage: number;
  /** Worst-case queue size over every telemetry queue (uplink down for the whole TTL). */
  readonly sizing: QueueSizing;
  /** Telemetry queues (endpoint+priority) the TTL was shared over. */
  readonly queues: number;
}

const DEFAULTS = {
  profile: 'high-rate',
  ratePerSec: 2000,
  payloadLength: 1024,
  diskGb: 32,
  registry: 'edgeperf',
  tag: 'local',
  target: 'local',
} as const;

/** Port of the first translator's metrics; instance k gets +k (edgeHub has 9600). */
const TRANSLATOR_METRICS_PORT = 9601;
/** Port of the embedded source broker in the first translator. */
const BROKER_PORT = 1883;
/** edgeHub's storage folder inside its container and the host folder bound to it (edge-facts §3). */
const STORAGE_FOLDER = '/iotedge/storage';
const HOST_STORAGE_FOLDER = '/etc/iotedge/storage/';
const CLEANUP_MIN_SECS = 60;
const CLEANUP_MAX_SECS = 1800;

function env(value: string | number | boolean): { value: string } {
  return { value: String(value) };
}

function clone<T>(value: T): T {
  return structuredClone(value);
}

function patchCreateOptions(
  settings: { createOptions?: string },
  patch: (o: Record<string, unknown>) => void,
): void {
  const parsed: unknown = settings.createOptions ? JSON.parse(settings.createOptions) : {};
  const opts = isObject(parsed) ? parsed : {};
  patch(opts);
  settings.createOptions = JSON.stringify(opts);
}

function hostConfig(o: Record<string, unknown>): Record<string, unknown> {
  if (!isObject(o.HostConfig)) o.HostConfig = {};
  return o.HostConfig as Record<string, unknown>;
}

function bindPort(o: Record<string, unknown>, port: number): void {
  const hc = hostConfig(o);
  if (!isObject(hc.PortBindings)) hc.PortBindings = {};
  (hc.PortBindings as Record<string, unknown>)[`${port}/tcp`] = [{ HostPort: String(port) }];
  if (!isObject(o.ExposedPorts)) o.ExposedPorts = {};
  (o.ExposedPorts as Record<string, unknown>)[`${port}/tcp`] = {};
}

function checkNumber(field: string, value: number, min: number, max: number, issues: ConfigIssue[]): void {
  if (!Number.isFinite(value) || value < min || value > max) {
    issues.push({ field, message: `must be a number from ${min} to ${max} (got ${value})` });
  }
}

/**
 * Resolves deployment.template.json with a profile into a deployment manifest, with the
 * decisions it made (TTL, batch sizes, worst-case queue size). No file I/O.
 *
 * @throws ConfigError (exit 2) for out-of-range options, a TTL whose worst case does not fit
 *   the disk, or a manifest that `--set` made invalid (every problem at once);
 *   EdgePerfError(E_ARGS) for a malformed `--set`.
 */
export function generateManifestWithReport(options: ManifestOptions = {}): {
  manifest: DeploymentManifest;
  report: ManifestReport;
} {
  const profile = getProfile(options.profile ?? DEFAULTS.profile);
  const rate = options.ratePerSec ?? DEFAULTS.ratePerSec;
  const payload = options.payloadLength ?? DEFAULTS.payloadLength;
  const diskGb = options.diskGb ?? DEFAULTS.diskGb;
  const target = options.target ?? DEFAULTS.target;
  const issues: ConfigIssue[] = [];
  checkNumber('ratePerSec', rate, 0.001, 1_000_000, issues);
  checkNumber('payloadLength', payload, 1, 256 * 1024, issues);
  checkNumber('diskGb', diskGb, 0.001, 1_000_000, issues);
  if (options.ttlSecs !== undefined) checkNumber('ttlSecs', options.ttlSecs, 1, 4_294_967_295, issues);
  if (issues.length > 0) throw new ConfigError('manifest options', issues);
  const assignments = (options.set ?? []).map(parseSetAssignment);

  const manifest = clone(templateJson) as unknown as DeploymentManifest & { '$schema-template'?: string };
  // A tooling key: the deployment schema (2.0) allows only modulesContent at the root.
  delete manifest['$schema-template'];
  const agent = manifest.modulesContent.$edgeAgent['properties.desired'];
  const hub = manifest.modulesContent.$edgeHub['properties.desired'];
  const edgeHub = agent.systemModules.edgeHub;

  buildTranslators(manifest, profile, payload, target);
  const simulator = agent.modules.simulator;
  if (simulator) {
    simulator.env = { ...simulator.env, SourceBrokerUrl: env(brokerUrl(profile, target)) };
    const devices = profile.simulator.devices;
    manifest.modulesContent.simulator = {
      'properties.desired': { config: { targetRate: rate, payloadLength: payload, devices } },
    };
  }

  // edgeHub: storage, metrics.
  edgeHub.env = { ...edgeHub.env };
  if (profile.edgeHub.storage === 'host') {
    edgeHub.env.UsePersistentStorage = env(true);
    edgeHub.env.StorageFolder = env(STORAGE_FOLDER);
    patchCreateOptions(edgeHub.settings, (o) => {
      const hc = hostConfig(o);
      const binds = Array.isArray(hc.Binds) ? (hc.Binds as string[]) : [];
      hc.Binds = [
        ...binds.filter((b) => !b.endsWith(`:${STORAGE_FOLDER}/`)),
        `${HOST_STORAGE_FOLDER}:${STORAGE_FOLDER}/`,
      ];
    });
  }
  if (profile.edgeHub.exposeMetrics) {
    edgeHub.env.Metrics__Listener__Port = env(9600);
    patchCreateOptions(edgeHub.settings, (o) => bindPort(o, 9600));
  }

  // Shape of what edgeHub stores, then batch size and TTL sized from it.
  const view0 = viewManifest(manifest);
  const loads0 = queueLoads(view0, rate, payload).filter(
    (q) => !q.deadletterOnly && q.endpointId === 'iothub',
  );
  const largest = Math.max(payload, ...loads0.map((q) => q.shape.messageBytes));
  const records = Math.min(...loads0.map((q) => q.shape.recordsPerMessage), Number.POSITIVE_INFINITY);
  const recordsPerMessage = Number.isFinite(records) ? records : 1;
  const mubs =
    profile.edgeHub.maxUpstreamBatchSize === 'match-message-size'
      ? matchedUpstreamBatchSize(largest)
      : profile.edgeHub.maxUpstreamBatchSize;
  edgeHub.env.MaxUpstreamBatchSize = env(mubs);

  const queues = Math.max(1, loads0.length);
  const perQueue = sizeQueues({
    ratePerSec: rate,
    payloadLength: payload,
    ttlSecs: 1,
    recordsPerMessage,
    diskGb,
  });
  const fitTtl = Math.floor((perQueue.maxTtlSecs ?? 0) / queues);
  const ttl =
    options.ttlSecs ??
    (profile.edgeHub.timeToLiveSecs === 'fit-disk' ? fitTtl : profile.edgeHub.timeToLiveSecs);
  if (ttl < 1) {
    throw new ConfigError('manifest options', [
      {
        field: 'diskGb',
        message: `${diskGb} GB cannot hold even 1 s of ${rate} msg/s × ${payload} B over ${queues} queue(s)`,
      },
    ]);
  }
  const sizing = sizeQueues({
    ratePerSec: rate,
    payloadLength: payload,
    ttlSecs: ttl,
    queues,
    recordsPerMessage,
    diskGb,
  });
  if (profile.edgeHub.storage === 'host' && sizing.fits === false) {
    throw new ConfigError('manifest options', [
      {
        field: options.ttlSecs !== undefined ? 'ttlSecs' : `profile ${profile.name} timeToLiveSecs`,
        message: `${ttl} s at ${rate} msg/s × ${payload} B over ${queues} queue(s) needs ${formatBytes(sizing.diskBytes)} but ${Math.round(DEFAULT_USABLE_DISK_FRACTION * 100)}% of ${diskGb} GB is ${formatBytes(diskGb * GB * DEFAULT_USABLE_DISK_FRACTION)}; lower the rate, raise the disk or set a TTL ≤ ${fitTtl} s`,
      },
    ]);
  }
  hub.storeAndForwardConfiguration = { timeToLiveSecs: ttl };

  if (profile.edgeHub.cleanup === 'when-shared' && endpointShared(hub)) {
    edgeHub.env.CheckEntireQueueOnCleanup = env(true);
    const interval = Math.max(CLEANUP_MIN_SECS, Math.min(CLEANUP_MAX_SECS, Math.floor(ttl / 4)));
    edgeHub.env.MessageCleanupIntervalSecs = env(Math.min(interval, ttl));
  }

  if (profile.set) {
    applyAssignments(
      manifest,
      Object.entries(profile.set).map(([k, v]) =>
        parseSetAssignment(`${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`),
      ),
    );
  }
  if (options.metricsCollector) addMetricsCollector(manifest, target);
  applyAssignments(manifest, assignments);

  const resolved = JSON.parse(
    resolvePlaceholders(JSON.stringify(manifest), {
      registry: options.registry ?? DEFAULTS.registry,
      tag: options.tag ?? DEFAULTS.tag,
    }),
  ) as DeploymentManifest;
  validateGenerated(resolved);
  return {
    manifest: resolved,
    report: {
      profile: profile.name,
      ratePerSec: rate,
      payloadLength: payload,
      diskGb,
      timeToLiveSecs: ttl,
      maxUpstreamBatchSize: mubs,
      upstreamMessageBytes: largest,
      recordsPerMessage,
      sizing,
      queues,
    },
  };
}

/**
 * Resolves deployment.template.json with a profile into a deployment manifest (createOptions as
 * JSON strings, `${MODULES.x}` resolved to `<registry>/x:<tag>`). No file I/O; `edgeperf local`
 * calls it for its default manifest. Defaults: profile `high-rate`, 2000 msg/s, 1024 B, 32 GB,
 * registry `edgeperf`, tag `local`, target `local`.
 *
 * @throws see {@link generateManifestWithReport}.
 */
export function generateManifest(options: ManifestOptions = {}): DeploymentManifest {
  return generateManifestWithReport(options).manifest;
}

function brokerModule(profile: Profile): string {
  return (profile.translators[0] as { name: string }).name;
}

function brokerUrl(profile: Profile, target: ManifestTarget): string {
  return target === 'local'
    ? `mqtt://127.0.0.1:${BROKER_PORT}`
    : `mqtt://${brokerModule(profile)}:${BROKER_PORT}`;
}

/** Clones the template's translator module and routes for each instance the profile lists. */
function buildTranslators(
  manifest: DeploymentManifest,
  profile: Profile,
  payload: number,
  target: ManifestTarget,
): void {
  const agent = manifest.modulesContent.$edgeAgent['properties.desired'];
  const hub = manifest.modulesContent.$edgeHub['properties.desired'];
  const proto = agent.modules.translator as ModuleDefinition;
  const protoRoutes = Object.entries(hub.routes).filter(([, r]) =>
    (typeof r === 'string' ? r : r.route).includes('/modules/translator/'),
  );
  delete agent.modules.translator;
  for (const [name] of protoRoutes) delete hub.routes[name];
  const host = target === 'local' ? '127.0.0.1' : '0.0.0.0';
  const batch = profile.appBatch.enabled ? appBatchFor256KiB(payload) : undefined;
  const ordered: Record<string, ModuleDefinition> = {};
  profile.translators.forEach((t, i) => {
    const m = clone(proto);
    const e = { ...m.env };
    e.SourceTopics = env(t.topics.join(','));
    e.SourceClientId = env(`edgeperf-${t.name}`);
    e.MetricsPort = env(TRANSLATOR_METRICS_PORT + i);
    e.MetricsHost = env(host);
    if (i === 0) {
      e.EmbeddedBrokerEnabled = env(true);
      e.EmbeddedBrokerPort = env(BROKER_PORT);
      e.EmbeddedBrokerHost = env(host);
      delete e.SourceUrl;
    } else {
      e.EmbeddedBrokerEnabled = env(false);
      delete e.EmbeddedBrokerPort;
      delete e.EmbeddedBrokerHost;
      e.SourceUrl = env(brokerUrl(profile, target));
      m.startupOrder = (proto.startupOrder ?? 1) + 1;
      // Only the broker host publishes the broker's port on the device.
      m.settings.createOptions = '{}';
    }
    if (batch && profile.appBatch.enabled && t.batching !== false) {
      e.BatchEnabled = env(true);
      e.BatchMaxBytes = env(Math.min(batch.maxBytes, profile.appBatch.maxBytes));
      e.BatchMaxMessages = env(batch.maxMessages);
      e.BatchMaxWaitTimeInMs = env(profile.appBatch.maxWaitTimeInMs);
    } else {
      e.BatchEnabled = env(false);
      delete e.BatchMaxBytes;
      delete e.BatchMaxMessages;
      delete e.BatchMaxWaitTimeInMs;
    }
    if (profile.edgeHub.exposeMetrics && target === 'device') {
      m.settings.createOptions = JSON.stringify(
        (() => {
          const o = JSON.parse(m.settings.createOptions ?? '{}') as Record<string, unknown>;
          bindPort(o, TRANSLATOR_METRICS_PORT + i);
          return o;
        })(),
      );
    }
    m.env = e;
    ordered[t.name] = m;
    for (const [routeName, spec] of protoRoutes) {
      const newName = routeName.replace(/^translator/, t.name);
      const text = (typeof spec === 'string' ? spec : spec.route).replaceAll(
        '/modules/translator/',
        `/modules/${t.name}/`,
      );
      const obj: RouteDefinition = typeof spec === 'string' ? { route: text } : { ...spec, route: text };
      // The telemetry route takes the instance's priority; dead letters keep the template's.
      if (typeof obj !== 'string' && !text.includes('/outputs/deadletter')) obj.priority = t.priority;
      hub.routes[newName] = obj;
    }
  });
  agent.modules = { ...ordered, ...agent.modules };
  // The simulator starts after every translator, so the broker is up when it connects.
  const sim = agent.modules.simulator;
  if (sim) sim.startupOrder = Math.max(...Object.values(ordered).map((m) => m.startupOrder ?? 1)) + 1;
}

/** True when several priorities or TTLs share one endpoint (edgeHub's cleanup then needs the whole queue checked). */
function endpointShared(hub: EdgeHubDesired): boolean {
  const view = viewManifest({ modulesContent: { $edgeHub: { 'properties.desired': hub } } });
  const perEndpoint = new Map<string, Set<string>>();
  for (const r of view.routes) {
    const key = `${r.priority}|${r.timeToLiveSecs ?? 'default'}`;
    const set = perEndpoint.get(r.sink.endpointId) ?? new Set<string>();
    set.add(key);
    perEndpoint.set(r.sink.endpointId, set);
  }
  return [...perEndpoint.values()].some((s) => s.size > 1);
}

/**
 * Checks a generated manifest with the project's own validators: the local runtime's reader
 * (parseDeployment), edgeHub's env and desired-property schemas, and each translator's env schema.
 * @throws ConfigError listing every problem.
 */
export function validateGenerated(manifest: DeploymentManifest): void {
  const issues: ConfigIssue[] = [];
  const collect = (prefix: string, fn: () => void): void => {
    try {
      fn();
    } catch (err) {
      if (err instanceof ConfigError) {
        for (const i of err.issues) issues.push({ field: `${prefix}${i.field}`, message: i.message });
      } else if (err instanceof EdgePerfError) {
        issues.push({ field: prefix || 'manifest', message: err.message });
      } else {
        throw err;
      }
    }
  };
  collect('', () => parseDeployment(manifest));
  const view = viewManifest(manifest);
  collect('edgeHub.', () => parseEdgeHubEnv(view.edgeHub?.env ?? {}));
  collect('', () => parseEdgeHubDesired(manifest.modulesContent.$edgeHub['properties.desired']));
  for (const m of view.modules.filter(isTranslator)) {
    const result = translatorEnvSchema.safeParse(m.env);
    if (!result.success) {
      for (const i of result.error.issues) {
        issues.push({ field: `${m.name}.env.${i.path.join('.')}`, message: i.message });
      }
    }
  }
  for (const m of [...view.modules, ...(view.edgeHub ? [view.edgeHub] : [])]) {
    const co = (m.definition.settings as { createOptions?: unknown } | undefined)?.createOptions;
    if (co === undefined) continue;
    if (typeof co !== 'string') {
      issues.push({ field: `${m.name}.settings.createOptions`, message: 'must be a JSON string' });
      continue;
    }
    try {
      JSON.parse(co);
    } catch {
      issues.push({ field: `${m.name}.settings.createOptions`, message: 'is not valid JSON' });
    }
  }
  if (issues.length > 0) throw new ConfigError('generated manifest', issues);
}
