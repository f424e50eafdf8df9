import { readFileSync } from 'node:fs';
import { resolvePlaceholders } from '../emulator/index.js';
import { EdgePerfError } from '../modules/common/index.js';
import type { RunConfigSummary } from './analysis/summary-types.js';
import type { MeasureFlags } from './commands/measure-flags.js';
import { generateManifest, type ManifestTarget } from './manifest/index.js';
import type { DeploymentManifest } from './manifest/manifest-types.js';
import { applyAssignments, parseSetAssignment } from './manifest/set-path.js';

/**
 * What the manifest of one measured run is built from (`edgeperf local`, each `sweep` cell): a
 * file or a generated profile, then the flag shortcuts. `LocalFlags` is one.
 */
export interface RunManifestOptions {
  /** Manifest or template file; default: generated from `profile`. */
  readonly manifest?: string;
  readonly profile: string;
  /** `TARGET.PATH=VALUE` assignments, applied before the shortcuts below. */
  readonly set: readonly string[];
  /** Messages/s the generated manifest is sized for (at least 1). */
  readonly targetRate: number;
  /** Bytes per source message the generated manifest is sized for. */
  readonly payloadLength: number;
  /** edgeHub's MaxUpstreamBatchSize; default the manifest's. */
  readonly maxUpstreamBatchSize?: number;
  /** Every translator's UpstreamTransport; default the manifest's. */
  readonly transport?: string;
  /** False turns application batching off in every translator. */
  readonly appBatch: boolean;
  readonly appBatchMaxMessages?: number;
  /** Bytes per translator batch. */
  readonly appBatchMaxBytes?: number;
  readonly appBatchMaxWaitMs?: number;
  /** The translator measured first (others with translator env follow). */
  readonly translatorModule: string;
  /** Where the generated manifest runs; default `local` (loopback). */
  readonly target?: ManifestTarget;
  /** Image repository prefix for `${MODULES.x}`; default `edgeperf`. */
  readonly registry?: string;
  /** Image tag for `${MODULES.x}`; default `local`. */
  readonly tag?: string;
}

/**
 * The manifest to run: a file, or a generated profile; then the flag shortcuts as `--set`
 * assignments. Translator shortcuts apply to every instance, so a multi-module run compares like
 * with like.
 * @throws EdgePerfError `E_MANIFEST` (exit 2) for an unreadable file; ConfigError/E_ARGS from the
 *   generator and the assignments.
 */
export function buildRunManifest(o: RunManifestOptions): DeploymentManifest {
  const images = {
    ...(o.registry === undefined ? {} : { registry: o.registry }),
    ...(o.tag === undefined ? {} : { tag: o.tag }),
  };
  let manifest: DeploymentManifest;
  if (o.manifest) {
    try {
      manifest = JSON.parse(
        resolvePlaceholders(readFileSync(o.manifest, 'utf8'), images),
      ) as DeploymentManifest;
    } catch (err) {
      throw new EdgePerfError('E_MANIFEST', `--manifest ${o.manifest}: ${(err as Error).message}`, {
        exitCode: 2,
      });
    }
  } else {
    manifest = generateManifest({
      profile: o.profile as 'high-rate',
      ratePerSec: Math.max(1, o.targetRate),
      payloadLength: o.payloadLength,
      target: o.target ?? 'local',
      ...images,
    });
  }
  const sets = [...o.set];
  if (o.maxUpstreamBatchSize !== undefined)
    sets.push(`$edgeHub.env.MaxUpstreamBatchSize=${o.maxUpstreamBatchSize}`);
  for (const t of translatorModules(manifest, o.translatorModule)) {
    if (o.transport !== undefined) sets.push(`${t}.env.UpstreamTransport=${o.transport}`);
    if (!o.appBatch) sets.push(`${t}.env.BatchEnabled=false`);
    if (o.appBatchMaxMessages !== undefined) sets.push(`${t}.env.BatchMaxMessages=${o.appBatchMaxMessages}`);
    if (o.appBatchMaxBytes !== undefined) sets.push(`${t}.env.BatchMaxBytes=${o.appBatchMaxBytes}`);
    if (o.appBatchMaxWaitMs !== undefined) sets.push(`${t}.env.BatchMaxWaitTimeInMs=${o.appBatchMaxWaitMs}`);
  }
  applyAssignments(manifest, sets.map(parseSetAssignment));
  return manifest;
}

/** The translator instances of a manifest: the named one first, then every module with translator env. */
export function translatorModules(manifest: DeploymentManifest, first: string): string[] {
  const agent = manifest.modulesContent.$edgeAgent['properties.desired'] as unknown as {
    modules: Record<string, { env?: Record<string, unknown> }>;
  };
  const others = Object.entries(agent.modules)
    .filter(
      ([name, m]) =>
        name !== first && (m.env?.BatchEnabled !== undefined || m.env?.UpstreamTransport !== undefined),
    )
    .map(([name]) => name);
  return agent.modules[first] === undefined ? others : [first, ...others];
}

/** The burst and label flags a run's config summary takes from the command line. */
export type RunConfigFlags = Pick<
  MeasureFlags,
  'burstLength' | 'bursts' | 'targetRate' | 'payloadLength' | 'label' | 'translatorModule'
>;

/**
 * The `config` of a run's summary: the burst from the flags, edgeHub and translator settings as
 * the manifest deploys them (the translators' defaults where the manifest leaves one out).
 */
export function runConfigSummary(manifest: DeploymentManifest, flags: RunConfigFlags): RunConfigSummary {
  const agent = manifest.modulesContent.$edgeAgent['properties.desired'] as unknown as {
    systemModules: { edgeHub: { env?: Record<string, { value: unknown }> } };
    modules: Record<string, { env?: Record<string, { value: unknown }> }>;
  };
  const hubEnv = agent.systemModules.edgeHub.env ?? {};
  const tEnv = agent.modules[flags.translatorModule]?.env ?? {};
  const v = (env: Record<string, { value: unknown }>, k: string) =>
    env[k] === undefined ? undefined : String(env[k]?.value);
  const batching = v(tEnv, 'BatchEnabled') !== 'false';
  const translators = Object.values(agent.modules).filter(
    (m) => m.env?.UpstreamTransport !== undefined || m.env?.BatchEnabled !== undefined,
  ).length;
  return {
    burstLength: flags.burstLength,
    bursts: flags.bursts,
    targetRate: flags.targetRate,
    payloadLength: flags.payloadLength,
    maxUpstreamBatchSize: Number(v(hubEnv, 'MaxUpstreamBatchSize') ?? 10),
    appBatch: batching
      ? {
          maxMessages: Number(v(tEnv, 'BatchMaxMessages') ?? 500),
          maxBytes: Number(v(tEnv, 'BatchMaxBytes') ?? 262_144),
          maxWaitTimeInMs: Number(v(tEnv, 'BatchMaxWaitTimeInMs') ?? 50),
        }
      : { maxMessages: 0, maxBytes: 0, maxWaitTimeInMs: 0 },
    transport: v(tEnv, 'UpstreamTransport') ?? 'sdk-mqtt',
    modules: Math.max(1, translators),
    ...(Object.keys(flags.label).length > 0 ? { labels: flags.label } : {}),
  };
}
