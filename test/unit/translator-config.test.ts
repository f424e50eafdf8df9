import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../modules/common/index.js';
import {
  mergeDesiredPatch,
  resolveSettings,
  settingsFromEnv,
  TranslatorConfig,
} from '../../modules/translator/config/index.js';

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('translator configuration from env', () => {
  it('applies the documented defaults', () => {
    const s = TranslatorConfig.fromEnv({}).settings;
    expect(s.outputName).toBe('output1');
    expect(s.metrics).toEqual({ port: 9600, host: '127.0.0.1' });
    expect(s.transport).toBe('sdk-mqtt');
    expect(s.source).toEqual({
      url: 'mqtt://localhost:1883',
      topics: ['#'],
      clientId: 'edgeperf-translator',
      qos: 1,
    });
    expect(s.batch.maxBytes).toBe(256 * 1024);
    expect(s.overflow).toBe('backpressure');
  });

  it('listens on 0.0.0.0 inside IoT Edge and points the source at the embedded broker', () => {
    const s = TranslatorConfig.fromEnv({
      IOTEDGE_MODULEID: 'translator',
      EmbeddedBrokerEnabled: 'true',
      EmbeddedBrokerPort: '1884',
    }).settings;
    expect(s.metrics.host).toBe('0.0.0.0');
    expect(s.embeddedBroker).toEqual({ enabled: true, port: 1884, host: '0.0.0.0' });
    expect(s.source.url).toBeUndefined();
  });

  it('parses every variable', () => {
    const s = TranslatorConfig.fromEnv({
      SourceUrl: 'mqtts://broker:8883',
      SourceTopics: 'plant/+/line/#, spBv1.0/#',
      SourceQos: '2',
      Decoder: 'sparkplug',
      TopicTemplate: 'plant/{site}/line/{line}/{sensor}',
      BatchEnabled: 'false',
      BatchMaxMessages: '100',
      BatchMaxWaitTimeInMs: '0',
      BatchPackTo4KB: 'yes',
      BatchEncoding: 'gzip',
      MaxInFlightBatches: '8',
      Overflow: 'drop-oldest',
      UpstreamTransport: 'raw-mqtt',
      OutputName: 'telemetry',
      MetricsPort: '0',
      RuntimeLogLevel: 'Warning',
    }).settings;
    expect(s.source.topics).toEqual(['plant/+/line/#', 'spBv1.0/#']);
    expect(s.source.qos).toBe(2);
    expect(s.batch).toMatchObject({
      enabled: false,
      maxMessages: 100,
      maxWaitTimeInMs: 0,
      packTo4KB: true,
      encoding: 'gzip',
      maxInFlightBatches: 8,
    });
    expect(s.transport).toBe('raw-mqtt');
    expect(s.logLevel).toBe('warn');
    expect(s.metrics.port).toBe(0);
  });

  it('reports several bad variables at once, with names, values and what is allowed', () => {
    const err = configError(() =>
      settingsFromEnv({
        BatchMaxBytes: '300000',
        UpstreamTransport: 'http',
        Decoder: 'xml',
        SourceQos: 'one',
        BatchEnabled: 'maybe',
        SourceTopics: 'a/#/b',
      }),
    );
    const byField = Object.fromEntries(err.issues.map((i) => [i.field.replace(/\.\d+$/, ''), i.message]));
    expect(Object.keys(byField).sort()).toEqual(
      [
        'env.BatchEnabled',
        'env.BatchMaxBytes',
        'env.Decoder',
        'env.SourceQos',
        'env.SourceTopics',
        'env.UpstreamTransport',
      ].sort(),
    );
    expect(byField['env.BatchMaxBytes']).toBe('must be an integer 512–262144 (got "300000")');
    expect(byField['env.UpstreamTransport']).toBe('must be one of sdk-mqtt, sdk-amqp, raw-mqtt (got "http")');
    expect(byField['env.Decoder']).toContain('json, sparkplug, raw');
    expect(err.exitCode).toBe(2);
    expect(err.message).toContain('env.SourceQos');
  });

  it('rejects an invalid topic template at start', () => {
    expect(() => TranslatorConfig.fromEnv({ TopicTemplate: 'a/#/{b}' })).toThrow(ConfigError);
  });
});

