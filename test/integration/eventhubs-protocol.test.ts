import { createHmac } from 'node:crypto';
import { connect as tcpConnect } from 'node:net';
import { EventHubProducerClient } from '@azure/event-hubs';
import rhea, { type Connection, type EventContext, type Message, type Receiver, type Sender } from 'rhea';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BATCH_MESSAGE_FORMAT, EventHubsServer, EventLog } from '../../emulator/eventhubs/index.js';
import { createLogger } from '../../modules/common/index.js';

// Protocol edges a raw AMQP peer can reach: auth, bad addresses, bad frames, manual credit,
// heartbeats, retention. Uses rhea as a plain AMQP client (no Event Hubs SDK smarts).

const KEY_NAME = 'policy';
const KEY = 'c2VjcmV0LWtleS1mb3ItcHJvdG9jb2wtdGVzdHM=';
let log: EventLog;
let server: EventHubsServer;
const open: Connection[] = [];

beforeAll(async () => {
  log = new EventLog({
    hubs: [{ name: 'raw', partitionCount: 2 }],
    retention: { maxEventsPerPartition: 5 },
  });
  server = new EventHubsServer({
    log,
    port: 0,
    idleTimeoutInMs: 300,
    maxMessageSizeBytes: 4096,
    sharedAccessKeys: [{ keyName: KEY_NAME, key: KEY }],
    logger: createLogger('eventhubs-test', { level: 'silent' }),
  });
  await server.start();
});

afterAll(async () => {
  for (const c of open) c.close();
  await server.stop();
});

function token(audience: string, key = KEY, expiry = Math.floor(Date.now() / 1000) + 3600): string {
  const sr = encodeURIComponent(audience);
  const sig = encodeURIComponent(createHmac('sha256', key).update(`${sr}\n${expiry}`).digest('base64'));
  return `SharedAccessSignature sr=${sr}&sig=${sig}&se=${expiry}&skn=${KEY_NAME}`;
}

function connectRaw(idleTimeOutMs?: number): Promise<Connection> {
  const container = rhea.create_container();
  // Errors surface through the promises below; keep rhea from throwing on unhandled ones.
  container.on('error', () => undefined);
  const connection = container.connect({
    host: '127.0.0.1',
    port: server.port,
    reconnect: false,
    ...(idleTimeOutMs === undefined ? {} : { idle_time_out: idleTimeOutMs }),
  });
  open.push(connection);
  return new Promise((resolve, reject) => {
    connection.once('connection_open', () => resolve(connection));
    connection.once('disconnected', (ctx: EventContext) => reject(ctx.error ?? new Error('disconnected')));
  });
}

async function putToken(connection: Connection, audience: string, tok: string): Promise<number> {
  const replyTo = `cbs-reply-${Math.random()}`;
  const receiver = connection.open_receiver({ source: { address: '$cbs' }, target: { address: replyTo } });
  const sender = connection.open_sender({ target: { address: '$cbs' } });
  await onceEvent(sender, 'sendable');
  const reply = new Promise<Message>((resolve) =>
    receiver.once('message', (ctx: EventContext) => resolve(ctx.message as Message)),
  );
  sender.send({
    message_id: 'req-1',
    reply_to: replyTo,
    body: tok,
    application_properties: {
      operation: 'put-token',
      name: audience,
      type: 'servicebus.windows.net:sastoken',
    },
  } as Message);
  const message = await reply;
  expect(message.correlation_id).toBe('req-1');
  return Number(message.application_properties?.['status-code']);
}

function onceEvent(emitter: Sender | Receiver | Connection, event: string): Promise<EventContext> {
  return new Promise((resolve) => emitter.once(event, resolve));
}

function closedWith(link: Sender | Receiver): Promise<string | undefined> {
  return new Promise((resolve) => {
    link.once('sender_close', () => resolve((link.error as { condition?: string } | undefined)?.condition));
    link.once('receiver_close', () => resolve((link.error as { condition?: string } | undefined)?.condition));
  });
}

function conditionOf(ctx: EventContext): string | undefined {
  return (ctx.delivery?.remote_state as { error?: { condition?: string } } | undefined)?.error?.condition;
}

const ns = () => `sb://localhost:${server.port}/`;

