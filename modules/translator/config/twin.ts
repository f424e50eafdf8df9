import { z } from 'zod';
import { parseSettings } from '../../common/index.js';
import { fields } from './schema.js';
import type { TranslatorSettings, TranslatorSettingsInput } from './settings.js';

// Twin documents have no arrays in classic IoT Hub twins, so topics may also be a comma list.
const topics = z
  .union([z.string(), z.array(z.string())], {
    error: 'must be a comma-separated string or list of topic filters',
  })
  .transform((v) => (Array.isArray(v) ? v : v.split(',')).map((t) => t.trim()).filter((t) => t !== ''))
  .pipe(fields.sourceTopics);

/**
 * Module twin desired properties, shaped like {@link TranslatorSettings} (every field optional,
 * unknown fields refused so a typo is reported rather than ignored). Example:
 * `{"batch":{"maxMessages":200,"maxWaitTimeInMs":20},"transport":"raw-mqtt"}`.
 */
export const translatorTwinSchema = z.strictObject({
  source: z
    .strictObject({
      url: fields.sourceUrl,
      topics,
      clientId: fields.sourceClientId,
      qos: fields.sourceQos,
    })
    .partial()
    .optional(),
  embeddedBroker: z
    .strictObject({ enabled: fields.bool, port: fields.port, host: fields.host })
    .partial()
    .optional(),
  decoder: fields.decoder.optional(),
  topicTemplate: fields.topicTemplate.optional(),
  batch: z
    .strictObject({
      enabled: fields.bool,
      maxMessages: fields.maxMessages,
      maxBytes: fields.maxBytes,
      maxWaitTimeInMs: fields.maxWaitTimeInMs,
      packTo4KB: fields.bool,
      encoding: fields.encoding,
      maxInFlightBatches: fields.maxInFlightBatches,
    })
    .partial()
    .optional(),
  maxBufferedBytes: fields.maxBufferedBytes.optional(),
  overflow: fields.overflow.optional(),
  transport: fields.transport.optional(),
  outputName: fields.outputName.optional(),
  metrics: z.strictObject({ port: fields.port, host: fields.host }).partial().optional(),
  logLevel: fields.logLevel.optional(),
  shutdownTimeoutInMs: fields.shutdownTimeoutInMs.optional(),
});

/**
 * Validates a full desired-properties document (metadata keys starting with `$` are ignored).
 * @throws ConfigError listing every invalid field (`twin.batch.maxBytes: must be an integer 512–262144 (got 1)`).
 */
export function settingsFromTwin(desired: Record<string, unknown>): TranslatorSettingsInput {
  return parseSettings(translatorTwinSchema, withoutMetadata(desired), 'twin') as TranslatorSettingsInput;
}

/**
 * Applies a desired-properties patch to a desired document as IoT Hub does (JSON merge patch:
 * objects merge, `null` deletes, anything else replaces). Metadata keys (`$version`…) are dropped.
 * Returns a new document; inputs are not changed.
 */
export function mergeDesiredPatch(
  current: Readonly<Record<string, unknown>>,
  patch: Readonly<Record<string, unknown>>,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...withoutMetadata(current) };
  for (const [key, value] of Object.entries(withoutMetadata(patch))) {
    if (value === null) delete out[key];
    else if (isObject(value) && isObject(out[key])) out[key] = mergeDesiredPatch(out[key], value);
    else if (isObject(value)) out[key] = mergeDesiredPatch({}, value);
    else out[key] = value;
  }
  return out;
}

/** The effective settings as reported properties (topics as a comma list: twins have no arrays). */
export function settingsToReported(settings: TranslatorSettings): Record<string, unknown> {
  return { ...settings, source: { ...settings.source, topics: settings.source.topics.join(',') } };
}

function withoutMetadata(doc: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(doc).filter(([k]) => !k.startsWith('$')));
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
