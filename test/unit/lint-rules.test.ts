import { describe, expect, it } from 'vitest';
import {
  type DeploymentManifest,
  generateManifest,
  LINT_RULES,
  type LintOptions,
  lintExitCode,
  lintManifest,
} from '../../perf-cli/manifest/index.js';

const AGENT = '/modulesContent/$edgeAgent/properties.desired';
const HUB_ENV = `${AGENT}/systemModules/edgeHub/env`;
const HUB = '/modulesContent/$edgeHub/properties.desired';

/** A clean high-rate manifest: 2000 msg/s × 1024 B on 32 GB. */
function clean(): DeploymentManifest {
  return generateManifest({ profile: 'high-rate', ratePerSec: 2000, payloadLength: 1024, diskGb: 32 });
}

type Mutable = {
  modulesContent: {
    $edgeAgent: { 'properties.desired': { systemModules: { edgeHub: Mod }; modules: Record<string, Mod> } };
    $edgeHub: { 'properties.desired': Record<string, unknown> & { routes: Record<string, unknown> } };
  };
};
type Mod = { env: Record<string, { value: unknown }>; settings: Record<string, unknown> };

function edit(fn: (m: Mutable) => void): DeploymentManifest {
  const m = clean();
  fn(m as unknown as Mutable);
  return m;
}
const hubEnv = (m: Mutable) => m.modulesContent.$edgeAgent['properties.desired'].systemModules.edgeHub.env;
const mod = (m: Mutable, name: string) =>
  m.modulesContent.$edgeAgent['properties.desired'].modules[name] as Mod;
const hub = (m: Mutable) => m.modulesContent.$edgeHub['properties.desired'];

interface Case {
  readonly name: string;
  readonly manifest: () => unknown;
  readonly options?: LintOptions;
  readonly rule: string;
  readonly severity: 'error' | 'warning';
  readonly pointer: string;
  readonly message?: RegExp;
}

