import {
  AGENT_PTR,
  EDGEHUB_DEFAULTS,
  HUB_PTR,
  hubBool,
  hubEnv,
  hubInt,
  isObject,
  isTranslator,
  jsonPointer,
  type ManifestView,
  type ModuleView,
  type QueueLoad,
  routeConsumes,
  translatorBatch,
  translatorOutputs,
} from './manifest-model.js';
import {
  formatBytes,
  formatDuration,
  GB,
  MAX_MESSAGE_BYTES,
  matchedUpstreamBatchSize,
  sizeQueues,
} from './sizing.js';

/** How bad a finding is: errors fail the lint (exit 2), warnings only with `--strict` (exit 1). */
export type Severity = 'error' | 'warning';

/** One problem in a manifest. */
export interface LintFinding {
  /** Stable rule id, e.g. `storage-not-bound`. */
  readonly rule: string;
  readonly severity: Severity;
  /** RFC 6901 pointer to the offending (or missing) value. */
  readonly pointer: string;
  /** What is wrong, with the numbers behind it. */
  readonly message: string;
  /** What to change. */
  readonly fix: string;
}

/** What the rules know besides the manifest. */
export interface LintContext {
  readonly view: ManifestView;
  /** Source messages per second; undefined skips the rules that need it. */
  readonly ratePerSec?: number;
  /** Bytes per source message; undefined skips the rules that need it. */
  readonly payloadLength?: number;
  /** Disk for edgeHub's store, GB (10^9 bytes); undefined skips the disk rule. */
  readonly diskGb?: number;
  /** RAM edgeHub's in-memory store may use, GB, when no storeLimits.maxSizeBytes is set. */
  readonly ramGb: number;
  /** Share of the disk the queues may fill before a warning. */
  readonly usableDiskFraction: number;
  /** Per-stored-message overhead, bytes. */
  readonly overheadBytesPerMessage: number;
  /** Queues and their load, when rate and payload are known. */
  readonly queues?: readonly QueueLoad[];
  /** True for a deployment template (object createOptions are then allowed). */
  readonly template: boolean;
}

/** A rule: what it checks and which inputs it needs. */
export interface LintRule {
  readonly id: string;
  /** One line for `--help` and the README. */
  readonly description: string;
  /** Inputs without which the rule is skipped. */
  readonly needs: readonly ('rate' | 'disk')[];
  readonly check: (ctx: LintContext) => LintFinding[];
}

const ENV_PTR = [...AGENT_PTR, 'systemModules', 'edgeHub', 'env'];

function hubEnvPointer(view: ManifestView, key: string): string {
  return hubEnv(view, key) === undefined ? jsonPointer(...ENV_PTR) : jsonPointer(...ENV_PTR, key);
}

function stripSlash(p: string): string {
  return p.length > 1 ? p.replace(/\/+$/, '') : p;
}

