import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, decodeEnvelopeBody, readPerfFields } from '../../modules/common/index.js';
import { TranslatorModule } from '../../modules/translator/module.js';
import { DEVICE_ID, type Rig, startRig, until } from './edgehub-mqtt-helpers.js';

// The whole module wired as main.ts wires it: embedded field broker → pipeline → transport →
// the local edgeHub, with twin-driven live reconfiguration and direct methods.
const moduleId = 'translator';
const identity = { deviceId: DEVICE_ID, moduleId };
let rig: Rig;
let mod: TranslatorModule;

beforeAll(async () => {
  rig = await startRig([moduleId]);
  mod = new TranslatorModule({
    env: {
      EdgeHubConnectionString: rig.connectionString(moduleId),
      EdgeModuleCACertificateFile: rig.certs.caFile,
      EmbeddedBrokerEnabled: 'true',
      EmbeddedBrokerPort: '0',
      MetricsPort: '0',
      UpstreamTransport: 'raw-mqtt',
      BatchMaxWaitTimeInMs: '20',
      SourceTopics: 'field/#',
      RuntimeLogLevel: process.env.TEST_LOG_LEVEL ?? 'silent',
    },
    connectRetryMinDelayInMs: 50,
    logger: createLogger('translator-module-test', { level: 'silent' }),
  });
  await mod.start();
});
afterAll(async () => {
  await mod?.stop();
  await rig?.close();
});

function delivered(): number[] {
  const seqs: number[] = [];
  for (const m of rig.intake.messages) {
    if (m.system.outputName !== 'output1') continue;
    for (const r of decodeEnvelopeBody(m.body, m.system.contentEncoding)) {
      const perf = readPerfFields(r);
      if (perf) seqs.push(perf.seq);
    }
  }
  return seqs;
}

async function publish(from: number, count: number): Promise<void> {
  const url = mod.embeddedBrokerUrl;
  if (!url) throw new Error('embedded broker not running');
  const client = await mqtt.connectAsync(url, { clientId: `field-${from}` });
  for (let seq = from; seq < from + count; seq++) {
    await client.publishAsync(
      'field/line1/temp',
      JSON.stringify({ perf: { sid: 's', burst: 1, seq, ts: Date.now() }, value: seq }),
      { qos: 1 },
    );
  }
  await client.endAsync();
}

async function method(name: string): Promise<{ status: number; payload: unknown }> {
  await until(() => rig.core.isConnected(identity), 'module connected');
  const deadline = Date.now() + 5000;
  for (;;) {
    try {
      return await rig.core.invokeMethod(identity, name, null, 5000);
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

function reportedConfig(): { status?: string; error?: string | null; effective?: { transport?: string } } {
  return (rig.core.getTwin(identity).reported.config ?? {}) as never;
}

describe('translator module against the local edgeHub', () => {
  it('delivers field messages in envelopes and reports its effective settings', async () => {
    await publish(0, 50);
    await until(() => new Set(delivered()).size === 50, '50 records upstream');
    await until(() => reportedConfig().status === 'ok', 'reported config');
    expect(reportedConfig().effective?.transport).toBe('raw-mqtt');
  });

  it('answers getStats, flush and resetStats', async () => {
    const stats = await method('getStats');
    expect(stats.status).toBe(200);
    expect(stats.payload).toMatchObject({ transport: 'raw-mqtt', outputName: 'output1', sentRecords: 50 });
    expect((await method('flush')).status).toBe(200);
    expect((await method('resetStats')).status).toBe(200);
    expect((await method('getStats')).payload).toMatchObject({ sentRecords: 0 });
  });

  it('serves Prometheus metrics', async () => {
    const res = await fetch(`http://127.0.0.1:${mod.boundMetricsPort}/metrics`);
    const text = await res.text();
    expect(text).toMatch(
      /translator_messages_sent_total\{iothub="[^"]+",edge_device="edge-test",module="translator"\} 50/,
    );
  });

  it('rejects an invalid desired patch and keeps running with the last good config', async () => {
    rig.core.updateDesired(identity, { batch: { maxMessages: 0 }, transport: 'carrier-pigeon' });
    await until(() => reportedConfig().status === 'rejected', 'rejection reported');
    expect(reportedConfig().error).toMatch(
      /twin\.batch\.maxMessages.*twin\.transport|twin\.transport.*twin\.batch\.maxMessages/,
    );
    await publish(50, 5);
    await until(() => new Set(delivered()).size === 55, '55 records upstream');
  });

  it('switches transport live from a desired patch without losing messages', async () => {
    // Clear the rejected fields and switch to the SDK in one patch.
    rig.core.updateDesired(identity, { batch: null, transport: 'sdk-mqtt' });
    await until(
      () => reportedConfig().effective?.transport === 'sdk-mqtt',
      'transport switch reported',
      20_000,
    );
    expect(reportedConfig().status).toBe('ok');
    await publish(55, 10);
    await until(() => new Set(delivered()).size === 65, '65 records upstream', 20_000);
    const stats = await method('getStats');
    expect(stats.payload).toMatchObject({ transport: 'sdk-mqtt' });
  });
});
