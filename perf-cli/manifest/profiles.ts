import { z } from 'zod';
import baselineJson from '../../deployment/profiles/baseline.json' with { type: 'json' };
import highRateJson from '../../deployment/profiles/high-rate.json' with { type: 'json' };
import multiModuleJson from '../../deployment/profiles/multi-module.json' with { type: 'json' };
import offlineTolerantJson from '../../deployment/profiles/offline-tolerant.json' with { type: 'json' };
import { parseSettings } from '../../modules/common/index.js';

/** Names of the profiles in deployment/profiles/. */
export const PROFILE_NAMES = ['baseline', 'high-rate', 'offline-tolerant', 'multi-module'] as const;
/** One of {@link PROFILE_NAMES}. */
export type ProfileName = (typeof PROFILE_NAMES)[number];

const translatorInstance = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_-]+$/, 'module names are letters, digits, - and _'),
  topics: z.array(z.string().min(1)).min(1),
  priority: z.number().int().min(0).max(9),
  batching: z.boolean().optional(),
});

const profileSchema = z.strictObject({
  description: z.string().min(1),
  choices: z.record(z.string(), z.string()),
  edgeHub: z.strictObject({
    maxUpstreamBatchSize: z.union([z.number().int().min(1), z.literal('match-message-size')]),
    storage: z.enum(['container', 'host']),
    timeToLiveSecs: z.union([z.number().int().min(1), z.literal('fit-disk')]),
    cleanup: z.enum(['default', 'when-shared']),
    exposeMetrics: z.boolean(),
  }),
  appBatch: z.union([
    z.strictObject({ enabled: z.literal(false) }),
    z.strictObject({
      enabled: z.literal(true),
      maxBytes: z
        .number()
        .int()
        .min(512)
        .max(256 * 1024),
      maxWaitTimeInMs: z.number().int().min(0).max(60_000),
    }),
  ]),
  translators: z.array(translatorInstance).min(1),
  simulator: z.strictObject({ devices: z.number().int().min(1) }),
  set: z.record(z.string(), z.unknown()).optional(),
});

/** A translator instance a profile deploys; the first one hosts the embedded source broker. */
export type TranslatorInstance = z.infer<typeof translatorInstance>;

/**
 * A profile: a documented set of choices the generator applies to deployment.template.json.
 * - `edgeHub.maxUpstreamBatchSize`: a number, or `match-message-size` (256 KiB / upstream message size);
 * - `edgeHub.storage`: `container` (edgeHub's default /tmp/edgeHub) or `host` (StorageFolder bound to the host);
 * - `edgeHub.timeToLiveSecs`: seconds, or `fit-disk` (longest TTL that fits 80% of the disk);
 * - `edgeHub.cleanup`: `default`, or `when-shared` (CheckEntireQueueOnCleanup and a cleanup interval ≤ TTL/4
 *   when several priorities or TTLs share an endpoint);
 * - `appBatch`: the translator's application batching; `translators`: the instances and their route priority;
 * - `set`: raw `--set` assignments applied last.
 */
export type Profile = z.infer<typeof profileSchema> & { readonly name: ProfileName };

const RAW: Record<ProfileName, unknown> = {
  baseline: baselineJson,
  'high-rate': highRateJson,
  'offline-tolerant': offlineTolerantJson,
  'multi-module': multiModuleJson,
};

/**
 * A profile by name, validated.
 * @throws ConfigError when the profile file is malformed (a packaging bug, reported with every field).
 */
export function getProfile(name: ProfileName): Profile {
  const parsed = parseSettings(profileSchema, RAW[name], `profile ${name}`);
  return { ...parsed, name };
}

/** True when `value` names a profile. */
export function isProfileName(value: string): value is ProfileName {
  return (PROFILE_NAMES as readonly string[]).includes(value);
}
