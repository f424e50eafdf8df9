import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { Connection, EventContext, Receiver, Message as RheaMessage, Sender } from 'rhea';
import rhea from 'rhea';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createSasToken } from '../../modules/common/index.js';
import { type AmqpRig, DEVICE_ID, startAmqpRig, until } from './edgehub-amqp-helpers.js';

// The CBS and link-authorization rules, driven by a bare rhea client so each refusal can be
// observed on the wire (status codes, link errors) rather than through the SDK's retries.

class LogCapture extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.lines.push(chunk.toString());
    done();
  }
}

interface CbsReply {
  status: number;
  description: string;
}

/** A raw AMQP client connection with a CBS link pair. */
class RawClient {
  private cbsSender: Sender | undefined;
  private readonly waiting = new Map<string, (reply: CbsReply) => void>();

  private constructor(readonly connection: Connection) {}

  static async connect(rig: AmqpRig): Promise<RawClient> {
    const container = rhea.create_container();
    const connection = container.connect({
      transport: 'tls',
      host: 'localhost',
      port: rig.endpoint.port,
      ca: rig.certs.caPem,
      servername: 'localhost',
      reconnect: false,
    } as Parameters<typeof container.connect>[0]);
    const client = new RawClient(connection);
    await new Promise<void>((resolve, reject) => {
      connection.once('connection_open', () => resolve());
      connection.once('disconnected', (ctx: EventContext) => reject(ctx.error ?? new Error('disconnected')));
    });
    const receiver = connection.open_receiver({ source: { address: '$cbs' } });
    receiver.on('message', (ctx: EventContext) => {
      const msg = ctx.message as RheaMessage;
      const id = String(msg.correlation_id);
      client.waiting.get(id)?.({
        status: Number(msg.application_properties?.['status-code']),
        description: String(msg.application_properties?.['status-description']),
      });
      client.waiting.delete(id);
    });
    client.cbsSender = connection.open_sender({ target: { address: '$cbs' } });
    await Promise.all([once(receiver, 'receiver_open'), once(client.cbsSender, 'sendable')]);
    return client;
  }

  putToken(token: string, audience: string): Promise<CbsReply> {
    const id = randomUUID();
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.cbsSender?.send({
        to: '$cbs',
        reply_to: 'cbs',
        message_id: id,
        application_properties: {
          operation: 'put-token',
          type: 'servicebus.windows.net:sastoken',
          name: audience,
        },
        body: token,
      });
    });
  }

  /** Opens a sender on `address`; resolves with the link error condition if the hub closes it. */
  async attachSender(address: string): Promise<{ sender: Sender; closed: Promise<string | undefined> }> {
    const sender = this.connection.open_sender({ target: { address } });
    const closed = new Promise<string | undefined>((resolve) => {
      sender.once('sender_close', (ctx: EventContext) => {
        const err = ctx.sender?.error as { condition?: string } | undefined;
        resolve(err?.condition);
      });
    });
    sender.on('sender_error', () => undefined);
    await once(sender, 'sender_open');
    return { sender, closed };
  }

  close(): void {
    this.connection.close();
  }
}

function once(emitter: Sender | Receiver, event: string): Promise<void> {
  return new Promise((resolve) => emitter.once(event, () => resolve()));
}

