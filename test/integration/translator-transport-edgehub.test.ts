import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MqttEndpoint } from '../../emulator/edgehub/mqtt-endpoint.js';
import { createLogger } from '../../modules/common/index.js';
import type { ControllableTransport } from '../../modules/translator/transports/control-channel.js';
import { RawMqttTransport } from '../../modules/translator/transports/raw-mqtt.js';
import { SdkTransport } from '../../modules/translator/transports/sdk.js';
import type { UpstreamMessage } from '../../modules/translator/upstream-transport.js';
import { DEVICE_ID as AMQP_DEVICE_ID, type AmqpRig, startAmqpRig } from './edgehub-amqp-helpers.js';
import { DEVICE_ID, type Rig, startRig, until } from './edgehub-mqtt-helpers.js';

const logger = createLogger('translator-transport-test', { level: process.env.TEST_LOG_LEVEL ?? 'silent' });

function message(i: number): UpstreamMessage {
  return {
    body: gzipSync(Buffer.from(JSON.stringify({ v: 1, records: [{ i }] }))),
    properties: {
      'edgeperf-envelope': '1',
      'edgeperf-count': '1',
      'edgeperf-encoding': 'gzip',
      'odd key/é': 'a&b=c',
    },
    contentType: 'application/json',
    contentEncoding: 'gzip',
    messageId: `m-${i}`,
  };
}

interface Target {
  readonly intakeMessages: () => readonly {
    body: Buffer;
    properties: Record<string, string>;
    system: Record<string, unknown>;
  }[];
  readonly core: MqttRigCore;
  readonly connectionString: (moduleId: string) => string;
  readonly caPem: string;
  readonly deviceId: string;
}
type MqttRigCore = Rig['core'] | AmqpRig['core'];

// One suite per transport: the same behaviour is expected of all three.
function suite(name: string, target: () => Target, make: (cs: string, ca: string) => ControllableTransport) {
  describe(`${name} to the local edgeHub`, () => {
    const moduleId = `translator-${name}`;
    let transport: ControllableTransport;

    beforeAll(async () => {
      const t = target();
      transport = make(t.connectionString(moduleId), t.caPem);
      await transport.connect();
    });
    afterAll(async () => {
      await transport?.close();
    });

    it('sends output events with properties, content type and encoding exactly as the SDK does', async () => {
      const t = target();
      const before = t.intakeMessages().length;
      await Promise.all(Array.from({ length: 20 }, (_, i) => transport.send('output1', message(i))));
      const got = t
        .intakeMessages()
        .slice(before)
        .filter((m) => m.system.connectionModuleId === moduleId);
      expect(got).toHaveLength(20);
      const first = got.find((m) => m.system.messageId === 'm-0');
      expect(first).toBeDefined();
      if (!first) return;
      expect(first.system.outputName).toBe('output1');
      expect(first.system.contentType).toBe('application/json');
      expect(first.system.contentEncoding).toBe('gzip');
      expect(first.properties['edgeperf-count']).toBe('1');
      expect(first.properties['odd key/é']).toBe('a&b=c');
      expect(JSON.parse(gunzipSync(first.body).toString())).toEqual({ v: 1, records: [{ i: 0 }] });
    });

    it('serves direct methods, reads the twin, receives desired patches and writes reported properties', async () => {
      const t = target();
      const identity = { deviceId: t.deviceId, moduleId };
      transport.control.onMethod('getStats', async (payload) => ({
        status: 200,
        payload: { echo: payload },
      }));
      const patches: Record<string, unknown>[] = [];
      transport.control.onDesiredPatch((p) => patches.push(p));
      const twin = await transport.control.getTwin();
      expect(typeof twin.desired.$version).toBe('number');
      await until(() => t.core.isConnected(identity), 'module link');
      const result = await waitForMethod(() => t.core.invokeMethod(identity, 'getStats', { x: 1 }, 5000));
      expect(result.status).toBe(200);
      expect(result.payload).toEqual({ echo: { x: 1 } });
      // Give the twin subscription a moment, then push a patch from the "cloud".
      await new Promise((r) => setTimeout(r, 300));
      t.core.updateDesired(identity, { batch: { maxMessages: 7 } });
      await until(
        () => patches.some((p) => (p.batch as { maxMessages?: number } | undefined)?.maxMessages === 7),
        'desired patch',
      );
      await transport.control.patchReported({ config: { status: 'ok' } });
      expect(t.core.getTwin(identity).reported).toMatchObject({ config: { status: 'ok' } });
    });
  });
}

