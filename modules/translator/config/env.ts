import { z } from 'zod';
import { parseSettings } from '../../common/index.js';
import { fields } from './schema.js';
import type { TranslatorSettingsInput } from './settings.js';

// Env values are strings: convert, then validate with the same field rules as the twin.
function envInt<T extends z.ZodType<number, number>>(rule: T) {
  return z
    .string()
    .trim()
    .regex(/^-?\d+$/, { error: 'must be an integer' })
    .transform(Number)
    .pipe(rule);
}
const envBool = z
  .string()
  .trim()
  .toLowerCase()
  .refine((v) => ['true', 'false', '1', '0', 'yes', 'no'].includes(v), { error: 'must be true or false' })
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
const envList = <T extends z.ZodType<string[], string[]>>(rule: T) =>
  z
    .string()
    .transform((v) =>
      v
        .split(',')
        .map((t) => t.trim())
        .filter((t) => t !== ''),
    )
    .pipe(rule);
// IoT Edge writes RuntimeLogLevel as `warning`/`information`.
const envLevel = z
  .string()
  .trim()
  .toLowerCase()
  .transform((v) => (v === 'warning' ? 'warn' : v === 'information' ? 'info' : v))
  .pipe(fields.logLevel);

/**
 * The translator's environment variables (PascalCase like edgeHub's own, edge-facts §1), each
 * optional; unset means "use the default or the twin". Lists are comma-separated.
 *
 * | Variable | Setting |
 * |---|---|
 * | SourceUrl, SourceTopics, SourceClientId, SourceQos | source.* |
 * | EmbeddedBrokerEnabled, EmbeddedBrokerPort, EmbeddedBrokerHost | embeddedBroker.* |
 * | Decoder, TopicTemplate | decoder, topicTemplate |
 * | BatchEnabled, BatchMaxMessages, BatchMaxBytes, BatchMaxWaitTimeInMs, BatchPackTo4KB, BatchEncoding, MaxInFlightBatches | batch.* |
 * | MaxBufferedBytes, Overflow | maxBufferedBytes, overflow |
 * | UpstreamTransport, OutputName | transport, outputName |
 * | MetricsPort, MetricsHost | metrics.* |
 * | RuntimeLogLevel (or LOG_LEVEL), ShutdownTimeoutInMs | logLevel, shutdownTimeoutInMs |
 */
export const translatorEnvSchema = z.object({
  SourceUrl: fields.sourceUrl.optional(),
  SourceTopics: envList(fields.sourceTopics).optional(),
  SourceClientId: fields.sourceClientId.optional(),
  SourceQos: envInt(fields.sourceQos).optional(),
  EmbeddedBrokerEnabled: envBool.optional(),
  EmbeddedBrokerPort: envInt(fields.port).optional(),
  EmbeddedBrokerHost: fields.host.optional(),
  Decoder: fields.decoder.optional(),
  TopicTemplate: fields.topicTemplate.optional(),
  BatchEnabled: envBool.optional(),
  BatchMaxMessages: envInt(fields.maxMessages).optional(),
  BatchMaxBytes: envInt(fields.maxBytes).optional(),
  BatchMaxWaitTimeInMs: envInt(fields.maxWaitTimeInMs).optional(),
  BatchPackTo4KB: envBool.optional(),
  BatchEncoding: fields.encoding.optional(),
  MaxInFlightBatches: envInt(fields.maxInFlightBatches).optional(),
  MaxBufferedBytes: envInt(fields.maxBufferedBytes).optional(),
  Overflow: fields.overflow.optional(),
  UpstreamTransport: fields.transport.optional(),
  OutputName: fields.outputName.optional(),
  MetricsPort: envInt(fields.port).optional(),
  MetricsHost: fields.host.optional(),
  RuntimeLogLevel: envLevel.optional(),
  LOG_LEVEL: envLevel.optional(),
  ShutdownTimeoutInMs: envInt(fields.shutdownTimeoutInMs).optional(),
});

/**
 * Reads the translator's settings layer from environment variables; empty values count as unset.
 * @throws ConfigError listing every invalid variable (`env.BatchMaxBytes: must be an integer 512–262144 (got "x")`).
 */
export function settingsFromEnv(env: NodeJS.ProcessEnv): TranslatorSettingsInput {
  const keys = Object.keys(translatorEnvSchema.shape);
  const input: Record<string, string> = {};
  for (const k of keys) {
    const v = env[k];
    if (v !== undefined && v.trim() !== '') input[k] = v;
  }
  const e = parseSettings(translatorEnvSchema, input, 'env');
  return {
    source: { url: e.SourceUrl, topics: e.SourceTopics, clientId: e.SourceClientId, qos: e.SourceQos },
    embeddedBroker: {
      enabled: e.EmbeddedBrokerEnabled,
      port: e.EmbeddedBrokerPort,
      host: e.EmbeddedBrokerHost,
    },
    decoder: e.Decoder,
    topicTemplate: e.TopicTemplate,
    batch: {
      enabled: e.BatchEnabled,
      maxMessages: e.BatchMaxMessages,
      maxBytes: e.BatchMaxBytes,
      maxWaitTimeInMs: e.BatchMaxWaitTimeInMs,
      packTo4KB: e.BatchPackTo4KB,
      encoding: e.BatchEncoding,
      maxInFlightBatches: e.MaxInFlightBatches,
    },
    maxBufferedBytes: e.MaxBufferedBytes,
    overflow: e.Overflow,
    transport: e.UpstreamTransport,
    outputName: e.OutputName,
    metrics: { port: e.MetricsPort, host: e.MetricsHost },
    logLevel: e.RuntimeLogLevel ?? e.LOG_LEVEL,
    shutdownTimeoutInMs: e.ShutdownTimeoutInMs,
  };
}

/** True when edgeAgent started this process as an IoT Edge module (it sets IOTEDGE_MODULEID). */
export function isInsideIotEdge(env: NodeJS.ProcessEnv): boolean {
  return env.IOTEDGE_MODULEID !== undefined && env.IOTEDGE_MODULEID !== '';
}