const CASES: readonly Case[] = [
  {
    name: 'StorageFolder unset',
    manifest: () => edit((m) => delete hubEnv(m).StorageFolder),
    rule: 'storage-not-bound',
    severity: 'warning',
    pointer: HUB_ENV,
  },
  {
    name: 'StorageFolder set but not bound',
    manifest: () =>
      edit((m) => {
        m.modulesContent.$edgeAgent['properties.desired'].systemModules.edgeHub.settings.createOptions = '{}';
      }),
    rule: 'storage-not-bound',
    severity: 'warning',
    pointer: `${HUB_ENV}/StorageFolder`,
  },
  {
    name: 'worst case larger than the disk',
    manifest: clean,
    options: { diskGb: 16 },
    rule: 'disk-overflow',
    severity: 'error',
    pointer: `${HUB}/storeAndForwardConfiguration/timeToLiveSecs`,
    message: /needs 25\.\d GB .*disk is 16\.0 GB/,
  },
  {
    name: 'worst case over the usable 80% of the disk',
    manifest: clean,
    options: { diskGb: 30 },
    rule: 'disk-overflow',
    severity: 'warning',
    pointer: `${HUB}/storeAndForwardConfiguration/timeToLiveSecs`,
  },
  {
    name: 'a route TTL longer than the disk holds',
    manifest: () =>
      edit((m) => {
        hub(m).routes.translatorToUpstream = {
          route: 'FROM /messages/modules/translator/outputs/output1 INTO $upstream',
          priority: 0,
          timeToLiveSecs: 604_800,
        };
      }),
    options: { diskGb: 32 },
    rule: 'disk-overflow',
    severity: 'error',
    pointer: `${HUB}/routes/translatorToUpstream/timeToLiveSecs`,
  },
  {
    name: 'no TTL at all',
    manifest: () => edit((m) => delete hub(m).storeAndForwardConfiguration),
    options: { diskGb: 32 },
    rule: 'disk-overflow',
    severity: 'error',
    pointer: HUB,
    message: /never expires/,
  },
  {
    name: 'MaxUpstreamBatchSize × 256 KiB batches over 256 KiB',
    manifest: () => edit((m) => (hubEnv(m).MaxUpstreamBatchSize = { value: '10' })),
    rule: 'upstream-batch-over-256k',
    severity: 'warning',
    pointer: `${HUB_ENV}/MaxUpstreamBatchSize`,
    message: /sends at most 1 per batch/,
  },
  {
    name: 'small messages, default batch of 10',
    manifest: () =>
      edit((m) => {
        mod(m, 'translator').env.BatchEnabled = { value: 'false' };
        hubEnv(m).MaxUpstreamBatchSize = { value: '10' };
      }),
    rule: 'upstream-batch-too-small',
    severity: 'warning',
    pointer: `${HUB_ENV}/MaxUpstreamBatchSize`,
    message: /MaxUpstreamBatchSize 10 × 1024 B/,
  },
  {
    name: 'translator batch over 256 KiB',
    manifest: () => edit((m) => (mod(m, 'translator').env.BatchMaxBytes = { value: '300000' })),
    rule: 'translator-batch-over-256k',
    severity: 'error',
    pointer: `${AGENT}/modules/translator/env/BatchMaxBytes`,
  },
  {
    name: 'two priorities on $upstream without CheckEntireQueueOnCleanup',
    manifest: () => edit((m) => delete hubEnv(m).CheckEntireQueueOnCleanup),
    rule: 'cleanup-shared-endpoint',
    severity: 'warning',
    pointer: HUB_ENV,
    message: /\$upstream \(2 priorities, 1 TTL\)/,
  },
  {
    name: 'two TTLs on one priority without CheckEntireQueueOnCleanup',
    manifest: () =>
      edit((m) => {
        hubEnv(m).CheckEntireQueueOnCleanup = { value: 'false' };
        hub(m).routes.translatorDeadletterToUpstream = {
          route: 'FROM /messages/modules/translator/outputs/deadletter INTO $upstream',
          priority: 0,
          timeToLiveSecs: 60,
        };
      }),
    rule: 'cleanup-shared-endpoint',
    severity: 'warning',
    pointer: `${HUB_ENV}/CheckEntireQueueOnCleanup`,
    message: /1 priority, 2 TTLs/,
  },
  {
    name: 'cleanup interval longer than the TTL',
    manifest: () => edit((m) => (hubEnv(m).MessageCleanupIntervalSecs = { value: '20000' })),
    rule: 'cleanup-interval-over-ttl',
    severity: 'warning',
    pointer: `${HUB_ENV}/MessageCleanupIntervalSecs`,
  },
  {
    name: 'in-memory store at a rate whose queue does not fit RAM',
    manifest: () => edit((m) => (hubEnv(m).UsePersistentStorage = { value: 'false' })),
    rule: 'memory-store-over-ram',
    severity: 'error',
    pointer: `${HUB_ENV}/UsePersistentStorage`,
    message: /budget is 2\.00 GB/,
  },
  {
    name: 'createOptions as an object',
    manifest: () => edit((m) => (mod(m, 'simulator').settings.createOptions = { HostConfig: {} })),
    rule: 'create-options-not-string',
    severity: 'error',
    pointer: `${AGENT}/modules/simulator/settings/createOptions`,
  },
  {
    name: 'createOptions string that is not JSON',
    manifest: () => edit((m) => (mod(m, 'simulator').settings.createOptions = '{HostConfig: {}}')),
    rule: 'create-options-not-string',
    severity: 'error',
    pointer: `${AGENT}/modules/simulator/settings/createOptions`,
    message: /not valid JSON/,
  },
  {
    name: 'a route that does not parse',
    manifest: () =>
      edit((m) => {
        hub(m).routes.translatorToUpstream = {
          route: 'FROM /messages/modules/translator/outputs/output1 INTO',
          priority: 0,
        };
      }),
    rule: 'route-syntax',
    severity: 'error',
    pointer: `${HUB}/routes/translatorToUpstream/route`,
    message: /position \d+/,
  },
  {
    name: 'a route string that does not parse',
    manifest: () => edit((m) => (hub(m).routes.broken = 'SELECT FROM WHERE')),
    rule: 'route-syntax',
    severity: 'error',
    pointer: `${HUB}/routes/broken`,
  },
  {
    name: 'dead-letter output without a route',
    manifest: () => edit((m) => delete hub(m).routes.translatorDeadletterToUpstream),
    rule: 'output-unrouted',
    severity: 'warning',
    pointer: `${AGENT}/modules/translator`,
    message: /output deadletter/,
  },
  {
    name: 'telemetry output without a route',
    manifest: () => edit((m) => delete hub(m).routes.translatorToUpstream),
    rule: 'output-unrouted',
    severity: 'warning',
    pointer: `${AGENT}/modules/translator/env/OutputName`,
  },
  {
    name: 'not a manifest',
    manifest: () => ({ hello: 1 }),
    rule: 'manifest-shape',
    severity: 'error',
    pointer: '',
  },
];