describe('translator configuration from the twin', () => {
  it('layers desired properties over env and reports which parts changed', () => {
    const config = TranslatorConfig.fromEnv({ BatchMaxMessages: '100', UpstreamTransport: 'sdk-amqp' });
    const out = config.applyDesiredDocument({
      $version: 3,
      batch: { maxWaitTimeInMs: 20 },
      logLevel: 'debug',
    });
    expect(out.ok).toBe(true);
    if (!out.ok) return;
    expect(out.settings.batch.maxMessages).toBe(100);
    expect(out.settings.batch.maxWaitTimeInMs).toBe(20);
    expect(out.settings.transport).toBe('sdk-amqp');
    expect([...out.changed].sort()).toEqual(['batch', 'logLevel']);
    expect(config.reported()).toMatchObject({ config: { status: 'ok', desiredVersion: 3, error: null } });
  });

  it('rejects an invalid patch whole, keeps the last good config and says why', () => {
    const config = TranslatorConfig.fromEnv({});
    config.applyDesiredDocument({ $version: 1, batch: { maxMessages: 50 } });
    const out = config.applyDesiredPatch({
      $version: 2,
      batch: { maxMessages: 0, encoding: 'zip' },
      transport: 'raw-mqtt',
      batchSize: 7,
    });
    expect(out.ok).toBe(false);
    if (out.ok) return;
    const fields = out.error.issues.map((i) => i.field).sort();
    expect(fields).toEqual(['twin', 'twin.batch.encoding', 'twin.batch.maxMessages']);
    expect(out.error.message).toContain('batchSize');
    expect(config.settings.batch.maxMessages).toBe(50);
    expect(config.settings.transport).toBe('sdk-mqtt');
    expect(config.reported()).toMatchObject({
      config: { status: 'rejected', desiredVersion: 1, rejectedVersion: 2 },
    });
    // The next good patch applies on top of the last good document, not the rejected one.
    const next = config.applyDesiredPatch({ $version: 3, transport: 'raw-mqtt' });
    expect(next.ok && next.settings.transport).toBe('raw-mqtt');
    expect(config.settings.batch.maxMessages).toBe(50);
  });

  it('null in a patch reverts a field to env or default', () => {
    const config = TranslatorConfig.fromEnv({ OutputName: 'fromenv' });
    config.applyDesiredDocument({ outputName: 'fromtwin', batch: { maxMessages: 9 } });
    expect(config.settings.outputName).toBe('fromtwin');
    const out = config.applyDesiredPatch({ outputName: null, batch: { maxMessages: null } });
    expect(out.ok).toBe(true);
    expect(config.settings.outputName).toBe('fromenv');
    expect(config.settings.batch.maxMessages).toBe(500);
  });

  it('accepts topics as a comma list (twins have no arrays) and reports them the same way', () => {
    const config = TranslatorConfig.fromEnv({});
    config.applyDesiredDocument({ source: { topics: 'a/#,b/+' } });
    expect(config.settings.source.topics).toEqual(['a/#', 'b/+']);
    const reported = config.reported() as { config: { effective: { source: { topics: unknown } } } };
    expect(reported.config.effective.source.topics).toBe('a/#,b/+');
  });

  it('merges patches like IoT Hub', () => {
    expect(
      mergeDesiredPatch({ a: { b: 1, c: 2 }, d: 1, $version: 4 }, { a: { b: null, e: 3 }, d: 5 }),
    ).toEqual({
      a: { c: 2, e: 3 },
      d: 5,
    });
    expect(
      resolveSettings([{ batch: { maxMessages: 1 } }, { batch: { encoding: 'gzip' } }], false).batch,
    ).toMatchObject({
      maxMessages: 1,
      encoding: 'gzip',
    });
  });
});
