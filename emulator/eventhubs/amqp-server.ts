import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Server, Socket } from 'node:net';
import rhea, {
  type AmqpError,
  type Connection,
  type EventContext,
  type Message,
  type Receiver,
  type Sender,
} from 'rhea';
import {
  createLogger,
  EdgePerfError,
  type Logger,
  parseSasToken,
  toError,
} from '../../modules/common/index.js';
import { guardAmqpFrameSize, MAX_WIRE_FRAME_BYTES } from '../edgehub/frame-guard.js';
import {
  decodeIncoming,
  encodeOutgoing,
  MalformedMessageError,
  parseSelector,
  selectorOf,
  UnsupportedFilterError,
} from './codec.js';
import {
  EntityNotFoundError,
  type EventHub,
  type EventLog,
  type PartitionLog,
  PositionOutOfRangeError,
  type StartPosition,
} from './event-log.js';

/** A shared access policy clients sign tokens with (`SharedAccessKeyName` / `SharedAccessKey`). */
export interface SharedAccessKeyOptions {
  readonly keyName: string;
  /** The key as it appears in the connection string (used as UTF-8 bytes, as Event Hubs does). */
  readonly key: string;
}

/** Options of {@link EventHubsServer}. */
export interface EventHubsServerOptions {
  /** The event hubs served (shared with whoever appends, e.g. the local IoT Hub). */
  readonly log: EventLog;
  /** Listen address; default `127.0.0.1`. */
  readonly host?: string;
  /** Listen port; default 5672 (the `UseDevelopmentEmulator` default); 0 picks a free port. */
  readonly port?: number;
  /** Host name written into connection strings; default `localhost`. */
  readonly advertisedHost?: string;
  /** Accepted policies; default one random key named `RootManageSharedAccessKey`. */
  readonly sharedAccessKeys?: readonly SharedAccessKeyOptions[];
  /** Largest message (or batch) a producer may send, bytes; default 1,048,576 (Event Hubs Standard). */
  readonly maxMessageSizeBytes?: number;
  /** AMQP idle timeout announced to clients, ms; default 60,000. */
  readonly idleTimeoutInMs?: number;
  /** Receivers without owner level per partition and consumer group; default 5, as Event Hubs. */
  readonly maxReceiversPerPartition?: number;
  /** Default: a child of `createLogger('eventhubs')`. */
  readonly logger?: Logger;
}

const EPOCH_PROPERTY = 'com.microsoft:epoch';
const RUNTIME_METRIC = 'com.microsoft:enable-receiver-runtime-metric';
const MANAGEMENT = '$management';
const CBS = '$cbs';
const MAX_BATCH_READ = 256;
const MAX_GRANTS_PER_CONNECTION = 256;

const CONSUMER_ADDRESS = /^([^/]+)\/ConsumerGroups\/([^/]+)\/Partitions\/([^/]+)$/i;
const PARTITION_SENDER_ADDRESS = /^([^/]+)\/Partitions\/([^/]+)$/i;
const HUB_ADDRESS = /^([^/]+)$/;

interface Grant {
  /** Lower-case path (no scheme/host) the token's `sr` covers; '' covers the namespace. */
  readonly path: string;
  readonly expiresAtMs: number;
}

interface ConnectionState {
  grants: Grant[];
  readonly consumers: Set<Consumer>;
}

interface Consumer {
  readonly link: Sender;
  readonly connection: Connection;
  readonly groupKey: string;
  readonly partition: PartitionLog;
  readonly epoch: number | undefined;
  readonly runtimeMetric: boolean;
  nextSequenceNumber: number;
  closed: boolean;
  unsubscribe: () => void;
}

type LinkRole =
  | { kind: 'cbs' }
  | { kind: 'management' }
  | { kind: 'producer'; hub: EventHub; partitionId?: string };

/**
 * An Event Hubs-compatible AMQP 1.0 endpoint on plain TCP, as reached by `@azure/event-hubs` with
 * `UseDevelopmentEmulator=true` (edge-facts §10): SASL ANONYMOUS, CBS put-token with SAS
 * verification, `$management` READ, consumer links with selector filters, owner levels and
 * runtime metrics under manual credit, producer links with batches and partition keys.
 */
