import { describe, expect, it } from 'vitest';
import { createLogger } from '../../modules/common/index.js';
import type { SettingsSection, TranslatorSettings } from '../../modules/translator/config/index.js';
import { TranslatorConfig } from '../../modules/translator/config/index.js';
import { TranslatorControl } from '../../modules/translator/control.js';
import type {
  MethodHandler,
  ModuleControlChannel,
} from '../../modules/translator/transports/control-channel.js';

// An in-memory control channel: what edgeHub would do with methods and the twin.
class FakeChannel implements ModuleControlChannel {
  readonly methods = new Map<string, MethodHandler>();
  desiredHandler: ((patch: Record<string, unknown>) => void) | undefined;
  reported: Record<string, unknown> = {};
  desired: Record<string, unknown> = { $version: 1 };
  onMethod(name: string, handler: MethodHandler): void {
    this.methods.set(name, handler);
  }
  async getTwin() {
    return { desired: this.desired, reported: this.reported };
  }
  onDesiredPatch(handler: (patch: Record<string, unknown>) => void): void {
    this.desiredHandler = handler;
  }
  async patchReported(patch: Record<string, unknown>): Promise<void> {
    this.reported = { ...this.reported, ...patch };
  }
  call(name: string, payload: unknown = null) {
    const h = this.methods.get(name);
    if (!h) throw new Error(`no method ${name}`);
    return h(payload);
  }
}

function setup(env: NodeJS.ProcessEnv = {}) {
  const config = TranslatorConfig.fromEnv(env);
  const applied: { settings: TranslatorSettings; changed: SettingsSection[] }[] = [];
  let flushed = 0;
  let resets = 0;
  const control = new TranslatorControl({
    config,
    stats: () => ({ sentRecords: 5 }),
    flush: async () => {
      flushed++;
    },
    resetStats: () => {
      resets++;
    },
    apply: async (settings, changed) => {
      applied.push({ settings, changed: [...changed] });
    },
    logger: createLogger('control-test', { level: 'silent' }),
  });
  return { config, control, applied, counts: () => ({ flushed, resets }) };
}

describe('translator control', () => {
  it('serves getStats, flush and resetStats', async () => {
    const { control, counts } = setup();
    const ch = new FakeChannel();
    await control.bind(ch);
    expect(await ch.call('getStats')).toEqual({ status: 200, payload: { sentRecords: 5 } });
    expect((await ch.call('flush')).status).toBe(200);
    expect((await ch.call('resetStats')).status).toBe(200);
    expect(counts()).toEqual({ flushed: 1, resets: 1 });
  });

  it('answers 500 when flush fails', async () => {
    const config = TranslatorConfig.fromEnv({});
    const control = new TranslatorControl({
      config,
      stats: () => ({}),
      flush: async () => {
        throw new Error('edgeHub unreachable');
      },
      resetStats: () => undefined,
      apply: async () => undefined,
      logger: createLogger('control-test', { level: 'silent' }),
    });
    const ch = new FakeChannel();
    await control.bind(ch);
    expect(await ch.call('flush')).toEqual({
      status: 500,
      payload: { flushed: false, error: 'edgeHub unreachable' },
    });
  });

  it('loads desired at start, applies patches in order and reports effective settings or the rejection', async () => {
    const { config, control, applied } = setup();
    const ch = new FakeChannel();
    ch.desired = { $version: 4, batch: { maxMessages: 10 } };
    await control.loadDesired(ch);
    expect(config.settings.batch.maxMessages).toBe(10);
    await control.bind(ch);
    expect(ch.reported).toMatchObject({ config: { status: 'ok', desiredVersion: 4 } });

    ch.desiredHandler?.({ $version: 5, batch: { maxWaitTimeInMs: 5 } });
    ch.desiredHandler?.({ $version: 6, overflow: 'sometimes', decoder: 'xml' });
    ch.desiredHandler?.({ $version: 7, transport: 'raw-mqtt' });
    await control.idle();
    expect(applied.map((a) => a.changed)).toEqual([['batch'], ['transport']]);
    expect(config.settings.batch).toMatchObject({ maxMessages: 10, maxWaitTimeInMs: 5 });
    expect(config.settings.transport).toBe('raw-mqtt');
    expect(ch.reported).toMatchObject({
      config: { status: 'ok', desiredVersion: 7, effective: { transport: 'raw-mqtt' } },
    });
  });

  it('reports a rejected patch with every bad field', async () => {
    const { control } = setup();
    const ch = new FakeChannel();
    await control.bind(ch);
    ch.desiredHandler?.({ $version: 2, overflow: 'sometimes', decoder: 'xml' });
    await control.idle();
    const reported = ch.reported.config as { status: string; error: string; rejectedVersion: number };
    expect(reported.status).toBe('rejected');
    expect(reported.rejectedVersion).toBe(2);
    expect(reported.error).toContain(
      'twin.overflow: must be one of backpressure, drop-oldest (got "sometimes")',
    );
    expect(reported.error).toContain('twin.decoder: must be one of json, sparkplug, raw (got "xml")');
  });
});