describe('edgeHub AMQP endpoint refusals', () => {
  let rig: AmqpRig;
  const logs = new LogCapture();
  const clients: RawClient[] = [];
  const host = (): string => rig.core.hubHostName;
  const resource = (moduleId: string): string => `${host()}/devices/${DEVICE_ID}/modules/${moduleId}`;
  const key = (moduleId: string): string => {
    const record = rig.registry.get({ deviceId: DEVICE_ID, moduleId });
    if (record === undefined) throw new Error(`no ${moduleId}`);
    return record.primaryKey;
  };
  const nowSecs = (): number => Math.floor(Date.now() / 1000);
  const connect = async (): Promise<RawClient> => {
    const c = await RawClient.connect(rig);
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    rig = await startAmqpRig(['translator', 'other'], pino({ level: 'debug' }, logs));
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });
  afterAll(async () => {
    await rig?.close();
  });

  it('answers 401 to an expired token and logs why without the signature', async () => {
    const c = await connect();
    const token = createSasToken(resource('translator'), key('translator'), nowSecs() - 10);
    const reply = await c.putToken(token, encodeURIComponent(resource('translator')));
    expect(reply.status).toBe(401);
    expect(reply.description).toMatch(/expired/);
    const signature = decodeURIComponent(/sig=([^&]+)/.exec(token)?.[1] ?? '');
    const text = logs.lines.join('');
    expect(text).toMatch(/put-token refused/);
    expect(text).toMatch(/"reason":"expired"/);
    expect(text).not.toContain(signature);
    expect(text).not.toContain(encodeURIComponent(signature));
    // And nothing may be attached for that identity.
    const { closed } = await c.attachSender(`/devices/${DEVICE_ID}/modules/translator/messages/events`);
    expect(await closed).toBe('amqp:unauthorized-access');
  });

  it('answers 401 to a token signed with the wrong key', async () => {
    const c = await connect();
    const token = createSasToken(resource('translator'), key('other'), nowSecs() + 3600);
    const reply = await c.putToken(token, encodeURIComponent(resource('translator')));
    expect(reply.status).toBe(401);
    expect(reply.description).toMatch(/bad-signature/);
  });

  it("refuses links on another module's address", async () => {
    const c = await connect();
    const token = createSasToken(resource('other'), key('other'), nowSecs() + 3600);
    expect((await c.putToken(token, encodeURIComponent(resource('other')))).status).toBe(200);
    const before = rig.intake.messages.length;
    const { closed } = await c.attachSender(`/devices/${DEVICE_ID}/modules/translator/messages/events`);
    expect(await closed).toBe('amqp:unauthorized-access');
    // Its own address works, and messages carry its own identity.
    const own = await c.attachSender(`/devices/${DEVICE_ID}/modules/other/messages/events`);
    await once(own.sender, 'sendable');
    own.sender.send({ body: rhea.message.data_section(Buffer.from('mine')), application_properties: {} });
    await until(() => rig.intake.messages.length === before + 1, 'the message');
    expect(rig.intake.messages.at(-1)?.system.connectionModuleId).toBe('other');
  });

  it('closes an identity’s links when a renewal is refused or the token expires', async () => {
    const c = await connect();
    const audience = encodeURIComponent(resource('other'));
    expect(
      (await c.putToken(createSasToken(resource('other'), key('other'), nowSecs() + 3600), audience)).status,
    ).toBe(200);
    const first = await c.attachSender(`/devices/${DEVICE_ID}/modules/other/messages/events`);
    const renewal = await c.putToken(
      createSasToken(resource('other'), key('translator'), nowSecs() + 3600),
      audience,
    );
    expect(renewal.status).toBe(401);
    expect(await first.closed).toBe('amqp:unauthorized-access');
    expect(rig.core.isConnected({ deviceId: DEVICE_ID, moduleId: 'other' })).toBe(false);

    // A token that expires in ~2 s: its links close when it does.
    const shortLived = createSasToken(resource('other'), key('other'), nowSecs() + 2);
    expect((await c.putToken(shortLived, audience)).status).toBe(200);
    const second = await c.attachSender(`/devices/${DEVICE_ID}/modules/other/messages/events`);
    const started = Date.now();
    expect(await second.closed).toBe('amqp:unauthorized-access');
    expect(Date.now() - started).toBeLessThan(4_000);
  });

  it('a newer connection for the same module replaces the older one (amqp:link:stolen)', async () => {
    const audience = encodeURIComponent(resource('other'));
    const older = await connect();
    expect(
      (await older.putToken(createSasToken(resource('other'), key('other'), nowSecs() + 3600), audience))
        .status,
    ).toBe(200);
    const oldLink = await older.attachSender(`/devices/${DEVICE_ID}/modules/other/messages/events`);
    const oldClosed = new Promise<string | undefined>((resolve) =>
      older.connection.once('connection_close', (ctx: EventContext) =>
        resolve((ctx.connection.error as { condition?: string } | undefined)?.condition),
      ),
    );
    older.connection.on('connection_error', () => undefined);
    const newer = await connect();
    expect(
      (await newer.putToken(createSasToken(resource('other'), key('other'), nowSecs() + 3600), audience))
        .status,
    ).toBe(200);
    expect(await oldLink.closed).toBe('amqp:link:stolen');
    expect(await oldClosed).toBe('amqp:link:stolen');
    expect(rig.core.isConnected({ deviceId: DEVICE_ID, moduleId: 'other' })).toBe(true);
  });

  it('refuses links before any token was put', async () => {
    const c = await connect();
    const { closed } = await c.attachSender(`/devices/${DEVICE_ID}/modules/other/twin`);
    expect(await closed).toBe('amqp:unauthorized-access');
  });

  it('stop() closes open connections and detaches their modules', async () => {
    const c = await connect();
    const audience = encodeURIComponent(resource('other'));
    expect(
      (await c.putToken(createSasToken(resource('other'), key('other'), nowSecs() + 3600), audience)).status,
    ).toBe(200);
    const gone = new Promise<void>((resolve) => c.connection.once('disconnected', () => resolve()));
    c.connection.on('connection_error', () => undefined);
    const started = Date.now();
    await rig.endpoint.stop();
    await gone;
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(rig.endpoint.connectionCount).toBe(0);
    expect(rig.core.isConnected({ deviceId: DEVICE_ID, moduleId: 'other' })).toBe(false);
  });
});
