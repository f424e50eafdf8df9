import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EdgeMessage } from '../../emulator/edgehub/message.js';
import { createSasToken } from '../../modules/common/index.js';
import { DEVICE_ID, type Rig, startRig, until } from './edgehub-mqtt-helpers.js';

// Raw MQTT.js: persistent sessions and the exact wire format of inputs and twin responses.
describe('edgeHub MQTT endpoint sessions and wire format', () => {
  let rig: Rig;
  const open: MqttClient[] = [];
  const identity = { deviceId: DEVICE_ID, moduleId: 'raw' };
  const inputsTopic = `devices/${DEVICE_ID}/modules/raw/inputs/#`;

  beforeAll(async () => {
    rig = await startRig(['raw']);
  });

  afterAll(async () => {
    await Promise.all(open.map((c) => c.endAsync(true).catch(() => undefined)));
    await rig?.close();
  });

  async function connect(clean: boolean): Promise<MqttClient> {
    const record = rig.registry.get(identity);
    if (record === undefined) throw new Error('not registered');
    const options: IClientOptions = {
      protocol: 'mqtts',
      host: '127.0.0.1',
      port: rig.endpoint.port,
      servername: 'localhost',
      ca: rig.certs.caPem,
      protocolVersion: 4,
      clientId: `${DEVICE_ID}/raw`,
      username: `${rig.registry.hubHostName}/${DEVICE_ID}/raw/?api-version=2021-04-12`,
      password: createSasToken(
        `${rig.registry.hubHostName}/devices/${DEVICE_ID}/modules/raw`,
        record.primaryKey,
        Math.floor(Date.now() / 1000) + 600,
      ),
      reconnectPeriod: 0,
      clean,
    };
    const client = await mqtt.connectAsync(options);
    open.push(client);
    return client;
  }

  const message = (body: string): EdgeMessage => ({
    id: `t-${body}`,
    body: Buffer.from(body),
    properties: { 'a b': 'c&d', plain: 'x' },
    system: {
      connectionDeviceId: DEVICE_ID,
      connectionModuleId: 'sim',
      receivedAtMs: 0,
      messageId: 'm1',
      contentType: 'application/json',
    },
  });

  it('publishes inputs with a url-encoded property segment and resolves on PUBACK', async () => {
    const client = await connect(false);
    const got: { topic: string; qos: number }[] = [];
    client.on('message', (topic, _payload, packet) => got.push({ topic, qos: packet.qos }));
    await client.subscribeAsync(inputsTopic, { qos: 1 });
    await rig.core.deliver('raw', 'input1', message('one'));
    expect(got).toEqual([
      {
        topic: `devices/${DEVICE_ID}/modules/raw/inputs/input1/%24.mid=m1&%24.ct=application%2Fjson&%24.cdid=${DEVICE_ID}&%24.cmid=sim&a%20b=c%26d&plain=x`,
        qos: 1,
      },
    ]);
    await client.endAsync();
    await until(() => !rig.core.isConnected(identity), 'detached');
  });

  it('keeps subscriptions of a clean:false session across reconnects, drops them on clean:true', async () => {
    const again = await connect(false);
    // CONNACK can reach the client before the hub has attached the session: wait for the attach.
    await until(() => rig.core.isConnected(identity), 'attached');
    const got: string[] = [];
    again.on('message', (_t, payload) => got.push(payload.toString()));
    // No SUBSCRIBE this time: the session still has the inputs subscription.
    await rig.core.deliver('raw', 'input1', message('two'));
    expect(got).toEqual(['two']);
    await again.endAsync();
    await until(() => !rig.core.isConnected(identity), 'detached');

    const clean = await connect(true);
    await until(() => rig.core.isConnected(identity), 'attached');
    await expect(rig.core.deliver('raw', 'input1', message('three'))).rejects.toMatchObject({
      code: 'E_MODULE_NOT_LISTENING',
    });
    await clean.endAsync();
  });

  it('answers twin requests on $iothub/twin/res with the SDK-expected shapes', async () => {
    const client = await connect(true);
    const responses: { topic: string; body: string }[] = [];
    client.on('message', (topic, payload) => responses.push({ topic, body: payload.toString() }));
    await client.subscribeAsync('$iothub/twin/res/#', { qos: 0 });
    await client.publishAsync('$iothub/twin/GET/?$rid=abc', ' ');
    await client.publishAsync('$iothub/twin/PATCH/properties/reported/?$rid=def', '{"x":1}');
    await client.publishAsync('$iothub/twin/PATCH/properties/reported/?$rid=ghi', 'not json');
    await until(() => responses.length === 3, 'three twin responses');
    expect(responses[0]?.topic).toBe('$iothub/twin/res/200/?$rid=abc');
    expect(JSON.parse(responses[0]?.body ?? '')).toEqual({
      desired: { $version: 1 },
      reported: { $version: 1 },
    });
    expect(responses[1]).toEqual({ topic: '$iothub/twin/res/204/?$rid=def&$version=2', body: '' });
    expect(responses[2]?.topic).toBe('$iothub/twin/res/400/?$rid=ghi');
    expect(JSON.parse(responses[2]?.body ?? '')).toHaveProperty('errorCode');
    await client.endAsync();
  });
});
