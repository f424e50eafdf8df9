import type { DecoderFormat } from '../decoders/types.js';
import type { TransportName } from '../upstream-transport.js';

/** Largest upstream message edgeHub and IoT Hub accept, body plus properties (edge-facts §2). */
export const MAX_UPSTREAM_BYTES = 256 * 1024;

/** Source broker subscription. */
export interface SourceSettings {
  /** Broker URL; default: the embedded broker when it is on (undefined here), else `mqtt://localhost:1883`. */
  readonly url: string | undefined;
  /** Topic filters; default `["#"]`. */
  readonly topics: readonly string[];
  /** Stable client id so the persistent session (clean false) survives restarts; default `edgeperf-translator`. */
  readonly clientId: string;
  /** Subscription QoS; default 1 (at-least-once needs 1 or 2). */
  readonly qos: 0 | 1 | 2;
}

/** Embedded aedes broker so field devices can publish to the module itself. */
export interface EmbeddedBrokerSettings {
  /** Default false. */
  readonly enabled: boolean;
  /** TCP port; default 1883. */
  readonly port: number;
  /** Listen address; default 0.0.0.0 inside IoT Edge (IOTEDGE_MODULEID set), else 127.0.0.1. */
  readonly host: string;
}

/** Application-level batching (the only batching a Node module can do, edge-facts §6). */
export interface BatchSettings {
  /** false sends one upstream message per source message (the naive shape); default true. */
  readonly enabled: boolean;
  /** Records per upstream message; default 500, 1–100000. */
  readonly maxMessages: number;
  /** Upstream message bytes including properties; default 262144 (256 KiB, the hard cap), 512–262144. */
  readonly maxBytes: number;
  /** Linger: how long the first record of a batch may wait; default 50 ms, 0–60000. */
  readonly maxWaitTimeInMs: number;
  /** Close batches just under a multiple of 4 KB when that adds no delay; default false. */
  readonly packTo4KB: boolean;
  /** Body encoding; default `json`. */
  readonly encoding: 'json' | 'gzip';
  /** Upstream messages awaiting edgeHub's acknowledgement at once; default 4, 1–256. */
  readonly maxInFlightBatches: number;
}

/** Prometheus endpoint. */
export interface MetricsSettings {
  /** Default 9600 (edgeHub's metrics port convention); 0 picks a free port (tests). */
  readonly port: number;
  /** Listen address; default 0.0.0.0 inside IoT Edge (IOTEDGE_MODULEID set), else 127.0.0.1. */
  readonly host: string;
}

/** The translator's effective configuration: defaults, then env vars, then twin desired properties. */
export interface TranslatorSettings {
  readonly source: SourceSettings;
  readonly embeddedBroker: EmbeddedBrokerSettings;
  /** Payload decoder; default `json`. */
  readonly decoder: DecoderFormat;
  /** Topic template such as `plant/{site}/line/{line}/{sensor}`; default `""` (none). */
  readonly topicTemplate: string;
  readonly batch: BatchSettings;
  /** Memory bound of records waiting to go upstream; default 16777216 (16 MiB), 65536–4294967296. */
  readonly maxBufferedBytes: number;
  /** When the buffer is full: `backpressure` (stop acknowledging/reading, default) or `drop-oldest` (counted). */
  readonly overflow: 'backpressure' | 'drop-oldest';
  /** Upstream transport; default `sdk-mqtt`. */
  readonly transport: TransportName;
  /** Module output for telemetry; default `output1`. */
  readonly outputName: string;
  readonly metrics: MetricsSettings;
  /** pino level; default `info` (env `RuntimeLogLevel` or `LOG_LEVEL`). */
  readonly logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
  /** SIGTERM deadline to stop reading, flush and close; default 10000 ms. */
  readonly shutdownTimeoutInMs: number;
}

/** Any subset of the settings, as one source (env or twin) supplies it. */
export type TranslatorSettingsInput = {
  -readonly [K in keyof TranslatorSettings]?: TranslatorSettings[K] extends readonly unknown[]
    ? TranslatorSettings[K]
    : TranslatorSettings[K] extends object
      ? { -readonly [P in keyof TranslatorSettings[K]]?: TranslatorSettings[K][P] }
      : TranslatorSettings[K];
};