function createOptionsObject(m: ModuleView): Record<string, unknown> | undefined {
  const raw = (m.definition.settings as Record<string, unknown> | undefined)?.createOptions;
  if (typeof raw !== 'string') return undefined;
  try {
    const parsed: unknown = JSON.parse(raw);
    return isObject(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** Container paths edgeHub's createOptions mount from the host (Binds and Mounts). */
function mountedPaths(m: ModuleView): string[] {
  const opts = createOptionsObject(m);
  const hc = isObject(opts?.HostConfig) ? opts.HostConfig : {};
  const out: string[] = [];
  if (Array.isArray(hc.Binds)) {
    for (const b of hc.Binds)
      if (typeof b === 'string' && b.split(':')[1]) out.push(stripSlash(b.split(':')[1] as string));
  }
  if (Array.isArray(hc.Mounts)) {
    for (const mnt of hc.Mounts)
      if (isObject(mnt) && typeof mnt.Target === 'string') out.push(stripSlash(mnt.Target));
  }
  return out;
}

const storageNotBound: LintRule = {
  id: 'storage-not-bound',
  description:
    "edgeHub's store is not on a host folder (StorageFolder unset or not covered by HostConfig.Binds/Mounts)",
  needs: [],
  check: ({ view }) => {
    const hub = view.edgeHub;
    if (!hub || !hubBool(view, 'UsePersistentStorage', EDGEHUB_DEFAULTS.usePersistentStorage)) return [];
    const folder = hub.env.StorageFolder;
    const fix =
      'set $edgeHub env StorageFolder=/iotedge/storage and add "/etc/iotedge/storage/:/iotedge/storage/" to its createOptions HostConfig.Binds (host folder owned by uid 1000)';
    if (folder === undefined || folder.trim() === '') {
      return [
        {
          rule: 'storage-not-bound',
          severity: 'warning',
          pointer: jsonPointer(...ENV_PTR),
          message:
            "StorageFolder is not set: edgeHub keeps its queue in the container's /tmp/edgeHub, lost when the container is recreated",
          fix,
        },
      ];
    }
    const target = stripSlash(folder.trim());
    const covered = mountedPaths(hub).some((p) => target === p || target.startsWith(`${p}/`) || p === '/');
    if (covered) return [];
    return [
      {
        rule: 'storage-not-bound',
        severity: 'warning',
        pointer: jsonPointer(...ENV_PTR, 'StorageFolder'),
        message: `StorageFolder ${folder} is not bound to a host folder: the queue is lost when the container is recreated`,
        fix: `add "/etc/iotedge/storage/:${target}/" to $edgeHub createOptions HostConfig.Binds`,
      },
    ];
  },
};

function telemetryQueues(ctx: LintContext): QueueLoad[] {
  return (ctx.queues ?? []).filter((q) => !q.deadletterOnly);
}

function queueLabel(q: QueueLoad): string {
  return `${q.endpointId === 'iothub' ? '$upstream' : q.endpointId} priority ${q.priority > 9 ? 'default' : q.priority}`;
}

function ttlPointer(view: ManifestView, q: QueueLoad): string {
  for (const name of q.routes) {
    const spec = view.routeSpecs[name];
    if (isObject(spec) && typeof spec.timeToLiveSecs === 'number' && spec.timeToLiveSecs === q.ttlSecs) {
      return jsonPointer(...HUB_PTR, 'routes', name, 'timeToLiveSecs');
    }
  }
  return isObject(view.hubDesired.storeAndForwardConfiguration)
    ? jsonPointer(...HUB_PTR, 'storeAndForwardConfiguration', 'timeToLiveSecs')
    : jsonPointer(...HUB_PTR);
}

function queueSizes(ctx: LintContext, rate: number, payload: number) {
  return telemetryQueues(ctx).map((q) => ({
    q,
    size: sizeQueues({
      ratePerSec: rate,
      payloadLength: payload,
      ttlSecs: Number.isFinite(q.ttlSecs) ? q.ttlSecs : 0,
      recordsPerMessage: q.shape.recordsPerMessage,
      overheadBytesPerMessage: ctx.overheadBytesPerMessage,
    }),
  }));
}

const diskOverflow: LintRule = {
  id: 'disk-overflow',
  description:
    'rate × size × TTL summed over endpoint+priority queues exceeds the disk (error) or its usable share (warning)',
  needs: ['rate', 'disk'],
  check: (ctx) => {
    const { view } = ctx;
    const rate = ctx.ratePerSec as number;
    const payload = ctx.payloadLength as number;
    const disk = (ctx.diskGb as number) * GB;
    const usable = disk * ctx.usableDiskFraction;
    const sizes = queueSizes(ctx, rate, payload);
    const out: LintFinding[] = [];
    for (const { q } of sizes) {
      if (!Number.isFinite(q.ttlSecs)) {
        out.push({
          rule: 'disk-overflow',
          severity: 'error',
          pointer: ttlPointer(view, q),
          message: `queue ${queueLabel(q)} never expires (no timeToLiveSecs): an outage fills the disk`,
          fix: 'set storeAndForwardConfiguration.timeToLiveSecs (or the route timeToLiveSecs) sized with `edgeperf size`',
        });
      }
    }
    if (out.length > 0) return out;
    const total = sizes.reduce((s, x) => s + x.size.diskBytes, 0);
    if (total <= usable) return [];
    const perSec = sizes.reduce((s, x) => s + x.size.bytesPerSec, 0);
    const maxTtl = perSec > 0 ? Math.floor(usable / perSec) : 0;
    const worst = sizes.reduce((a, b) => (b.size.diskBytes > a.size.diskBytes ? b : a));
    const breakdown = sizes
      .map((x) => `${queueLabel(x.q)}: ${formatBytes(x.size.diskBytes)} over ${x.q.ttlSecs} s`)
      .join('; ');
    return [
      {
        rule: 'disk-overflow',
        severity: total > disk ? 'error' : 'warning',
        pointer: ttlPointer(view, worst.q),
        message: `worst case (uplink down for the whole TTL) at ${rate} msg/s × ${payload} B needs ${formatBytes(total)} (${breakdown}); the disk is ${formatBytes(disk)}, ${Math.round(ctx.usableDiskFraction * 100)}% usable = ${formatBytes(usable)}`,
        fix: `lower timeToLiveSecs to ≤ ${maxTtl} s (${formatDuration(maxTtl)}), batch at the application level, or provide more disk`,
      },
    ];
  },
};

function largestUpstreamMessage(ctx: LintContext): number | undefined {
  const qs = telemetryQueues(ctx).filter((q) => q.endpointId === 'iothub');
  if (qs.length === 0) return undefined;
  return Math.max(...qs.map((q) => q.shape.messageBytes));
}

const upstreamBatchOver: LintRule = {
  id: 'upstream-batch-over-256k',
  description:
    'MaxUpstreamBatchSize × upstream message size exceeds 256 KiB (edgeHub caps the batch; the setting promises more than it does)',
  needs: ['rate'],
  check: (ctx) => {
    const size = largestUpstreamMessage(ctx);
    const mubs = hubInt(ctx.view, 'MaxUpstreamBatchSize', EDGEHUB_DEFAULTS.maxUpstreamBatchSize);
    if (size === undefined || mubs <= 1 || mubs * size <= MAX_MESSAGE_BYTES) return [];
    const matched = matchedUpstreamBatchSize(size);
    return [
      {
        rule: 'upstream-batch-over-256k',
        severity: 'warning',
        pointer: hubEnvPointer(ctx.view, 'MaxUpstreamBatchSize'),
        message: `MaxUpstreamBatchSize ${mubs} × ${size} B upstream messages = ${formatBytes(mubs * size)} > 256 KiB: edgeHub sends at most ${matched} per batch`,
        fix: `set $edgeHub env MaxUpstreamBatchSize=${matched}`,
      },
    ];
  },
};

/** Below this share of 256 KiB, a batch of small messages wastes round trips. */
const SMALL_BATCH_FRACTION = 0.25;
/** Messages up to this size count as small. */
const SMALL_MESSAGE_BYTES = 16 * 1024;

const upstreamBatchSmall: LintRule = {
  id: 'upstream-batch-too-small',
  description:
    'small messages with MaxUpstreamBatchSize × size far below 256 KiB: one round trip per few KB caps the upstream rate',
  needs: ['rate'],
  check: (ctx) => {
    const size = largestUpstreamMessage(ctx);
    const mubs = hubInt(ctx.view, 'MaxUpstreamBatchSize', EDGEHUB_DEFAULTS.maxUpstreamBatchSize);
    if (
      size === undefined ||
      size > SMALL_MESSAGE_BYTES ||
      mubs * size >= MAX_MESSAGE_BYTES * SMALL_BATCH_FRACTION
    )
      return [];
    const matched = matchedUpstreamBatchSize(size);
    return [
      {
        rule: 'upstream-batch-too-small',
        severity: 'warning',
        pointer: hubEnvPointer(ctx.view, 'MaxUpstreamBatchSize'),
        message: `MaxUpstreamBatchSize ${mubs} × ${size} B = ${formatBytes(mubs * size)} per round trip, far below 256 KiB: about ${Math.round(mubs / 0.017)} msg/s per module at a 17 ms round trip`,
        fix: `set $edgeHub env MaxUpstreamBatchSize=${matched}, or batch at the application level (translator BatchEnabled=true)`,
      },
    ];
  },
};

const translatorBatchOver: LintRule = {
  id: 'translator-batch-over-256k',
  description: "a translator's BatchMaxBytes exceeds 256 KiB (edgeHub and IoT Hub reject larger messages)",
  needs: [],
  check: ({ view }) =>
    view.modules.filter(isTranslator).flatMap((m) => {
      const raw = m.env.BatchMaxBytes;
      const batch = translatorBatch(m);
      if (raw === undefined || batch === undefined || batch.maxBytes <= MAX_MESSAGE_BYTES) return [];
      return [
        {
          rule: 'translator-batch-over-256k',
          severity: 'error' as const,
          pointer: jsonPointer(...m.path, 'env', 'BatchMaxBytes'),
          message: `${m.name} BatchMaxBytes ${raw} > ${MAX_MESSAGE_BYTES} (256 KiB): every full batch would be rejected`,
          fix: `set ${m.name} env BatchMaxBytes=${MAX_MESSAGE_BYTES} or lower`,
        },
      ];
    }),
};

const cleanupShared: LintRule = {
  id: 'cleanup-shared-endpoint',
  description:
    'several priorities or TTLs on one endpoint without CheckEntireQueueOnCleanup=true (cleanup checks only queue heads)',
  needs: [],
  check: ({ view }) => {
    if (hubBool(view, 'CheckEntireQueueOnCleanup', EDGEHUB_DEFAULTS.checkEntireQueueOnCleanup)) return [];
    const per = new Map<string, { priorities: Set<number>; ttls: Set<number> }>();
    for (const r of view.routes) {
      const e = per.get(r.sink.endpointId) ?? { priorities: new Set<number>(), ttls: new Set<number>() };
      e.priorities.add(r.priority);
      e.ttls.add(r.timeToLiveSecs ?? view.defaultTtlSecs ?? Number.POSITIVE_INFINITY);
      per.set(r.sink.endpointId, e);
    }
    const shared = [...per.entries()].filter(([, e]) => e.priorities.size > 1 || e.ttls.size > 1);
    if (shared.length === 0) return [];
    const count = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;
    const names = shared.map(
      ([id, e]) =>
        `${id === 'iothub' ? '$upstream' : id} (${count(e.priorities.size, 'priority', 'priorities')}, ${count(e.ttls.size, 'TTL', 'TTLs')})`,
    );
    return [
      {
        rule: 'cleanup-shared-endpoint',
        severity: 'warning',
        pointer: hubEnvPointer(view, 'CheckEntireQueueOnCleanup'),
        message: `${names.join(', ')} share an endpoint but CheckEntireQueueOnCleanup is false: expired messages behind a live head stay on disk`,
        fix: 'set $edgeHub env CheckEntireQueueOnCleanup=true',
      },
    ];
  },
};

const cleanupInterval: LintRule = {
  id: 'cleanup-interval-over-ttl',
  description:
    'MessageCleanupIntervalSecs longer than the shortest TTL (expired messages stay until cleanup runs)',
  needs: [],
  check: ({ view }) => {
    const interval = hubInt(view, 'MessageCleanupIntervalSecs', EDGEHUB_DEFAULTS.messageCleanupIntervalSecs);
    const ttls = [
      ...view.routes.map((r) => r.timeToLiveSecs ?? view.defaultTtlSecs),
      ...(view.routes.length === 0 ? [view.defaultTtlSecs] : []),
    ].filter((t): t is number => t !== undefined && t > 0);
    if (ttls.length === 0) return [];
    const min = Math.min(...ttls);
    if (interval <= min) return [];
    return [
      {
        rule: 'cleanup-interval-over-ttl',
        severity: 'warning',
        pointer: hubEnvPointer(view, 'MessageCleanupIntervalSecs'),
        message: `MessageCleanupIntervalSecs ${interval} > shortest TTL ${min} s: expired messages keep using disk for up to ${interval} s`,
        fix: `set $edgeHub env MessageCleanupIntervalSecs=${Math.max(1, Math.floor(min / 4))} (≤ TTL)`,
      },
    ];
  },
};

const memoryStore: LintRule = {
  id: 'memory-store-over-ram',
  description:
    'UsePersistentStorage=false while the worst-case queue does not fit the RAM budget (storeLimits.maxSizeBytes or --ram-gb)',
  needs: ['rate'],
  check: (ctx) => {
    const { view } = ctx;
    if (hubBool(view, 'UsePersistentStorage', EDGEHUB_DEFAULTS.usePersistentStorage)) return [];
    const saf = isObject(view.hubDesired.storeAndForwardConfiguration)
      ? view.hubDesired.storeAndForwardConfiguration
      : {};
    const limits = isObject(saf.storeLimits) ? saf.storeLimits : {};
    const budget = typeof limits.maxSizeBytes === 'number' ? limits.maxSizeBytes : ctx.ramGb * GB;
    const sizes = queueSizes(ctx, ctx.ratePerSec as number, ctx.payloadLength as number);
    const unbounded = sizes.some((x) => !Number.isFinite(x.q.ttlSecs));
    const total = sizes.reduce((s, x) => s + x.size.ramBytes, 0);
    if (!unbounded && total <= budget) return [];
    return [
      {
        rule: 'memory-store-over-ram',
        severity: 'error',
        pointer: jsonPointer(...ENV_PTR, 'UsePersistentStorage'),
        message: `in-memory store: the worst-case queue at ${ctx.ratePerSec} msg/s × ${ctx.payloadLength} B needs ${unbounded ? 'unbounded memory (no TTL)' : formatBytes(total)} but the budget is ${formatBytes(budget)}; a full store raises storage-full errors and a restart loses the queue`,
        fix: 'set $edgeHub env UsePersistentStorage=true with StorageFolder bound to the host, or shorten the TTL',
      },
    ];
  },
};

const createOptionsString: LintRule = {
  id: 'create-options-not-string',
  description: 'settings.createOptions that is not a JSON string',
  needs: [],
  check: ({ view, template }) => {
    const mods = [...(view.edgeHub ? [view.edgeHub] : []), ...view.modules];
    const agent = isObject(view.agentDesired.systemModules)
      ? view.agentDesired.systemModules.edgeAgent
      : undefined;
    const all: { name: string; path: readonly string[]; def: unknown }[] = [
      ...(isObject(agent)
        ? [{ name: '$edgeAgent', path: [...AGENT_PTR, 'systemModules', 'edgeAgent'], def: agent }]
        : []),
      ...mods.map((m) => ({ name: m.name, path: m.path, def: m.definition })),
    ];
    const out: LintFinding[] = [];
    for (const { name, path, def } of all) {
      const settings = isObject(def) && isObject(def.settings) ? def.settings : {};
      for (const [key, raw] of Object.entries(settings)) {
        if (!/^createoptions\d*$/i.test(key) || raw === undefined) continue;
        const pointer = jsonPointer(...path, 'settings', key);
        if (typeof raw !== 'string') {
          if (template && isObject(raw)) continue;
          out.push({
            rule: 'create-options-not-string',
            severity: 'error',
            pointer,
            message: `${name} ${key} is a JSON ${Array.isArray(raw) ? 'array' : typeof raw}; a deployment needs a JSON string (only templates take objects)`,
            fix: `replace it with its JSON.stringify()-ed form: ${JSON.stringify(JSON.stringify(raw)).slice(0, 80)}…`,
          });
          continue;
        }
        // Split options (createOptions01…) are fragments; only a whole one must parse.
        if (key.toLowerCase() !== 'createoptions' || 'createOptions01' in settings) continue;
        try {
          JSON.parse(raw);
        } catch (err) {
          out.push({
            rule: 'create-options-not-string',
            severity: 'error',
            pointer,
            message: `${name} createOptions is not valid JSON (${(err as Error).message})`,
            fix: 'fix the JSON inside the string (escape inner quotes as \\")',
          });
        }
      }
    }
    return out;
  },
};

const routeSyntax: LintRule = {
  id: 'route-syntax',
  description: 'routes that do not parse (FROM/WHERE/INTO grammar, edge-facts §4)',
  needs: [],
  check: ({ view }) => {
    const out: LintFinding[] = view.routeErrors.map((e) => {
      const spec = view.routeSpecs[e.routeName];
      return {
        rule: 'route-syntax',
        severity: 'error' as const,
        pointer: isObject(spec)
          ? jsonPointer(...HUB_PTR, 'routes', e.routeName, 'route')
          : jsonPointer(...HUB_PTR, 'routes', e.routeName),
        message: e.message,
        fix: 'write the route as FROM /messages/modules/{module}/outputs/{output} [WHERE condition] INTO $upstream | BrokeredEndpoint("/modules/{module}/inputs/{input}")',
      };
    });
    for (const [name, spec] of Object.entries(view.routeSpecs)) {
      if (typeof spec === 'string' || (isObject(spec) && typeof spec.route === 'string')) continue;
      out.push({
        rule: 'route-syntax',
        severity: 'error',
        pointer: jsonPointer(...HUB_PTR, 'routes', name),
        message: `route ${name} is neither a route string nor an object with a "route" string`,
        fix: 'use "FROM … INTO …" or {"route": "FROM … INTO …", "priority": 0, "timeToLiveSecs": 7200}',
      });
    }
    return out;
  },
};

const outputUnrouted: LintRule = {
  id: 'output-unrouted',
  description: 'a translator output no route consumes (edgeHub drops its messages as no_route)',
  needs: [],
  check: ({ view }) =>
    view.modules.filter(isTranslator).flatMap((m) => {
      const { telemetry, deadletter } = translatorOutputs(m);
      return [telemetry, deadletter]
        .filter((o) => !view.routes.some((r) => routeConsumes(r, m.name, o)))
        .map((o) => ({
          rule: 'output-unrouted',
          severity: 'warning' as const,
          pointer:
            o === telemetry && m.env.OutputName !== undefined
              ? jsonPointer(...m.path, 'env', 'OutputName')
              : jsonPointer(...m.path),
          message: `${m.name} sends on output ${o} but no route takes it: edgeHub drops those messages (edgehub_messages_dropped_total reason no_route)`,
          fix: `add a route {"route": "FROM /messages/modules/${m.name}/outputs/${o} INTO $upstream", "priority": ${o === deadletter ? 9 : 0}}`,
        }));
    }),
};

/** Every rule, in report order. */
export const LINT_RULES: readonly LintRule[] = [
  routeSyntax,
  createOptionsString,
  storageNotBound,
  diskOverflow,
  memoryStore,
  translatorBatchOver,
  upstreamBatchOver,
  upstreamBatchSmall,
  cleanupShared,
  cleanupInterval,
  outputUnrouted,
];