describe('CBS', () => {
  it('answers put-token with 200 for the right key and 401 for a wrong or expired one', async () => {
    const c = await connectRaw();
    expect(await putToken(c, `${ns()}raw`, token(`${ns()}raw`))).toBe(200);
    expect(await putToken(c, `${ns()}raw`, token(`${ns()}raw`, 'bm90LXRoZS1rZXk='))).toBe(401);
    expect(await putToken(c, `${ns()}raw`, token(`${ns()}raw`, KEY, 1000))).toBe(401);
    expect(await putToken(c, `${ns()}raw`, 'garbage')).toBe(401);
    // A token for another hub does not cover this one.
    expect(await putToken(c, `${ns()}raw`, token(`${ns()}other`))).toBe(401);
  });

  it('refuses links without a token, and links to unknown entities', async () => {
    const c = await connectRaw();
    const noAuth = c.open_receiver({
      source: { address: 'raw/ConsumerGroups/$Default/Partitions/0' },
      credit_window: 0,
    });
    expect(await closedWith(noAuth)).toBe('amqp:unauthorized-access');
    expect(await putToken(c, ns(), token(ns()))).toBe(200);
    const missingHub = c.open_sender({ target: { address: 'nope' } });
    expect(await closedWith(missingHub)).toBe('amqp:not-found');
    const missingGroup = c.open_receiver({
      source: { address: 'raw/ConsumerGroups/none/Partitions/0' },
      credit_window: 0,
    });
    expect(await closedWith(missingGroup)).toBe('amqp:not-found');
    const badFilter = c.open_receiver({
      source: {
        address: 'raw/ConsumerGroups/$Default/Partitions/0',
        filter: { 'apache.org:selector-filter:string': rhea.types.wrap_described('1 = 1', 0x468c00000004) },
      },
      credit_window: 0,
    });
    expect(await closedWith(badFilter)).toBe('amqp:invalid-field');
  });
});

describe('producers and consumers over raw AMQP', () => {
  it('rejects malformed and oversized batches without dropping the link, and sends only what is credited', async () => {
    const c = await connectRaw();
    expect(await putToken(c, ns(), token(ns()))).toBe(200);
    const sender = c.open_sender({ target: { address: 'raw/Partitions/1' } });
    await onceEvent(sender, 'sendable');
    expect(sender.max_message_size).toBe(4096);

    const rejected = new Promise<EventContext>((resolve) => sender.once('rejected', resolve));
    sender.send(Buffer.from('not an amqp message') as unknown as Message, undefined, BATCH_MESSAGE_FORMAT);
    const bad = await rejected;
    expect(conditionOf(bad)).toBe('amqp:decode-error');

    const tooBig = new Promise<EventContext>((resolve) => sender.once('rejected', resolve));
    sender.send({ body: rhea.message.data_section(Buffer.alloc(8000)) } as Message);
    const big = await tooBig;
    expect(conditionOf(big)).toBe('amqp:link:message-size-exceeded');

    // A batch exactly as the SDK frames it: data sections that are encoded messages.
    const inner = [1, 2, 3, 4].map((i) =>
      rhea.message.encode({
        body: rhea.message.data_section(Buffer.from(`b${i}`)),
        application_properties: { i },
      }),
    );
    const accepted = new Promise<EventContext>((resolve) => sender.once('accepted', resolve));
    sender.send(
      rhea.message.encode({ body: rhea.message.data_sections(inner) }) as unknown as Message,
      undefined,
      BATCH_MESSAGE_FORMAT,
    );
    await accepted;
    expect(sender.is_open()).toBe(true);
    expect(
      log
        .hub('raw')
        .partition('1')
        .read(0, 10)
        .map((e) => e.body.toString()),
    ).toEqual(['b1', 'b2', 'b3', 'b4']);

    const receiver = c.open_receiver({
      source: {
        address: 'raw/ConsumerGroups/$Default/Partitions/1',
        filter: {
          'apache.org:selector-filter:string': rhea.types.wrap_described(
            "amqp.annotation.x-opt-offset > '-1'",
            0x468c00000004,
          ),
        },
      },
      credit_window: 0,
    });
    const got: Message[] = [];
    receiver.on('message', (ctx: EventContext) => got.push(ctx.message as Message));
    await onceEvent(receiver, 'receiver_open');
    receiver.add_credit(2);
    await sleep(300);
    expect(got).toHaveLength(2);
    receiver.add_credit(5);
    await sleep(300);
    expect(got).toHaveLength(4);
    expect(got.map((m) => Number(m.message_annotations?.['x-opt-sequence-number']))).toEqual([0, 1, 2, 3]);
    expect(got[3]?.message_annotations?.['x-opt-enqueued-time']).toBeInstanceOf(Date);
    expect(typeof got[3]?.message_annotations?.['x-opt-offset']).toBe('string');
  });

  it('evicts beyond the retention bound; a consumer from the start gets what is retained', async () => {
    const hub = log.hub('raw');
    hub.append(
      Array.from({ length: 12 }, (_, i) => ({ body: Buffer.from(`r${i}`) })),
      { partitionId: '0' },
    );
    const info = hub.partition('0').info();
    expect(info.beginSequenceNumber).toBe(7);
    expect(info.lastEnqueuedSequenceNumber).toBe(11);
    const c = await connectRaw();
    expect(await putToken(c, ns(), token(ns()))).toBe(200);
    const receiver = c.open_receiver({
      source: { address: 'raw/ConsumerGroups/$Default/Partitions/0' },
      credit_window: 0,
    });
    const got: Message[] = [];
    receiver.on('message', (ctx: EventContext) => got.push(ctx.message as Message));
    await onceEvent(receiver, 'receiver_open');
    receiver.add_credit(100);
    await sleep(300);
    expect(got.map((m) => String(m.body?.content))).toEqual(['r7', 'r8', 'r9', 'r10', 'r11']);
  });
});