describe('lint rules', () => {
  it('the clean manifest has no findings with every rule active', () => {
    const r = lintManifest(clean(), { diskGb: 32 });
    expect(r.findings).toEqual([]);
    expect(r.skipped).toEqual([]);
    expect(lintExitCode(r, true)).toBe(0);
  });

  it.each(CASES)('$name → $rule ($severity) at $pointer', (c) => {
    const r = lintManifest(c.manifest(), c.options ?? {});
    const hits = r.findings.filter((f) => f.rule === c.rule);
    expect(hits.length, JSON.stringify(r.findings, null, 1)).toBeGreaterThan(0);
    const hit = hits.find((f) => f.pointer === c.pointer);
    expect(hit, `pointers: ${hits.map((f) => f.pointer).join(', ')}`).toBeDefined();
    expect(hit?.severity).toBe(c.severity);
    expect(hit?.fix.length).toBeGreaterThan(10);
    if (c.message) expect(hit?.message).toMatch(c.message);
    expect(lintExitCode(r, false)).toBe(c.severity === 'error' ? 2 : 0);
    expect(lintExitCode(r, true)).toBe(c.severity === 'error' ? 2 : 1);
  });

  it('every rule has at least one broken manifest in the table', () => {
    const covered = new Set(CASES.map((c) => c.rule));
    for (const rule of LINT_RULES) expect(covered.has(rule.id), rule.id).toBe(true);
  });

  it('skips rate and disk rules when neither flags nor the manifest give the inputs', () => {
    const m = edit((x) => {
      delete (x.modulesContent as Record<string, unknown>).simulator;
    });
    const r = lintManifest(m);
    expect(r.inputs.rateSource).toBe('none');
    expect(r.skipped.map((s) => s.rule).sort()).toEqual([
      'disk-overflow',
      'memory-store-over-ram',
      'upstream-batch-over-256k',
      'upstream-batch-too-small',
    ]);
    // Flags win over the simulator's desired config.
    const withFlags = lintManifest(clean(), { ratePerSec: 50, payloadLength: 200 });
    expect(withFlags.inputs).toMatchObject({ ratePerSec: 50, payloadLength: 200, rateSource: 'flags' });
  });

  it('a template may carry createOptions objects', () => {
    const m = edit((x) => (mod(x, 'simulator').settings.createOptions = { HostConfig: {} }));
    expect(
      lintManifest(m, { template: true }).findings.filter((f) => f.rule === 'create-options-not-string'),
    ).toEqual([]);
  });

  it('storeLimits.maxSizeBytes is the RAM budget when set', () => {
    const m = edit((x) => {
      hubEnv(x).UsePersistentStorage = { value: 'false' };
      hub(x).storeAndForwardConfiguration = { timeToLiveSecs: 60, storeLimits: { maxSizeBytes: 1e9 } };
    });
    // 60 s × 2000 × ~1 KiB ≈ 0.13 GB fits 1 GB.
    expect(lintManifest(m).findings.filter((f) => f.rule === 'memory-store-over-ram')).toEqual([]);
    const tight = edit((x) => {
      hubEnv(x).UsePersistentStorage = { value: 'false' };
      hub(x).storeAndForwardConfiguration = { timeToLiveSecs: 60, storeLimits: { maxSizeBytes: 1e6 } };
    });
    expect(lintManifest(tight).findings.map((f) => f.rule)).toContain('memory-store-over-ram');
  });
});