async function waitForMethod<T>(call: () => Promise<T>): Promise<T> {
  // The module subscribes to methods asynchronously; retry 404s briefly.
  const deadline = Date.now() + 5000;
  for (;;) {
    try {
      return await call();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

let mqttRig: Rig;
let amqpRig: AmqpRig;
const modules = ['translator-sdk-mqtt', 'translator-raw-mqtt', 'translator-raw-reconnect'];

beforeAll(async () => {
  mqttRig = await startRig(modules);
  amqpRig = await startAmqpRig(['translator-sdk-amqp']);
});
afterAll(async () => {
  await mqttRig?.close();
  await amqpRig?.close();
});

const mqttTarget = (): Target => ({
  intakeMessages: () => mqttRig.intake.messages as never,
  core: mqttRig.core,
  connectionString: (m) => mqttRig.connectionString(m),
  caPem: mqttRig.certs.caPem,
  deviceId: DEVICE_ID,
});
const amqpTarget = (): Target => ({
  intakeMessages: () => amqpRig.intake.messages as never,
  core: amqpRig.core,
  connectionString: (m) => amqpRig.connectionString(m),
  caPem: amqpRig.certs.caPem,
  deviceId: AMQP_DEVICE_ID,
});

suite(
  'sdk-mqtt',
  mqttTarget,
  (cs, ca) => new SdkTransport({ protocol: 'mqtt', connectionString: cs, ca, logger }),
);
suite('raw-mqtt', mqttTarget, (cs, ca) => new RawMqttTransport({ connectionString: cs, ca, logger }));
suite(
  'sdk-amqp',
  amqpTarget,
  (cs, ca) => new SdkTransport({ protocol: 'amqp', connectionString: cs, ca, logger }),
);

describe('raw-mqtt connection upkeep', () => {
  it('renews its SAS token before expiry by reconnecting, without failing sends', async () => {
    const transport = new RawMqttTransport({
      connectionString: mqttRig.connectionString('translator-raw-reconnect'),
      ca: mqttRig.certs.caPem,
      // Renew 1 s after connecting: the token would expire 2 s later.
      tokenValidSecs: 3,
      tokenRenewalMarginSecs: 2,
      logger,
    });
    await transport.connect();
    try {
      const started = Date.now();
      let i = 1000;
      while (Date.now() - started < 2500) {
        await transport.send('output1', message(i++));
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(transport.connectCount).toBeGreaterThanOrEqual(2);
      const ids = new Set(mqttRig.intake.messages.map((m) => m.system.messageId));
      for (let k = 1000; k < i; k++) expect(ids.has(`m-${k}`)).toBe(true);
    } finally {
      await transport.close();
    }
  });

  it('holds sends while edgeHub is down and delivers them after it comes back', async () => {
    const moduleId = 'translator-raw-reconnect';
    const transport = new RawMqttTransport({
      connectionString: mqttRig.connectionString(moduleId),
      ca: mqttRig.certs.caPem,
      reconnectMinDelayInMs: 50,
      reconnectMaxDelayInMs: 200,
      offlineWaitInMs: 10_000,
      logger,
    });
    await transport.connect();
    try {
      await transport.send('output1', message(100));
      const port = mqttRig.endpoint.port;
      await mqttRig.endpoint.stop();
      await until(() => !transport.connected, 'disconnect noticed');
      const pending = transport.send('output1', message(101));
      const settled: string[] = [];
      pending.then(
        () => settled.push('resolved'),
        () => settled.push('rejected'),
      );
      await new Promise((r) => setTimeout(r, 300));
      expect(settled).toEqual([]);
      const restarted = new MqttEndpoint({
        core: mqttRig.core,
        certPem: mqttRig.certs.certPem,
        keyPem: mqttRig.certs.keyPem,
        port,
        gatewayHostName: 'localhost',
        logger,
      });
      await restarted.start();
      try {
        await pending;
        expect(
          mqttRig.intake.messages.some(
            (m) => m.system.connectionModuleId === moduleId && m.system.messageId === 'm-101',
          ),
        ).toBe(true);
      } finally {
        await transport.close();
        await restarted.stop();
      }
    } finally {
      await transport.close();
    }
  });

  it('rejects a send when edgeHub stays away longer than offlineWaitInMs', async () => {
    const transport = new RawMqttTransport({
      connectionString: 'HostName=hub;DeviceId=d;ModuleId=m;SharedAccessKey=a2V5;GatewayHostName=localhost:1',
      ca: mqttRig.certs.caPem,
      offlineWaitInMs: 100,
      logger,
    });
    await expect(transport.connect()).rejects.toThrow(/cannot connect to edgeHub at localhost:1/);
    await expect(transport.send('output1', message(1))).rejects.toThrow(/unreachable for 100 ms/);
    await transport.close();
  });

  it('reports a refused key clearly', async () => {
    const cs = mqttRig
      .connectionString('translator-raw-mqtt')
      .replace(/SharedAccessKey=[^;]+/, `SharedAccessKey=${Buffer.alloc(32, 9).toString('base64')}`);
    const transport = new RawMqttTransport({ connectionString: cs, ca: mqttRig.certs.caPem, logger });
    await expect(transport.connect()).rejects.toThrow(/refused the SAS token|Not authorized|cannot connect/);
    await transport.close();
  });
});
