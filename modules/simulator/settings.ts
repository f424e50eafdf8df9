import { z } from 'zod';
import { parseSettings } from '../common/index.js';

/** Message body formats the simulator can publish. */
export type SimulatorFormat = 'json' | 'sparkplug';

/**
 * One measurement run: `burstNumber` bursts of `burstLength` messages, `burstWaitMs` apart.
 * This is the payload of the `start` direct method, the twin's desired `config` and the CLI's flags.
 */
export interface BurstSettings {
  /** Session (run) id carried as `perf.sid`; default: a random UUID at start. */
  readonly sessionId: string;
  /** Messages per burst; default 1000. */
  readonly burstLength: number;
  /** Bursts in the run; default 1. */
  readonly burstNumber: number;
  /** Pause between the end of one burst and the start of the next, ms; default 1000. */
  readonly burstWaitMs: number;
  /** Target rate, messages per second; 0 = unpaced (as fast as acknowledgements allow); default 100. */
  readonly targetRate: number;
  /** Size of the whole message body in bytes (padded with a random string); default 1024. */
  readonly payloadLength: number;
  /** Body format; default `json`. */
  readonly format: SimulatorFormat;
  /** Simulated field devices; messages go round-robin across them; default 1. */
  readonly devices: number;
  /** A message published more than this many ms after its due time counts as a violation; default 5. */
  readonly lateToleranceMs: number;
}

/** Largest body the simulator builds: IoT Hub's message limit (edge-facts §9). */
export const MAX_PAYLOAD_BYTES = 256 * 1024;

/** Defaults of {@link BurstSettings}, applied in one place. */
export const BURST_DEFAULTS = {
  burstLength: 1000,
  burstNumber: 1,
  burstWaitMs: 1000,
  targetRate: 100,
  payloadLength: 1024,
  format: 'json',
  devices: 1,
  lateToleranceMs: 5,
} as const satisfies Omit<BurstSettings, 'sessionId'>;

const int = (min: number, max: number) => z.number().int().min(min).max(max);

/** zod schema of the `start` payload; unknown keys are refused so typos do not pass silently. */
export const burstSettingsSchema = z
  .object({
    sessionId: z
      .string()
      .min(1)
      .max(128)
      .regex(/^[A-Za-z0-9._:-]+$/, 'letters, digits and . _ : - only')
      .optional(),
    burstLength: int(1, 100_000_000).default(BURST_DEFAULTS.burstLength),
    burstNumber: int(1, 100_000).default(BURST_DEFAULTS.burstNumber),
    burstWaitMs: int(0, 86_400_000).default(BURST_DEFAULTS.burstWaitMs),
    targetRate: z.number().min(0).max(1_000_000).default(BURST_DEFAULTS.targetRate),
    payloadLength: int(0, MAX_PAYLOAD_BYTES).default(BURST_DEFAULTS.payloadLength),
    format: z.enum(['json', 'sparkplug']).default(BURST_DEFAULTS.format),
    devices: int(1, 100_000).default(BURST_DEFAULTS.devices),
    lateToleranceMs: z.number().min(0).max(60_000).default(BURST_DEFAULTS.lateToleranceMs),
  })
  .strict();

/**
 * Validates a `start` payload (or twin `config`) into settings with defaults applied.
 *
 * @param source - field prefix for errors (`start`, `twin.config`, `flag`).
 * @throws ConfigError naming every invalid field, e.g. `invalid start: start.targetRate: …`.
 */
export function parseBurstSettings(input: unknown, source = 'start'): BurstSettings {
  const parsed = parseSettings(burstSettingsSchema, input ?? {}, source);
  return { ...parsed, sessionId: parsed.sessionId ?? crypto.randomUUID() };
}

/** Where and how the simulator publishes; from env vars in module mode, flags in standalone mode. */
export interface SimulatorConnectionSettings {
  /** Source broker URL; env `SourceBrokerUrl`; default `mqtt://127.0.0.1:1883`. */
  readonly brokerUrl: string;
  /** Broker user name; env `SourceBrokerUsername`. */
  readonly username?: string;
  /** Broker password; env `SourceBrokerPassword`. */
  readonly password?: string;
  /**
   * Topic template; `{device}` and `{session}` are replaced per message. Env `SimulatorTopic`.
   * Default `sim/{device}/telemetry` for json, `spBv1.0/edgeperf/DDATA/simulator/{device}` for
   * sparkplug (see {@link defaultTopicFor}).
   */
  readonly topic?: string;
  /** Publishes awaiting PUBACK at once (bounds memory); env `SimulatorMaxInFlight`; default 100. */
  readonly maxInFlight: number;
}

/** Default broker URL: a source broker on loopback. */
export const DEFAULT_BROKER_URL = 'mqtt://127.0.0.1:1883';
/** Default publishes in flight. */
export const DEFAULT_MAX_IN_FLIGHT = 100;

/** The default topic template for a format. */
export function defaultTopicFor(format: SimulatorFormat): string {
  return format === 'sparkplug' ? 'spBv1.0/edgeperf/DDATA/simulator/{device}' : 'sim/{device}/telemetry';
}

const envSchema = z.object({
  SourceBrokerUrl: z
    .string()
    .regex(/^(mqtts?|wss?|tcp|ssl):\/\/.+/, 'an mqtt://, mqtts://, ws:// or wss:// URL')
    .default(DEFAULT_BROKER_URL),
  SourceBrokerUsername: z.string().min(1).optional(),
  SourceBrokerPassword: z.string().min(1).optional(),
  SimulatorTopic: z.string().min(1).optional(),
  SimulatorMaxInFlight: z.coerce.number().int().min(1).max(65_535).default(DEFAULT_MAX_IN_FLIGHT),
});

/**
 * Reads the connection settings from environment variables (module mode).
 * @throws ConfigError naming every invalid variable.
 */
export function connectionSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): SimulatorConnectionSettings {
  const picked = {
    SourceBrokerUrl: env.SourceBrokerUrl,
    SourceBrokerUsername: env.SourceBrokerUsername,
    SourceBrokerPassword: env.SourceBrokerPassword,
    SimulatorTopic: env.SimulatorTopic,
    SimulatorMaxInFlight: env.SimulatorMaxInFlight,
  };
  const s = parseSettings(envSchema, picked, 'env');
  return {
    brokerUrl: s.SourceBrokerUrl,
    maxInFlight: s.SimulatorMaxInFlight,
    ...(s.SourceBrokerUsername === undefined ? {} : { username: s.SourceBrokerUsername }),
    ...(s.SourceBrokerPassword === undefined ? {} : { password: s.SourceBrokerPassword }),
    ...(s.SimulatorTopic === undefined ? {} : { topic: s.SimulatorTopic }),
  };
}
