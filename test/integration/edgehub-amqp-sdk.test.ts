import { Message, type ModuleClient } from 'azure-iot-device';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreFullError } from '../../emulator/edgehub/contracts.js';
import type { EdgeMessage } from '../../emulator/edgehub/message.js';
import { type AmqpRig, DEVICE_ID, startAmqpRig, until } from './edgehub-amqp-helpers.js';

// A real, unmodified ModuleClient.fromEnvironment(Amqp) against the runtime's AMQP head.
describe('edgeHub AMQP endpoint with the real azure-iot-device-amqp client', () => {
  let rig: AmqpRig;
  let client: ModuleClient;
  const identity = { deviceId: DEVICE_ID, moduleId: 'translator' };

  beforeAll(async () => {
    rig = await startAmqpRig(['translator', 'other']);
    client = await rig.moduleClient(rig.connectionString('translator'));
    await client.open();
  });

  afterAll(async () => {
    await client?.close();
    await rig?.close();
  });

  it('connects over amqps with a CBS token and attaches to the core', () => {
    expect(rig.core.isConnected(identity)).toBe(true);
    expect(rig.endpoint.url).toBe(`amqps://localhost:${rig.endpoint.port}`);
    expect(rig.endpoint.connectionCount).toBe(1);
  });

  it('sendOutputEvent arrives at the intake with identity, output and properties', async () => {
    const msg = new Message(JSON.stringify({ perf: { sid: 's', seq: 1 } }));
    msg.properties.add('batch', 'true');
    msg.properties.add('odd key/é', 'a&b=c/d');
    msg.messageId = 'mid-1';
    msg.correlationId = '8c7a3f0e-5b1d-4c2a-9e6f-1a2b3c4d5e6f';
    msg.contentType = 'application/json';
    msg.contentEncoding = 'utf-8';
    const before = Date.now();
    await client.sendOutputEvent('output1', msg);
    // The delivery was accepted only after the intake stored it.
    expect(rig.intake.messages).toHaveLength(1);
    const got = rig.intake.messages[0];
    expect(got?.body.toString()).toBe(JSON.stringify({ perf: { sid: 's', seq: 1 } }));
    expect(got?.properties).toEqual({ batch: 'true', 'odd key/é': 'a&b=c/d' });
    expect(got?.system).toMatchObject({
      outputName: 'output1',
      messageId: 'mid-1',
      // The SDK sends uuid-shaped ids as AMQP uuids; they come back as the same text.
      correlationId: '8c7a3f0e-5b1d-4c2a-9e6f-1a2b3c4d5e6f',
      contentType: 'application/json',
      contentEncoding: 'utf-8',
      connectionDeviceId: DEVICE_ID,
      connectionModuleId: 'translator',
    });
    expect(got?.system.receivedAtMs).toBeGreaterThanOrEqual(before);
  });

  it('a full store rejects the delivery: the SDK reports the error instead of a success', async () => {
    const start = rig.intake.messages.length;
    rig.intake.refuseWith = new StoreFullError('store full');
    try {
      const err = await client.sendOutputEvent('output1', new Message('refused')).then(
        () => undefined,
        (e: unknown) => e as { name?: string; amqpError?: { condition?: string; description?: string } },
      );
      // amqp:resource-limit-exceeded is what the SDK maps to IotHubQuotaExceededError.
      expect(err?.name).toBe('IotHubQuotaExceededError');
      expect(err?.amqpError).toMatchObject({
        condition: 'amqp:resource-limit-exceeded',
        description: 'store full',
      });
    } finally {
      rig.intake.refuseWith = undefined;
    }
    expect(rig.intake.messages.length).toBe(start);
    await client.sendOutputEvent('output1', new Message('after'));
    expect(rig.intake.messages.at(-1)?.body.toString()).toBe('after');
  });

  it('an input delivered through the core reaches on("inputMessage") and resolves only after complete()', async () => {
    const received: { input: string; msg: Message }[] = [];
    client.on('inputMessage', (input: string, msg: Message) => {
      received.push({ input, msg });
    });
    const message: EdgeMessage = {
      id: 'x-1',
      body: Buffer.from('{"v":1}'),
      properties: { kind: 'test' },
      system: {
        messageId: 'in-1',
        contentType: 'application/json',
        connectionDeviceId: DEVICE_ID,
        connectionModuleId: 'other',
        receivedAtMs: Date.now(),
      },
    };
    // The input link attaches asynchronously after the listener is added.
    let delivered = false;
    const deliver = async (): Promise<void> => {
      for (;;) {
        try {
          await rig.core.deliver('translator', 'input1', message);
          delivered = true;
          return;
        } catch (err) {
          if ((err as { code?: string }).code !== 'E_MODULE_NOT_LISTENING') throw err;
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    };
    const delivery = deliver();
    await until(() => received.length === 1, 'the input message');
    await new Promise((r) => setTimeout(r, 150));
    expect(delivered).toBe(false);
    const first = received[0];
    expect(first?.input).toBe('input1');
    expect(first?.msg.getBytes().toString()).toBe('{"v":1}');
    expect(first?.msg.messageId).toBe('in-1');
    expect(first?.msg.contentType).toBe('application/json');
    expect(first?.msg.properties.getValue('kind')).toBe('test');
    await client.complete(first?.msg as Message);
    await delivery;
    expect(delivered).toBe(true);
    expect(rig.endpoint.stats.inputsDelivered).toBe(1);
  });

  it('an input the module rejects fails the delivery (store-and-forward keeps it)', async () => {
    // Removing the earlier listener would detach the input link; add one that rejects instead.
    client.on('inputMessage', (_input: string, msg: Message) => {
      if (msg.getBytes().toString() === 'nope') client.reject(msg).catch(() => undefined);
    });
    const message: EdgeMessage = {
      id: 'x-2',
      body: Buffer.from('nope'),
      properties: {},
      system: { connectionDeviceId: DEVICE_ID, connectionModuleId: 'other', receivedAtMs: Date.now() },
    };
    await expect(rig.core.deliver('translator', 'input1', message)).rejects.toMatchObject({
      code: 'E_INPUT_NOT_ACCEPTED',
    });
  });

  it('answers a direct method invoked through the core', async () => {
    client.onMethod('ping', (request, response) => {
      // The SDK's callback type marks both as optional; it always passes them.
      response?.send(201, { pong: request?.payload }).catch(() => undefined);
    });
    let result: { status: number; payload: unknown } | undefined;
    const deadline = Date.now() + 10_000;
    while (result === undefined) {
      try {
        result = await rig.core.invokeMethod(identity, 'ping', { n: 7 }, 5_000);
      } catch (err) {
        if ((err as { code?: string }).code !== 'E_MODULE_NOT_CONNECTED' || Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    expect(result).toEqual({ status: 201, payload: { pong: { n: 7 } } });
  });

  it('serves getTwin, pushes desired patches and stores reported patches', async () => {
    rig.core.updateDesired(identity, { rate: 1 });
    const twin = await client.getTwin();
    expect(twin.properties.desired).toMatchObject({
      rate: 1,
      $version: rig.registry.getTwin(identity).desired.$version,
    });
    const patches: Record<string, unknown>[] = [];
    twin.on('properties.desired', (patch: Record<string, unknown>) => patches.push(patch));
    // The SDK fires once with the current document, then once per pushed patch; it subscribes
    // asynchronously, so push until a patch with the new value arrives.
    let rate = 1;
    const versionOf = new Map<number, number>();
    const deadline = Date.now() + 10_000;
    while (!patches.some((p) => typeof p.rate === 'number' && p.rate > 1)) {
      if (Date.now() > deadline) throw new Error('no desired patch arrived');
      rate += 1;
      versionOf.set(rate, rig.core.updateDesired(identity, { rate }));
      await new Promise((r) => setTimeout(r, 100));
    }
    const pushed = patches.find((p) => typeof p.rate === 'number' && p.rate > 1);
    expect(pushed?.$version).toBe(versionOf.get(pushed?.rate as number));
    const reportedBefore = rig.registry.getTwin(identity).reported.$version;

    await new Promise<void>((resolve, reject) => {
      twin.properties.reported.update({ status: 'ok', nested: { a: 1 } }, (err?: Error) =>
        err ? reject(err) : resolve(),
      );
    });
    const stored = rig.registry.getTwin(identity).reported;
    expect(stored).toMatchObject({ status: 'ok', nested: { a: 1 }, $version: reportedBefore + 1 });
  });

  it('renews its token over CBS on the same connection and keeps sending past the first expiry', async () => {
    const other = await rig.moduleClient(rig.connectionString('other'));
    try {
      // Tokens valid 3 s, renewed 2 s early: a put-token every ~1 s on the open connection.
      // setOptions replaces the transport's options, so the CA fromEnvironment set must be repeated.
      await other.setOptions({
        ca: rig.certs.caPem,
        tokenRenewal: { tokenValidTimeInSeconds: 3, tokenRenewalMarginInSeconds: 2 },
      });
      await other.open();
      const refusedBefore = rig.endpoint.stats.refusedLinks + rig.endpoint.stats.refusedTokens;
      await new Promise((r) => setTimeout(r, 4_000));
      await other.sendOutputEvent('output1', new Message('still here'));
      const last = rig.intake.messages.at(-1);
      expect(last?.body.toString()).toBe('still here');
      expect(last?.system.connectionModuleId).toBe('other');
      expect(rig.endpoint.stats.refusedLinks + rig.endpoint.stats.refusedTokens).toBe(refusedBefore);
    } finally {
      await other.close();
    }
  });

  it('refuses a connection string with a wrong key', async () => {
    const good = rig.connectionString('other');
    const bad = good.replace(
      /SharedAccessKey=[^;]+/,
      `SharedAccessKey=${Buffer.alloc(32, 7).toString('base64')}`,
    );
    const intruder = await rig.moduleClient(bad);
    await expect(intruder.open()).rejects.toThrow(/Unauthorized|bad-signature/i);
    await intruder.close().catch(() => undefined);
    expect(rig.core.isConnected({ deviceId: DEVICE_ID, moduleId: 'other' })).toBe(false);
    expect(rig.endpoint.stats.refusedTokens).toBeGreaterThanOrEqual(1);
  });
});