export class EventHubsServer {
  private readonly log: EventLog;
  private readonly host: string;
  private readonly requestedPort: number;
  private readonly advertisedHost: string;
  private readonly keys: ReadonlyMap<string, string>;
  private readonly maxMessageSizeBytes: number;
  /** Largest AMQP frame accepted: the largest message plus room for framing and annotations. */
  private readonly maxFrameBytes: number;
  private oversized = 0;
  private readonly idleTimeoutInMs: number;
  private readonly maxReceivers: number;
  private readonly logger: Logger;
  private server: Server | undefined;
  private listeningPort = 0;
  private readonly sockets = new Set<Socket>();
  private readonly connections = new Map<Connection, ConnectionState>();
  private readonly linkRoles = new WeakMap<Receiver, LinkRole>();
  private readonly groups = new Map<string, Set<Consumer>>();

  constructor(options: EventHubsServerOptions) {
    this.log = options.log;
    this.host = options.host ?? '127.0.0.1';
    this.requestedPort = options.port ?? 5672;
    this.advertisedHost = options.advertisedHost ?? 'localhost';
    const keys = options.sharedAccessKeys ?? [
      { keyName: 'RootManageSharedAccessKey', key: randomBytes(32).toString('base64') },
    ];
    this.keys = new Map(keys.map((k) => [k.keyName, k.key]));
    this.maxMessageSizeBytes = options.maxMessageSizeBytes ?? 1_048_576;
    this.maxFrameBytes = Math.max(MAX_WIRE_FRAME_BYTES, this.maxMessageSizeBytes + 64 * 1024);
    this.idleTimeoutInMs = options.idleTimeoutInMs ?? 60_000;
    this.maxReceivers = options.maxReceiversPerPartition ?? 5;
    this.logger = options.logger ?? createLogger('eventhubs');
  }

  /** The bound port (after {@link start}). */
  get port(): number {
    return this.listeningPort;
  }

  /**
   * Open AMQP connections, attached consumer links, and connections dropped for a frame larger
   * than the advertised max-frame-size (for metrics and tests).
   */
  stats(): { connections: number; consumers: number; oversizedFrames: number } {
    let consumers = 0;
    for (const state of this.connections.values()) consumers += state.consumers.size;
    return { connections: this.connections.size, consumers, oversizedFrames: this.oversized };
  }

  /**
   * A connection string for one hub: `Endpoint=sb://HOST:PORT;SharedAccessKeyName=…;
   * SharedAccessKey=…;EntityPath=HUB;UseDevelopmentEmulator=true`.
   * @param keyName - policy to use; default the first configured.
   * @throws Error when the key name is unknown or the server has not started.
   */
  connectionString(hubName: string, keyName?: string): string {
    if (this.server === undefined) throw new Error('event hubs endpoint not started');
    const name = keyName ?? [...this.keys.keys()][0] ?? '';
    const key = this.keys.get(name);
    if (key === undefined) throw new Error(`unknown shared access key name "${name}"`);
    return (
      `Endpoint=sb://${this.advertisedHost}:${this.listeningPort};SharedAccessKeyName=${name};` +
      `SharedAccessKey=${key};EntityPath=${hubName};UseDevelopmentEmulator=true`
    );
  }

