import { z } from 'zod';
import { MAX_UPSTREAM_BYTES } from './settings.js';

// One validator per field, shared by the env and twin schemas so both report the same limits.

function int(min: number, max: number) {
  const allowed = `must be an integer ${min}–${max}`;
  return z
    .number({ error: allowed })
    .int({ error: allowed })
    .min(min, { error: allowed })
    .max(max, { error: allowed });
}

function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, { error: `must be one of ${values.join(', ')}` });
}

const url = z.string({ error: 'must be a URL string' }).regex(/^(mqtts?|tcp|tls|wss?):\/\/[^\s]+$/i, {
  error: 'must be an mqtt://, mqtts://, ws:// or wss:// URL',
});
const topic = z
  .string({ error: 'must be a topic filter string' })
  .min(1, { error: 'must be a non-empty topic filter' })
  .refine(
    (t) =>
      t
        .split('/')
        .every((level, i, all) =>
          level.includes('#') ? level === '#' && i === all.length - 1 : !level.includes('+') || level === '+',
        ),
    { error: '+ must fill a whole level and # must be the whole last level' },
  );
const nonEmpty = (what: string) =>
  z
    .string({ error: `must be ${what}` })
    .min(1, { error: `must be ${what}` })
    .max(128, { error: `must be ${what}` });

/** Field validators, keyed like {@link TranslatorSettings}. */
export const fields = {
  sourceUrl: url,
  sourceTopics: z
    .array(topic, { error: 'must be a list of topic filters' })
    .min(1, { error: 'must name at least one topic filter' }),
  sourceClientId: nonEmpty('a client id of 1–128 characters'),
  sourceQos: z.union([z.literal(0), z.literal(1), z.literal(2)], { error: 'must be 0, 1 or 2' }),
  port: int(0, 65535),
  host: nonEmpty('a listen address such as 127.0.0.1 or 0.0.0.0'),
  decoder: oneOf(['json', 'sparkplug', 'raw'] as const),
  topicTemplate: z.string({ error: 'must be a topic template string such as plant/{site}/{sensor}' }),
  maxMessages: int(1, 100_000),
  maxBytes: int(512, MAX_UPSTREAM_BYTES),
  maxWaitTimeInMs: int(0, 60_000),
  encoding: oneOf(['json', 'gzip'] as const),
  maxInFlightBatches: int(1, 256),
  maxBufferedBytes: int(65_536, 4 * 1024 ** 3),
  overflow: oneOf(['backpressure', 'drop-oldest'] as const),
  transport: oneOf(['sdk-mqtt', 'sdk-amqp', 'raw-mqtt'] as const),
  outputName: z
    .string({ error: 'must be an output name' })
    .regex(/^[A-Za-z0-9_.-]{1,64}$/, { error: 'must be 1–64 letters, digits, _ . or -' }),
  logLevel: oneOf(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const),
  shutdownTimeoutInMs: int(100, 300_000),
  bool: z.boolean({ error: 'must be true or false' }),
};