describe('connection robustness', () => {
  it('survives garbage bytes and keeps serving real clients', async () => {
    await new Promise<void>((resolve) => {
      const socket = tcpConnect(server.port, '127.0.0.1', () => {
        socket.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
      });
      socket.on('error', () => undefined);
      socket.on('close', () => resolve());
    });
    await new Promise<void>((resolve) => {
      const socket = tcpConnect(server.port, '127.0.0.1', () => {
        // AMQP header, then a frame whose size field claims more than it sends, then close.
        socket.write(
          Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 1, 0, 0, 0, 0, 0, 0x20, 2, 0, 0, 0, 0xff, 0xff]),
        );
        setTimeout(() => socket.destroy(), 50);
      });
      socket.on('error', () => undefined);
      socket.on('close', () => resolve());
    });
    const producer = new EventHubProducerClient(
      `Endpoint=sb://localhost:${server.port};SharedAccessKeyName=${KEY_NAME};SharedAccessKey=${KEY};EntityPath=raw;UseDevelopmentEmulator=true`,
      { retryOptions: { maxRetries: 0, timeoutInMs: 5000 } },
    );
    try {
      expect((await producer.getEventHubProperties()).partitionIds).toEqual(['0', '1']);
    } finally {
      await producer.close();
    }
  });

  it('drops a connection whose frame announces more than the advertised max-frame-size', async () => {
    const before = server.stats().oversizedFrames;
    const closed = await new Promise<{ closed: boolean; readMs: number }>((resolve) => {
      const t0 = Date.now();
      const socket = tcpConnect(server.port, '127.0.0.1', () => {
        // AMQP header, then a frame header announcing 64 MiB.
        const header = Buffer.alloc(8);
        header.writeUInt32BE(64 * 1024 * 1024, 0);
        header[4] = 2;
        socket.write(Buffer.concat([Buffer.from('AMQP\x00\x01\x00\x00', 'latin1'), header]));
      });
      // Read (and drop) the server's bytes, or the client never sees the connection end.
      socket.resume();
      socket.on('error', () => undefined);
      socket.on('close', () => resolve({ closed: true, readMs: Date.now() - t0 }));
      setTimeout(() => {
        socket.destroy();
        resolve({ closed: false, readMs: Date.now() - t0 });
      }, 5000);
    });
    // Without the guard rhea waits for all 64 MiB and the socket stays open.
    expect(closed.closed).toBe(true);
    expect(server.stats().oversizedFrames).toBe(before + 1);
    // The server still serves real clients.
    const c = await connectRaw();
    expect(await putToken(c, ns(), token(ns()))).toBe(200);
  });

  it('reports a port in use as E_LISTEN', async () => {
    const clash = new EventHubsServer({
      log,
      port: server.port,
      logger: createLogger('eventhubs-test', { level: 'silent' }),
    });
    await expect(clash.start()).rejects.toMatchObject({ code: 'E_LISTEN' });
    await clash.stop();
  });

  it('keeps an idle connection alive through heartbeats (server idle timeout 300 ms)', async () => {
    const c = await connectRaw(200);
    let dropped = false;
    c.on('disconnected', () => {
      dropped = true;
    });
    await sleep(1200);
    expect(dropped).toBe(false);
    expect(c.is_open()).toBe(true);
  });
});

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