  /** Starts listening. @throws EdgePerfError `E_LISTEN` when the port cannot be bound. */
  async start(): Promise<void> {
    if (this.server !== undefined) return;
    const container = rhea.create_container({
      id: 'edgeperf-eventhubs',
      // Producers' messages are accepted only once stored, so no auto-accept; a modest window
      // bounds what one connection can buffer.
      receiver_options: { autoaccept: false, credit_window: 100 },
    });
    this.wire(container);
    const server = container.listen({
      host: this.host,
      port: this.requestedPort,
      idle_time_out: this.idleTimeoutInMs,
      container_id: 'edgeperf-eventhubs',
      properties: { product: 'edgeperf event hubs emulator' },
      // Advertised in OPEN and enforced per connection below: rhea buffers whatever size a frame
      // announces (up to 4 GB) before parsing it.
      max_frame_size: this.maxFrameBytes,
    } as Parameters<ReturnType<typeof rhea.create_container>['listen']>[0]);
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      // A reset from a client must not become an unhandled error.
      socket.on('error', () => undefined);
      guardAmqpFrameSize(socket, this.maxFrameBytes, (info) => {
        this.oversized += 1;
        this.logger.warn(info, 'AMQP frame larger than max-frame-size; connection dropped');
      });
    });
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) =>
        reject(
          new EdgePerfError(
            'E_LISTEN',
            `event hubs endpoint cannot listen on ${this.host}:${this.requestedPort}: ${err.message}`,
            {
              cause: err,
            },
          ),
        );
      server.once('error', onError);
      server.once('listening', () => {
        server.off('error', onError);
        resolve();
      });
    });
    server.on('error', (err) => this.logger.error({ err }, 'event hubs listener error'));
    const address = server.address();
    this.listeningPort = typeof address === 'object' && address !== null ? address.port : this.requestedPort;
    this.server = server;
    this.logger.info({ host: this.host, port: this.listeningPort }, 'event hubs endpoint listening');
  }

  /** Closes every connection and the listener. */
  async stop(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    for (const state of this.connections.values()) {
      for (const consumer of state.consumers) this.dropConsumer(consumer);
    }
    this.connections.clear();
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private wire(container: ReturnType<typeof rhea.create_container>): void {
    const guard =
      (name: string, handler: (ctx: EventContext) => void) =>
      (ctx: EventContext): void => {
        try {
          handler(ctx);
        } catch (err) {
          // A bug on one link must not take the endpoint down: report and close that link.
          this.logger.error({ err: toError(err), event: name }, 'event hubs handler failed');
          const link = ctx.sender ?? ctx.receiver;
          link?.close({ condition: 'amqp:internal-error', description: toError(err).message });
        }
      };
    container.on(
      'connection_open',
      guard('connection_open', (ctx) => {
        this.connections.set(ctx.connection, { grants: [], consumers: new Set() });
      }),
    );
    const closed = guard('disconnected', (ctx) => this.dropConnection(ctx.connection));
    container.on('disconnected', closed);
    container.on('connection_close', closed);
    container.on(
      'sender_open',
      guard('sender_open', (ctx) => this.onSenderOpen(ctx)),
    );
    container.on(
      'receiver_open',
      guard('receiver_open', (ctx) => this.onReceiverOpen(ctx)),
    );
    container.on(
      'message',
      guard('message', (ctx) => this.onMessage(ctx)),
    );
    container.on(
      'sendable',
      guard('sendable', (ctx) => {
        const consumer = ctx.sender === undefined ? undefined : this.findConsumer(ctx.connection, ctx.sender);
        if (consumer !== undefined) this.pump(consumer);
      }),
    );
    const linkClosed = guard('link_close', (ctx) => {
      if (ctx.sender === undefined) return;
      const consumer = this.findConsumer(ctx.connection, ctx.sender);
      if (consumer !== undefined) this.dropConsumer(consumer);
    });
    container.on('sender_close', linkClosed);
    container.on('session_close', (ctx: EventContext) => {
      const state = this.connections.get(ctx.connection);
      if (state === undefined) return;
      for (const consumer of state.consumers) {
        if (consumer.link.session === ctx.session) this.dropConsumer(consumer);
      }
    });
    for (const event of ['sender_error', 'receiver_error', 'session_error', 'connection_error']) {
      container.on(event, (ctx: EventContext) => {
        const error = ctx.sender?.error ?? ctx.receiver?.error ?? ctx.session?.error ?? ctx.connection?.error;
        this.logger.debug({ event, error }, 'peer reported an error');
      });
    }
    container.on('protocol_error', (err: unknown) => {
      this.logger.warn({ err: toError(err) }, 'AMQP protocol error; connection closed');
    });
    container.on('error', (err: unknown) => {
      this.logger.warn({ err: toError(err) }, 'AMQP connection error');
    });
  }

  // ---- links the client receives on (our senders) ----

  private onSenderOpen(ctx: EventContext): void {
    const link = ctx.sender;
    if (link === undefined) return;
    const address = normaliseAddress(link.source?.address);
    echoTermini(link);
    if (address === CBS || address === MANAGEMENT) return; // reply links, found by target address
    const match = CONSUMER_ADDRESS.exec(address);
    if (match === null) {
      refuse(link, 'amqp:not-found', `The messaging entity '${address}' could not be found.`);
      return;
    }
    const [, hubName = '', group = '', partitionId = ''] = match;
    const hub = this.log.findHub(hubName);
    if (hub === undefined || !hub.hasConsumerGroup(group) || !hub.partitionIds.includes(partitionId)) {
      refuse(link, 'amqp:not-found', `The messaging entity '${address}' could not be found.`);
      return;
    }
    const state = this.connections.get(ctx.connection);
    if (state === undefined || !this.isAuthorised(state, address)) {
      refuse(
        link,
        'amqp:unauthorized-access',
        `Unauthorized access to '${address}': put a valid token on $cbs first.`,
      );
      return;
    }
    const partition = hub.partition(partitionId);
    let start: StartPosition;
    let nextSequenceNumber: number;
    try {
      start = parseSelector(selectorOf(link.source?.filter));
      nextSequenceNumber = partition.resolve(start);
    } catch (err) {
      if (err instanceof UnsupportedFilterError) {
        refuse(link, 'amqp:invalid-field', err.message);
        return;
      }
      if (err instanceof PositionOutOfRangeError) {
        refuse(link, 'com.microsoft:argument-out-of-range', err.message);
        return;
      }
      throw err;
    }
    const epoch = readEpoch(link.properties?.[EPOCH_PROPERTY]);
    const groupKey = `${hub.name}/${group}/${partitionId}`.toLowerCase();
    const members = this.groups.get(groupKey) ?? new Set<Consumer>();
    if (!this.admit(link, epoch, members)) return;
    const desired = ([] as string[]).concat(link.desired_capabilities ?? []);
    const runtimeMetric = desired.includes(RUNTIME_METRIC);
    const attach = localAttach(link);
    if (runtimeMetric) attach.offered_capabilities = [RUNTIME_METRIC];
    if (epoch !== undefined) attach.properties = { [EPOCH_PROPERTY]: rhea.types.wrap_long(epoch) };
    const consumer: Consumer = {
      link,
      connection: ctx.connection,
      groupKey,
      partition,
      epoch,
      runtimeMetric,
      nextSequenceNumber,
      closed: false,
      unsubscribe: () => undefined,
    };
    consumer.unsubscribe = partition.onAppend(() => {
      try {
        this.pump(consumer);
      } catch (err) {
        this.logger.error({ err: toError(err), groupKey }, 'delivering to a consumer failed; link closed');
        this.dropConsumer(consumer, { condition: 'amqp:internal-error', description: toError(err).message });
      }
    });
    members.add(consumer);
    this.groups.set(groupKey, members);
    state.consumers.add(consumer);
    this.logger.debug({ groupKey, epoch, start, nextSequenceNumber }, 'consumer attached');
  }

  // Owner-level (epoch) rules of Event Hubs: an equal or higher epoch takes the partition from
  // lower ones and from non-epoch receivers; a lower one, or a non-epoch receiver while an epoch
  // receiver exists, is refused.
  private admit(link: Sender, epoch: number | undefined, members: Set<Consumer>): boolean {
    const epochHolders = [...members].filter((m) => m.epoch !== undefined);
    const highest = Math.max(-Infinity, ...epochHolders.map((m) => m.epoch ?? -Infinity));
    if (epoch === undefined) {
      if (epochHolders.length > 0) {
        refuse(
          link,
          'amqp:link:stolen',
          `A receiver with epoch '${highest}' already exists; a receiver without epoch cannot be created.`,
        );
        return false;
      }
      if (members.size >= this.maxReceivers) {
        refuse(
          link,
          'amqp:resource-limit-exceeded',
          `Exceeded the maximum number of allowed receivers per partition in a consumer group which is ${this.maxReceivers}.`,
        );
        return false;
      }
      return true;
    }
    if (epoch < highest) {
      refuse(
        link,
        'amqp:link:stolen',
        `Receiver with a higher epoch '${highest}' already exists. A new receiver with epoch '${epoch}' cannot be created.`,
      );
      return false;
    }
    for (const member of members) {
      this.dropConsumer(member, {
        condition: 'amqp:link:stolen',
        description: `New receiver with higher epoch of '${epoch}' is created hence current receiver with epoch '${member.epoch ?? 'none'}' is getting disconnected.`,
      });
    }
    return true;
  }

  private pump(consumer: Consumer): void {
    if (consumer.closed) return;
    const link = consumer.link;
    if (!link.is_open()) return;
    while (link.sendable()) {
      const events = consumer.partition.read(
        consumer.nextSequenceNumber,
        Math.min(creditOf(link), MAX_BATCH_READ),
      );
      if (events.length === 0) return;
      const info = consumer.runtimeMetric ? consumer.partition.info() : undefined;
      const runtime =
        info === undefined
          ? undefined
          : {
              lastSequenceNumber: info.lastEnqueuedSequenceNumber,
              lastOffset: info.lastEnqueuedOffset,
              lastEnqueuedTimeMs: info.lastEnqueuedTimeMs,
            };
      for (const event of events) {
        if (!link.sendable()) return;
        link.send(encodeOutgoing(event, runtime));
        consumer.nextSequenceNumber = event.sequenceNumber + 1;
      }
    }
  }

  private findConsumer(connection: Connection, link: Sender): Consumer | undefined {
    const state = this.connections.get(connection);
    if (state === undefined) return undefined;
    for (const consumer of state.consumers) if (consumer.link === link) return consumer;
    return undefined;
  }

  private dropConsumer(consumer: Consumer, error?: AmqpError): void {
    if (consumer.closed) return;
    consumer.closed = true;
    consumer.unsubscribe();
    const members = this.groups.get(consumer.groupKey);
    members?.delete(consumer);
    if (members !== undefined && members.size === 0) this.groups.delete(consumer.groupKey);
    this.connections.get(consumer.connection)?.consumers.delete(consumer);
    if (error !== undefined && !consumer.link.is_closed()) consumer.link.close(error);
  }

  private dropConnection(connection: Connection): void {
    const state = this.connections.get(connection);
    if (state === undefined) return;
    for (const consumer of state.consumers) this.dropConsumer(consumer);
    this.connections.delete(connection);
  }

  // ---- links the client sends on (our receivers) ----

  private onReceiverOpen(ctx: EventContext): void {
    const link = ctx.receiver;
    if (link === undefined) return;
    const address = normaliseAddress(link.target?.address);
    echoTermini(link);
    if (address === CBS) {
      this.linkRoles.set(link, { kind: 'cbs' });
      return;
    }
    if (address === MANAGEMENT) {
      this.linkRoles.set(link, { kind: 'management' });
      return;
    }
    const partitionMatch = PARTITION_SENDER_ADDRESS.exec(address);
    const hubMatch = HUB_ADDRESS.exec(address);
    const hubName = partitionMatch?.[1] ?? hubMatch?.[1];
    const partitionId = partitionMatch?.[2];
    const hub = hubName === undefined ? undefined : this.log.findHub(hubName);
    if (hub === undefined || (partitionId !== undefined && !hub.partitionIds.includes(partitionId))) {
      refuse(link, 'amqp:not-found', `The messaging entity '${address}' could not be found.`);
      return;
    }
    const state = this.connections.get(ctx.connection);
    if (state === undefined || !this.isAuthorised(state, address)) {
      refuse(
        link,
        'amqp:unauthorized-access',
        `Unauthorized access to '${address}': put a valid token on $cbs first.`,
      );
      return;
    }
    localAttach(link).max_message_size = this.maxMessageSizeBytes;
    this.linkRoles.set(
      link,
      partitionId === undefined ? { kind: 'producer', hub } : { kind: 'producer', hub, partitionId },
    );
  }

  private onMessage(ctx: EventContext): void {
    const link = ctx.receiver;
    const delivery = ctx.delivery;
    if (link === undefined || delivery === undefined) return;
    const role = this.linkRoles.get(link);
    const payload = ctx.message as Message | Buffer | undefined;
    if (role === undefined || payload === undefined) {
      delivery.reject({ condition: 'amqp:not-allowed', description: 'this link does not accept messages' });
      return;
    }
    if (role.kind === 'cbs' || role.kind === 'management') {
      delivery.accept();
      if (Buffer.isBuffer(payload)) return;
      const reply =
        role.kind === 'cbs' ? this.onPutToken(ctx.connection, payload) : this.onManagement(payload);
      this.respond(ctx.connection, payload, reply);
      return;
    }
    const format = (ctx as EventContext & { format?: number }).format ?? 0;
    const size = Buffer.isBuffer(payload) ? payload.length : approximateSize(payload);
    if (size > this.maxMessageSizeBytes) {
      delivery.reject({
        condition: 'amqp:link:message-size-exceeded',
        description: `The received message (size ${size} bytes) exceeds the limit (${this.maxMessageSizeBytes} bytes).`,
      });
      return;
    }
    try {
      const events = decodeIncoming(payload, format);
      const key = events.find((e) => e.partitionKey !== undefined)?.partitionKey;
      const target =
        role.partitionId !== undefined
          ? { partitionId: role.partitionId }
          : key !== undefined
            ? { partitionKey: key }
            : {};
      if (events.length > 0) role.hub.append(events, target);
      delivery.accept();
    } catch (err) {
      if (err instanceof MalformedMessageError || err instanceof EntityNotFoundError) {
        delivery.reject({ condition: 'amqp:decode-error', description: err.message });
        return;
      }
      throw err;
    }
  }

  // ---- CBS and $management ----

  private onPutToken(connection: Connection, request: Message): Reply {
    const props = (request.application_properties ?? {}) as Record<string, unknown>;
    if (props.operation !== 'put-token') return { status: 400, description: `unsupported $cbs operation` };
    const audience = typeof props.name === 'string' ? props.name : '';
    const token = typeof request.body === 'string' ? request.body : '';
    const verdict = this.verifyToken(token, audience);
    if (typeof verdict === 'string') {
      this.logger.info({ audience, reason: verdict }, 'put-token refused');
      return { status: 401, description: `Unauthorized: ${verdict}`, condition: 'amqp:unauthorized-access' };
    }
    const state = this.connections.get(connection);
    if (state !== undefined) {
      const now = Date.now();
      const kept = state.grants.filter((g) => g.expiresAtMs > now && g.path !== verdict.path);
      // Bounded: a client cannot grow this list without limit by putting tokens for many paths.
      state.grants = [...kept.slice(-(MAX_GRANTS_PER_CONNECTION - 1)), verdict];
    }
    return { status: 200, description: 'OK' };
  }

  private onManagement(request: Message): Reply {
    const props = (request.application_properties ?? {}) as Record<string, unknown>;
    if (props.operation !== 'READ')
      return { status: 400, description: `unsupported operation "${String(props.operation)}"` };
    const name = typeof props.name === 'string' ? props.name : '';
    const hub = this.log.findHub(name);
    if (hub === undefined) {
      return {
        status: 404,
        description: `The messaging entity '${name}' could not be found.`,
        condition: 'amqp:not-found',
      };
    }
    const token = typeof props.security_token === 'string' ? props.security_token : '';
    const verdict = this.verifyToken(token, `${hub.name}/${MANAGEMENT}`);
    if (typeof verdict === 'string') {
      return { status: 401, description: `Unauthorized: ${verdict}`, condition: 'amqp:unauthorized-access' };
    }
    if (props.type === 'com.microsoft:eventhub') {
      return {
        status: 200,
        description: 'OK',
        body: {
          name: hub.name,
          type: 'com.microsoft:eventhub',
          created_at: new Date(hub.createdAtMs),
          partition_count: hub.partitionIds.length,
          partition_ids: [...hub.partitionIds],
        },
      };
    }
    if (props.type === 'com.microsoft:partition') {
      const partitionId = typeof props.partition === 'string' ? props.partition : String(props.partition);
      if (!hub.partitionIds.includes(partitionId)) {
        return {
          status: 404,
          description: `The messaging entity '${hub.name}/Partitions/${partitionId}' could not be found.`,
          condition: 'amqp:not-found',
        };
      }
      const info = hub.partition(partitionId).info();
      return {
        status: 200,
        description: 'OK',
        body: {
          name: hub.name,
          type: 'com.microsoft:partition',
          partition: partitionId,
          begin_sequence_number: rhea.types.wrap_long(info.beginSequenceNumber),
          last_enqueued_sequence_number: rhea.types.wrap_long(info.lastEnqueuedSequenceNumber),
          last_enqueued_offset: info.lastEnqueuedOffset,
          last_enqueued_time_utc: new Date(info.lastEnqueuedTimeMs),
          is_partition_empty: info.isEmpty,
        },
      };
    }
    return { status: 400, description: `unsupported type "${String(props.type)}"` };
  }

  private respond(connection: Connection, request: Message, reply: Reply): void {
    const replyTo = typeof request.reply_to === 'string' ? request.reply_to : undefined;
    if (replyTo === undefined) return;
    const sender = findReplyLink(connection, replyTo);
    if (sender === undefined) {
      this.logger.debug({ replyTo }, 'no link to reply on');
      return;
    }
    const appProps: Record<string, unknown> = {
      'status-code': reply.status,
      'status-description': reply.description,
    };
    if (reply.condition !== undefined) appProps['error-condition'] = reply.condition;
    sender.send({
      to: replyTo,
      correlation_id: request.message_id,
      application_properties: appProps,
      body: reply.body,
    } as Message);
  }

  /** Verifies an Event Hubs SAS token for an audience; returns the grant or why it was refused. */
  private verifyToken(token: string, audience: string): Grant | string {
    const parsed = parseSasToken(token);
    if (parsed === undefined) return 'malformed token';
    if (parsed.keyName === undefined) return 'token has no key name (skn)';
    const key = this.keys.get(parsed.keyName);
    if (key === undefined) return `unknown key name "${parsed.keyName}"`;
    if (parsed.expiry * 1000 <= Date.now()) return 'token expired';
    // Event Hubs signs with the key's UTF-8 bytes (core-amqp hmacSha256), unlike IoT Hub (base64-decoded).
    const expected = createHmac('sha256', key)
      .update(`${encodeURIComponent(parsed.resourceUri)}\n${parsed.expiry}`)
      .digest();
    const given = Buffer.from(parsed.signature, 'base64');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return 'invalid signature';
    const path = resourcePath(parsed.resourceUri);
    if (!covers(path, resourcePath(audience)))
      return `token for "${parsed.resourceUri}" does not cover "${audience}"`;
    return { path, expiresAtMs: parsed.expiry * 1000 };
  }

  private isAuthorised(state: ConnectionState, address: string): boolean {
    const path = resourcePath(address);
    const now = Date.now();
    return state.grants.some((g) => g.expiresAtMs > now && covers(g.path, path));
  }
}