/** Parts of the module that are rebuilt when their settings change. */
export type SettingsSection =
  | 'source'
  | 'embeddedBroker'
  | 'decoder'
  | 'batch'
  | 'buffer'
  | 'transport'
  | 'output'
  | 'metrics'
  | 'logLevel'
  | 'shutdown';

/**
 * Applies the defaults (the one place they live) under `layers`, later layers winning per field.
 * @param inContainer - true inside IoT Edge; servers then default to 0.0.0.0 instead of 127.0.0.1.
 */
export function resolveSettings(
  layers: readonly TranslatorSettingsInput[],
  inContainer: boolean,
): TranslatorSettings {
  const m = mergeLayers(layers);
  const host = inContainer ? '0.0.0.0' : '127.0.0.1';
  const embeddedBroker: EmbeddedBrokerSettings = {
    enabled: m.embeddedBroker?.enabled ?? false,
    port: m.embeddedBroker?.port ?? 1883,
    host: m.embeddedBroker?.host ?? host,
  };
  return {
    source: {
      url: m.source?.url ?? (embeddedBroker.enabled ? undefined : 'mqtt://localhost:1883'),
      topics: m.source?.topics ?? ['#'],
      clientId: m.source?.clientId ?? 'edgeperf-translator',
      qos: m.source?.qos ?? 1,
    },
    embeddedBroker,
    decoder: m.decoder ?? 'json',
    topicTemplate: m.topicTemplate ?? '',
    batch: {
      enabled: m.batch?.enabled ?? true,
      maxMessages: m.batch?.maxMessages ?? 500,
      maxBytes: m.batch?.maxBytes ?? MAX_UPSTREAM_BYTES,
      maxWaitTimeInMs: m.batch?.maxWaitTimeInMs ?? 50,
      packTo4KB: m.batch?.packTo4KB ?? false,
      encoding: m.batch?.encoding ?? 'json',
      maxInFlightBatches: m.batch?.maxInFlightBatches ?? 4,
    },
    maxBufferedBytes: m.maxBufferedBytes ?? 16 * 1024 * 1024,
    overflow: m.overflow ?? 'backpressure',
    transport: m.transport ?? 'sdk-mqtt',
    outputName: m.outputName ?? 'output1',
    metrics: { port: m.metrics?.port ?? 9600, host: m.metrics?.host ?? host },
    logLevel: m.logLevel ?? 'info',
    shutdownTimeoutInMs: m.shutdownTimeoutInMs ?? 10_000,
  };
}

function mergeLayers(layers: readonly TranslatorSettingsInput[]): TranslatorSettingsInput {
  const out: Record<string, unknown> = {};
  for (const layer of layers) {
    for (const [key, value] of Object.entries(layer)) {
      if (value === undefined) continue;
      const prev = out[key];
      out[key] =
        isPlainObject(value) && isPlainObject(prev)
          ? { ...prev, ...withoutUndefined(value) }
          : isPlainObject(value)
            ? withoutUndefined(value)
            : value;
    }
  }
  return out as TranslatorSettingsInput;
}

/** Which parts of the module must be rebuilt to go from `a` to `b`. */
export function changedSections(a: TranslatorSettings, b: TranslatorSettings): Set<SettingsSection> {
  const out = new Set<SettingsSection>();
  const differ = (x: unknown, y: unknown) => JSON.stringify(x) !== JSON.stringify(y);
  if (differ(a.source, b.source)) out.add('source');
  if (differ(a.embeddedBroker, b.embeddedBroker)) out.add('embeddedBroker');
  if (a.decoder !== b.decoder || a.topicTemplate !== b.topicTemplate) out.add('decoder');
  if (differ(a.batch, b.batch)) out.add('batch');
  if (a.maxBufferedBytes !== b.maxBufferedBytes || a.overflow !== b.overflow) out.add('buffer');
  if (a.transport !== b.transport) out.add('transport');
  if (a.outputName !== b.outputName) out.add('output');
  if (differ(a.metrics, b.metrics)) out.add('metrics');
  if (a.logLevel !== b.logLevel) out.add('logLevel');
  if (a.shutdownTimeoutInMs !== b.shutdownTimeoutInMs) out.add('shutdown');
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function withoutUndefined(v: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(v).filter(([, x]) => x !== undefined));
}
