import { Message, ModuleClient, type Twin } from 'azure-iot-device';
import { Mqtt } from 'azure-iot-device-mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreFullError } from '../../emulator/edgehub/contracts.js';
import { DEVICE_ID, type Rig, startRig, until } from './edgehub-mqtt-helpers.js';

// A real, unmodified ModuleClient.fromEnvironment(Mqtt) against the runtime's MQTT head.
describe('edgeHub MQTT endpoint with the real azure-iot-device-mqtt client', () => {
  let rig: Rig;
  let client: ModuleClient;
  const identity = { deviceId: DEVICE_ID, moduleId: 'translator' };

  beforeAll(async () => {
    rig = await startRig(['translator', 'other']);
    const saved = { cs: process.env.EdgeHubConnectionString, ca: process.env.EdgeModuleCACertificateFile };
    process.env.EdgeHubConnectionString = rig.connectionString('translator');
    process.env.EdgeModuleCACertificateFile = rig.certs.caFile;
    try {
      client = await ModuleClient.fromEnvironment(Mqtt);
    } finally {
      restore('EdgeHubConnectionString', saved.cs);
      restore('EdgeModuleCACertificateFile', saved.ca);
    }
    await client.open();
  });

  afterAll(async () => {
    await client?.close();
    await rig?.close();
  });

  it('sendOutputEvent arrives at the intake with identity, output and properties', async () => {
    const msg = new Message(JSON.stringify({ perf: { sid: 's', seq: 1 } }));
    msg.properties.add('batch', 'true');
    msg.properties.add('odd key/é', 'a&b=c/d');
    msg.messageId = 'mid-1';
    msg.correlationId = 'cid-1';
    msg.contentType = 'application/json';
    msg.contentEncoding = 'utf-8';
    const before = Date.now();
    await client.sendOutputEvent('output1', msg);
    // PUBACK came after accept() resolved, so the message is already recorded.
    expect(rig.intake.messages).toHaveLength(1);
    const got = rig.intake.messages[0];
    expect(got?.body.toString()).toBe(JSON.stringify({ perf: { sid: 's', seq: 1 } }));
    expect(got?.properties).toEqual({ batch: 'true', 'odd key/é': 'a&b=c/d' });
    expect(got?.system).toMatchObject({
      outputName: 'output1',
      messageId: 'mid-1',
      correlationId: 'cid-1',
      contentType: 'application/json',
      contentEncoding: 'utf-8',
      connectionDeviceId: DEVICE_ID,
      connectionModuleId: 'translator',
    });
    expect(got?.system.receivedAtMs).toBeGreaterThanOrEqual(before);
    expect(got?.id).toMatch(/^[0-9a-z]+-\d+$/);
  });

  it('after a store refusal the SDK reconnects and re-sends: the send still succeeds', async () => {
    const start = rig.intake.messages.length;
    rig.intake.refuseWith = new StoreFullError('store full');
    setTimeout(() => {
      rig.intake.refuseWith = undefined;
    }, 300);
    await client.sendOutputEvent('output1', new Message('retry me'));
    expect(rig.endpoint.stats.refusedMessageDisconnects).toBeGreaterThanOrEqual(1);
    expect(rig.intake.messages.slice(start).map((m) => m.body.toString())).toEqual(['retry me']);
  });

  it('gives every message a distinct runtime id, in order', async () => {
    const start = rig.intake.messages.length;
    await Promise.all(
      Array.from({ length: 50 }, (_, i) => client.sendOutputEvent('output1', new Message(`m${i}`))),
    );
    const ids = rig.intake.messages.slice(start).map((m) => m.id);
    expect(new Set(ids).size).toBe(50);
    expect([...ids].sort()).toEqual(ids);
    // Concurrent sends still reach the intake in the order they were published.
    expect(rig.intake.messages.slice(start).map((m) => m.body.toString())).toEqual(
      Array.from({ length: 50 }, (_, i) => `m${i}`),
    );
  });

  it('deliver() reaches on("inputMessage") and resolves after the module completed it', async () => {
    const seen: string[] = [];
    client.on('inputMessage', (input, msg) => {
      seen.push(`${input}:${msg.data.toString()}:${msg.properties.getValue('k')}:${msg.messageId}`);
      client.complete(msg, () => undefined);
    });
    await until(() => rig.endpoint.subscriptionsOf(identity).includes('inputs'), 'inputs subscription');
    await rig.core.deliver('translator', 'input1', {
      id: 'x-1',
      body: Buffer.from('hello'),
      properties: { k: 'v w' },
      system: {
        connectionDeviceId: DEVICE_ID,
        connectionModuleId: 'other',
        receivedAtMs: Date.now(),
        messageId: 'm9',
      },
    });
    expect(seen).toEqual(['input1:hello:v w:m9']);
    expect(rig.endpoint.stats.inputsDelivered).toBe(1);
  });

  it('deliver() rejects for a module that is not connected', async () => {
    await expect(
      rig.core.deliver('other', 'input1', {
        id: 'x-2',
        body: Buffer.from('x'),
        properties: {},
        system: { connectionDeviceId: DEVICE_ID, receivedAtMs: 0 },
      }),
    ).rejects.toMatchObject({ code: 'E_MODULE_NOT_CONNECTED' });
  });

  it('a direct method invoked through the core gets the module response', async () => {
    client.onMethod('echo', (request, response) => {
      // The SDK's typings mark both optional; it always passes them to a method handler.
      if (request === undefined || response === undefined) throw new Error('no request/response');
      response.send(201, { echoed: request.payload }, () => undefined);
    });
    await until(() => rig.endpoint.subscriptionsOf(identity).includes('methods'), 'methods subscription');
    const result = await rig.core.invokeMethod(identity, 'echo', { n: 42 }, 5_000);
    expect(result).toEqual({ status: 201, payload: { echoed: { n: 42 } } });
  });

  it('a direct method nobody answers times out', async () => {
    await expect(rig.core.invokeMethod(identity, 'silent', {}, 300)).rejects.toMatchObject({
      code: 'E_METHOD_TIMEOUT',
      status: 504,
    });
  });

  it('twin: get, desired patch push, reported patch lands in the registry', async () => {
    rig.core.updateDesired(identity, { batch: { maxMessages: 100 } });
    const twin: Twin = await client.getTwin();
    expect(twin.properties.desired.batch).toEqual({ maxMessages: 100 });
    expect(twin.properties.desired.$version).toBe(2);

    const patches: Record<string, unknown>[] = [];
    twin.on('properties.desired', (delta: Record<string, unknown>) => patches.push(delta));
    await until(
      () => rig.endpoint.subscriptionsOf(identity).includes('twin-desired'),
      'desired subscription',
    );
    const version = rig.core.updateDesired(identity, { batch: { maxWaitTimeInMs: 50 }, extra: 1 });
    expect(version).toBe(3);
    await until(() => patches.some((p) => p.$version === 3), 'desired patch at the module');
    expect(patches.find((p) => p.$version === 3)).toMatchObject({ batch: { maxWaitTimeInMs: 50 }, extra: 1 });
    expect(twin.properties.desired.batch).toEqual({ maxMessages: 100, maxWaitTimeInMs: 50 });

    await new Promise<void>((resolve, reject) =>
      twin.properties.reported.update({ stats: { sent: 5 }, gone: null }, (err?: Error) =>
        err ? reject(err) : resolve(),
      ),
    );
    expect(rig.registry.getTwin(identity).reported).toMatchObject({ stats: { sent: 5 }, $version: 2 });
    expect(rig.registry.getTwin(identity).reported).not.toHaveProperty('gone');
  });

  it('inputs, methods and desired patches keep working after the SDK reconnects ', async () => {
    const disconnectsBefore = rig.endpoint.stats.refusedMessageDisconnects;
    rig.intake.refuseWith = new StoreFullError('store full');
    setTimeout(() => {
      rig.intake.refuseWith = undefined;
    }, 200);
    await client.sendOutputEvent('output1', new Message('forces a reconnect'));
    expect(rig.endpoint.stats.refusedMessageDisconnects).toBeGreaterThan(disconnectsBefore);
    await until(() => rig.core.isConnected(identity), 'reconnected');

    const result = await rig.core.invokeMethod(identity, 'echo', 'again', 5_000);
    expect(result).toEqual({ status: 201, payload: { echoed: 'again' } });
    const delivered = rig.endpoint.stats.inputsDelivered;
    await rig.core.deliver('translator', 'input2', {
      id: 'x-3',
      body: Buffer.from('after reconnect'),
      properties: {},
      system: { connectionDeviceId: DEVICE_ID, receivedAtMs: Date.now() },
    });
    expect(rig.endpoint.stats.inputsDelivered).toBe(delivered + 1);
  });
});

function restore(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}
