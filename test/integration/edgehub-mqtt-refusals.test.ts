import { connect as netConnect } from 'node:net';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreFullError } from '../../emulator/edgehub/contracts.js';
import { createSasToken } from '../../modules/common/index.js';
import { DEVICE_ID, type Rig, startRig, until } from './edgehub-mqtt-helpers.js';

// Raw MQTT.js over TLS, so the CONNACK return code can be read (the SDK hides it).
describe('edgeHub MQTT endpoint refusals', () => {
  let rig: Rig;
  const open: MqttClient[] = [];

  beforeAll(async () => {
    rig = await startRig(['translator', 'other']);
  });

  afterAll(async () => {
    await Promise.all(open.map((c) => c.endAsync(true).catch(() => undefined)));
    await rig?.close();
  });

  function key(moduleId: string): string {
    const record = rig.registry.get({ deviceId: DEVICE_ID, moduleId });
    if (record === undefined) throw new Error('not registered');
    return record.primaryKey;
  }

  function token(moduleId: string, opts: { key?: string; expiry?: number; host?: string } = {}): string {
    const host = opts.host ?? rig.registry.hubHostName;
    return createSasToken(
      `${host}/devices/${DEVICE_ID}/modules/${moduleId}`,
      opts.key ?? key(moduleId),
      opts.expiry ?? Math.floor(Date.now() / 1000) + 3600,
    );
  }

  function options(moduleId: string, password: string): IClientOptions {
    return {
      protocol: 'mqtts',
      host: '127.0.0.1',
      port: rig.endpoint.port,
      servername: 'localhost',
      ca: rig.certs.caPem,
      protocolVersion: 4,
      clientId: `${DEVICE_ID}/${moduleId}`,
      username: `${rig.registry.hubHostName}/${DEVICE_ID}/${moduleId}/?api-version=2021-04-12`,
      password,
      reconnectPeriod: 0,
      connectTimeout: 5_000,
      clean: false,
    };
  }

  /** Connects and returns the CONNACK return code (0 = accepted). */
  async function connackCode(opts: IClientOptions): Promise<number> {
    const client = mqtt.connect(opts);
    open.push(client);
    return await new Promise<number>((resolve, reject) => {
      client.once('connect', () => resolve(0));
      client.once('error', (err) => {
        const code = (err as { code?: unknown }).code;
        if (typeof code === 'number') resolve(code);
        else reject(err);
      });
    });
  }

  async function connected(moduleId: string): Promise<MqttClient> {
    const client = await mqtt.connectAsync(options(moduleId, token(moduleId)));
    open.push(client);
    return client;
  }

  it('accepts a valid token (control)', async () => {
    expect(await connackCode(options('translator', token('translator')))).toBe(0);
  });

  it('refuses a token signed with the wrong key: 4', async () => {
    const wrong = Buffer.alloc(32, 7).toString('base64');
    expect(await connackCode(options('translator', token('translator', { key: wrong })))).toBe(4);
  });

  it('refuses an expired token: 4', async () => {
    const expired = token('translator', { expiry: Math.floor(Date.now() / 1000) - 10 });
    expect(await connackCode(options('translator', expired))).toBe(4);
  });

  it('refuses a malformed token: 4', async () => {
    expect(await connackCode(options('translator', 'not a token'))).toBe(4);
  });

  it("refuses another module's token: 5", async () => {
    expect(await connackCode(options('translator', token('other')))).toBe(5);
  });

  it('refuses an unknown identity: 5', async () => {
    const opts = options('ghost', token('translator'));
    expect(await connackCode(opts)).toBe(5);
  });

  it('counts refusals by kind', () => {
    expect(rig.endpoint.stats.refused.badCredentials).toBeGreaterThanOrEqual(3);
    expect(rig.endpoint.stats.refused.notAuthorized).toBeGreaterThanOrEqual(2);
  });

  it('accepts a token signed for the gateway host form', async () => {
    expect(await connackCode(options('other', token('other', { host: 'localhost' })))).toBe(0);
  });

  it('refuses plain TCP on the TLS port (no CONNACK ever comes back)', async () => {
    const socket = netConnect(rig.endpoint.port, '127.0.0.1');
    const received: Buffer[] = [];
    socket.on('data', (d: Buffer) => received.push(d));
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    // A well-formed MQTT 3.1.1 CONNECT (clientId "x", clean session, keepalive 60).
    socket.write(Buffer.from([0x10, 13, 0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 2, 0, 60, 0, 1, 0x78]));
    await new Promise<void>((resolve) => {
      socket.once('close', () => resolve());
      socket.once('error', () => resolve());
    });
    // Whatever came back (a TLS alert, or nothing) is not an MQTT CONNACK (0x20).
    expect(received.some((b) => b[0] === 0x20)).toBe(false);
    expect(rig.endpoint.stats.tlsErrors).toBeGreaterThanOrEqual(1);
  });

  it("refuses subscriptions to another module's topics (SUBACK 128) and grants its own", async () => {
    const client = await connected('translator');
    // MQTT.js turns a 128 into an error; read the SUBACK itself.
    const suback = new Promise<number[]>((resolve) =>
      client.on('packetreceive', (packet) => {
        if (packet.cmd === 'suback') resolve(packet.granted as number[]);
      }),
    );
    client.subscribe(
      {
        [`devices/${DEVICE_ID}/modules/other/inputs/#`]: { qos: 1 },
        '#': { qos: 0 },
        [`devices/${DEVICE_ID}/modules/translator/inputs/#`]: { qos: 1 },
      },
      () => undefined,
    );
    expect(await suback).toEqual([128, 128, 1]);
    expect(rig.endpoint.subscriptionsOf({ deviceId: DEVICE_ID, moduleId: 'translator' })).toEqual(['inputs']);
    await client.endAsync();
  });

  it('never forwards a publish between clients', async () => {
    const listener = await connected('other');
    const got: string[] = [];
    listener.on('message', (topic) => got.push(topic));
    await listener.subscribeAsync(`devices/${DEVICE_ID}/modules/other/inputs/#`, { qos: 1 });
    const sender = await connected('translator');
    await sender.publishAsync(`devices/${DEVICE_ID}/modules/translator/messages/events/a=1`, 'x', { qos: 1 });
    // Publishing onto another module's input topic is refused: the sender is dropped.
    const closed = new Promise<void>((resolve) => sender.once('close', () => resolve()));
    sender.publish(`devices/${DEVICE_ID}/modules/other/inputs/input1/`, 'evil', { qos: 1 });
    await closed;
    await new Promise((r) => setTimeout(r, 200));
    expect(got).toEqual([]);
    await listener.endAsync();
  });

  it('a store refusal gets no PUBACK and drops the connection; it is counted', async () => {
    const client = await connected('translator');
    const before = rig.intake.messages.length;
    rig.intake.refuseWith = new StoreFullError('store full');
    try {
      const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
      let acked = false;
      client.publish(
        `devices/${DEVICE_ID}/modules/translator/messages/events/`,
        'full',
        { qos: 1 },
        (err) => {
          if (err === undefined || err === null) acked = true;
        },
      );
      await closed;
      expect(acked).toBe(false);
      expect(rig.intake.messages.length).toBe(before);
      expect(rig.endpoint.stats.refusedMessageDisconnects).toBe(1);
    } finally {
      rig.intake.refuseWith = undefined;
    }
  });

  it('a new connection for the same identity replaces the old one', async () => {
    const first = await connected('translator');
    const firstClosed = new Promise<void>((resolve) => first.once('close', () => resolve()));
    const second = await connected('translator');
    await firstClosed;
    await until(
      () => rig.core.isConnected({ deviceId: DEVICE_ID, moduleId: 'translator' }),
      'second attached',
    );
    expect(second.connected).toBe(true);
    await second.endAsync();
    await until(() => !rig.core.isConnected({ deviceId: DEVICE_ID, moduleId: 'translator' }), 'detached');
  });
});