interface Reply {
  readonly status: number;
  readonly description: string;
  readonly condition?: string;
  readonly body?: unknown;
}

function findReplyLink(connection: Connection, replyTo: string): Sender | undefined {
  // rhea keeps links per session; the reply link is the one whose peer target is reply_to.
  const sessions = (connection as unknown as { local_channel_map: Record<string, unknown> })
    .local_channel_map;
  for (const session of Object.values(sessions ?? {})) {
    const s = session as { find_sender?: (f: (l: Sender) => boolean) => Sender | undefined };
    const found = s.find_sender?.((l: Sender) => l.target?.address === replyTo || l.name === replyTo);
    if (found?.is_open()) return found;
  }
  return undefined;
}

function localAttach(link: Sender | Receiver): Record<string, unknown> {
  // rhea exposes the attach frame it will answer with only as `local.attach`; untyped.
  return (link as unknown as { local: { attach: Record<string, unknown> } }).local.attach;
}

// The answering attach must carry source and target, or the peer reads it as a refusal.
function echoTermini(link: Sender | Receiver): void {
  const source = link.source;
  const target = link.target;
  if (source !== undefined && source !== null) {
    link.set_source({
      address: source.address,
      ...(source.filter === undefined ? {} : { filter: source.filter }),
    });
  }
  if (target !== undefined && target !== null) link.set_target({ address: target.address });
}

function refuse(link: Sender | Receiver, condition: string, description: string): void {
  link.close({ condition, description });
}

function readEpoch(raw: unknown): number | undefined {
  let v = raw;
  if (v !== null && typeof v === 'object' && 'value' in v) v = (v as { value: unknown }).value;
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (Buffer.isBuffer(v) && v.length === 8) return Number(v.readBigInt64BE(0));
  return undefined;
}

function normaliseAddress(address: unknown): string {
  if (typeof address !== 'string') return '';
  return address.replace(/^[a-z]+:\/\/[^/]+/i, '').replace(/^\/+/, '');
}

/** Lower-case path of an audience or address without scheme and host. */
function resourcePath(uri: string): string {
  return normaliseAddress(uri).replace(/\/+$/, '').toLowerCase();
}

function covers(grantPath: string, path: string): boolean {
  return grantPath === '' || path === grantPath || path.startsWith(`${grantPath}/`);
}

function approximateSize(message: Message): number {
  try {
    return rhea.message.encode(message).length;
  } catch {
    return 0;
  }
}

// rhea keeps the peer's credit on the link object; its typings omit it.
function creditOf(link: Sender): number {
  const credit = (link as unknown as { credit?: number }).credit;
  return typeof credit === 'number' && credit > 0 ? credit : 1;
}
