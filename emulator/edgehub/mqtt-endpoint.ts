import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { Aedes, type AuthenticateError, type Client, type PublishPacket } from 'aedes';
import { createLogger, type Logger, toError } from '../../modules/common/index.js';
import type { AuthFailure, HubCore, MethodResult, ModuleLink } from './contracts.js';
import { HubOperationError } from './core.js';
import { guardMqttPacketSize, MAX_WIRE_FRAME_BYTES } from './frame-guard.js';
import { type EdgeMessage, type Identity, identityKey } from './message.js';
import {
  classifySubscription,
  formatDesiredPatchTopic,
  formatInputTopic,
  formatMethodRequestTopic,
  formatTwinResponseTopic,
  parseEventTopic,
  parseIotHubTopic,
  type SubscriptionKind,
} from './mqtt-topics.js';
import { encodePublish } from './mqtt-wire.js';

/** Options for {@link MqttEndpoint}. */
export interface MqttEndpointOptions {
  /** The hub core that authenticates, stores and routes. */
  readonly core: HubCore;
  /** Server certificate (PEM, leaf) and key, e.g. from ensureRuntimeCertificates. */
  readonly certPem: string;
  readonly keyPem: string;
  /** Listen address; default 127.0.0.1. */
  readonly host?: string;
  /** TCP port; default 8883; 0 picks a free port (see {@link MqttEndpoint.port}). */
  readonly port?: number;
  /**
   * Gateway host name (e.g. `localhost`). The SDK puts the hub host in the MQTT username; this
   * host is accepted there too.
   */
  readonly gatewayHostName?: string;
  /** How long an input delivery waits for the module's PUBACK; default 30 000 (MessageAckTimeoutSecs). */
  readonly ackTimeoutInMs?: number;
  /**
   * Runtime state directory; when set, subscriptions of persistent (`clean: false`) sessions are
   * kept in `<stateDir>/edgehub/mqtt-sessions.json` and survive a runtime restart.
   */
  readonly stateDir?: string;
  /** Logger; default a child `edgehub-mqtt` logger. */
  readonly logger?: Logger;
}

/** Counters of the endpoint, for tests and metrics. */
export interface MqttEndpointStats {
  /** CONNECTs refused, by CONNACK return code. */
  refused: { badCredentials: number; notAuthorized: number };
  /** Telemetry messages accepted (PUBACKed). */
  messagesReceived: number;
  /** Connections dropped because the store refused a message (StoreFullError or other). */
  refusedMessageDisconnects: number;
  /** Inputs delivered and acknowledged. */
  inputsDelivered: number;
  /** TLS handshakes that failed (plain TCP, untrusted client, …). */
  tlsErrors: number;
  /** Connections dropped because a packet announced more than {@link MAX_WIRE_FRAME_BYTES}. */
  oversizedPackets: number;
}

const SUBSCRIPTION_KINDS: readonly SubscriptionKind[] = [
  'inputs',
  'methods',
  'twin-responses',
  'twin-desired',
];
const CONNACK_BAD_USERNAME_OR_PASSWORD = 4;
const CONNACK_NOT_AUTHORIZED = 5;

interface PendingAck {
  resolve(): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

/** One authenticated MQTT connection and the link it offers the core. */
class Session implements ModuleLink {
  readonly protocol = 'mqtt' as const;
  readonly pendingAcks = new Map<number, PendingAck>();
  readonly pendingMethods = new Map<
    string,
    { resolve(r: MethodResult): void; reject(e: Error): void; timer: NodeJS.Timeout }
  >();
  detach: (() => void) | undefined;
  private nextPacketId = 1;
  private nextRid = 1;
  closed = false;

  constructor(
    readonly client: Client,
    readonly identity: Identity,
    /** The identity's session subscriptions; shared with the endpoint's session store. */
    readonly subscriptions: Set<SubscriptionKind>,
    private readonly ackTimeoutInMs: number,
    private readonly onDelivered: () => void,
  ) {}

  get acceptsInputs(): boolean {
    return this.subscriptions.has('inputs');
  }

  get acceptsMethods(): boolean {
    return this.subscriptions.has('methods');
  }

  deliverInput(input: string, message: EdgeMessage): Promise<void> {
    if (this.closed) return Promise.reject(notConnected(this.identity));
    const id = this.allocatePacketId();
    const topic = formatInputTopic(this.identity, input, message);
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pendingAcks.delete(id);
        reject(
          new HubOperationError(
            'E_ACK_TIMEOUT',
            504,
            `${identityKey(this.identity)} did not acknowledge input ${input} within ${this.ackTimeoutInMs} ms`,
          ),
        );
      }, this.ackTimeoutInMs);
      this.pendingAcks.set(id, {
        resolve: () => {
          this.onDelivered();
          resolve();
        },
        reject,
        timer,
      });
      this.write(encodePublish(topic, message.body, 1, id));
    });
  }

  invokeMethod(name: string, payload: unknown, timeoutMs: number): Promise<MethodResult> {
    if (this.closed || !this.acceptsMethods) return Promise.reject(notConnected(this.identity));
    const rid = (this.nextRid++).toString(16);
    const body = Buffer.from(payload === undefined ? '' : JSON.stringify(payload));
    return new Promise<MethodResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pendingMethods.delete(rid);
        reject(
          new HubOperationError(
            'E_METHOD_TIMEOUT',
            504,
            `${identityKey(this.identity)} did not answer method ${name} within ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      this.pendingMethods.set(rid, { resolve, reject, timer });
      this.write(encodePublish(formatMethodRequestTopic(name, rid), body, 0));
    });
  }

  sendDesiredPatch(patch: Record<string, unknown>): void {
    if (this.closed || !this.subscriptions.has('twin-desired')) return;
    const version = typeof patch.$version === 'number' ? patch.$version : 0;
    this.write(encodePublish(formatDesiredPatchTopic(version), Buffer.from(JSON.stringify(patch)), 0));
  }

  close(): void {
    this.client.close();
  }

  /** A PUBACK for one of our QoS 1 publishes arrived. */
  acked(packetId: number): void {
    const pending = this.pendingAcks.get(packetId);
    if (pending === undefined) return;
    this.pendingAcks.delete(packetId);
    clearTimeout(pending.timer);
    pending.resolve();
  }

  methodResponse(rid: string, status: number, body: Buffer): void {
    const pending = this.pendingMethods.get(rid);
    if (pending === undefined) return;
    this.pendingMethods.delete(rid);
    clearTimeout(pending.timer);
    const text = body.toString('utf8');
    let payload: unknown = text;
    try {
      payload = text === '' ? null : JSON.parse(text);
    } catch {
      // not JSON: hand the text through as IoT Hub would
    }
    pending.resolve({ status, payload });
  }

  write(packet: Buffer): void {
    if (this.closed) return;
    this.client.conn.write(packet);
  }

  /** Fails everything in flight; the core's store keeps undelivered inputs and retries. */
  shutdown(): void {
    if (this.closed) return;
    this.closed = true;
    this.detach?.();
    const err = notConnected(this.identity);
    for (const p of this.pendingAcks.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pendingAcks.clear();
    for (const p of this.pendingMethods.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pendingMethods.clear();
  }

  private allocatePacketId(): number {
    for (let tries = 0; tries < 0xffff; tries++) {
      const id = this.nextPacketId;
      this.nextPacketId = id >= 0xffff ? 1 : id + 1;
      if (!this.pendingAcks.has(id)) return id;
    }
    throw new HubOperationError('E_INFLIGHT_FULL', 503, '65535 input deliveries already in flight');
  }
}

function notConnected(identity: Identity): HubOperationError {
  return new HubOperationError('E_MODULE_NOT_CONNECTED', 404, `${identityKey(identity)} is not connected`);
}

/**
 * edgeHub's MQTT head (edge-facts §6): aedes on a TLS server, speaking the IoT Hub topic space
 * exactly as azure-iot-device-mqtt does. It is not a pub/sub broker: client publishes are only
 * telemetry, method responses and twin requests, each handled here; nothing is ever forwarded
 * between clients, and subscriptions are limited to the client's own topics.
 *
 * Store full: when the core rejects a message (StoreFullError or anything else), the endpoint
 * does not PUBACK it and drops the connection. MQTT 3.1.1 has no negative PUBACK, and the SDK
 * copes with a dropped connection: its retry policy reconnects and re-sends the unacknowledged
 * message, which is the back-pressure the module should see. Refusals are counted in
 * {@link MqttEndpoint.stats}.
 */
export class MqttEndpoint {
  /** Counters since start. */
  readonly stats: MqttEndpointStats = {
    refused: { badCredentials: 0, notAuthorized: 0 },
    messagesReceived: 0,
    refusedMessageDisconnects: 0,
    inputsDelivered: 0,
    tlsErrors: 0,
    oversizedPackets: 0,
  };
  private readonly options: MqttEndpointOptions;
  private readonly logger: Logger;
  private readonly sessions = new Map<Client, Session>();
  private readonly cleanRequested = new WeakMap<Client, boolean>();
  private readonly savedSubscriptions = new Map<string, Set<SubscriptionKind>>();
  private savedSubscriptionsLoaded = false;
  private broker: Aedes | undefined;
  private server: TlsServer | undefined;
  private boundPort = 0;

  constructor(options: MqttEndpointOptions) {
    this.options = options;
    this.logger = options.logger ?? createLogger('edgehub-mqtt');
  }

  /** Bound TCP port (after start()). */
  get port(): number {
    return this.boundPort;
  }

  /** `mqtts://{gatewayHost}:{port}` for display. */
  get url(): string {
    return `mqtts://${this.options.gatewayHostName ?? 'localhost'}:${this.boundPort}`;
  }

  /** What a connected identity has subscribed to (empty when not connected); for tests and diagnostics. */
  subscriptionsOf(identity: Identity): SubscriptionKind[] {
    const key = identityKey(identity);
    for (const session of this.sessions.values())
      if (!session.closed && identityKey(session.identity) === key) return [...session.subscriptions];
    return [];
  }

  /** Starts the broker and listens. @throws the listen error (EADDRINUSE, …). */
  async start(): Promise<void> {
    if (this.server !== undefined) return;
    const broker = await Aedes.createBroker({
      // aedes keeps no session: store-and-forward owns redelivery of messages, and this endpoint
      // keeps subscriptions per identity itself (see sessionSubscriptions). The client's own
      // clean flag is remembered first.
      preConnect: (client, packet, cb) => {
        this.cleanRequested.set(client, packet.clean !== false);
        packet.clean = true;
        delete packet.will;
        cb(null, true);
      },
      authenticate: (client, username, password, cb) => this.authenticate(client, username, password, cb),
      authorizePublish: (client, packet, cb) => this.onPublish(client, packet, cb),
      authorizeSubscribe: (client, sub, cb) => {
        const session = this.sessions.get(client);
        const kind = session === undefined ? undefined : classifySubscription(session.identity, sub.topic);
        if (session === undefined || kind === undefined) {
          this.logger.warn({ clientId: client.id, topic: sub.topic }, 'subscription refused');
          cb(null, null);
          return;
        }
        session.subscriptions.add(kind);
        this.saveSubscriptions();
        cb(null, { ...sub, qos: kind === 'inputs' ? 1 : 0 });
      },
      // Never forward between clients: edgeHub is not a pub/sub broker.
      authorizeForward: () => null,
    });
    this.patchAckReporting(broker);
    broker.on('ack', (packet, client) => {
      const id = (packet as { messageId?: number } | undefined)?.messageId;
      if (id !== undefined) this.sessions.get(client)?.acked(id);
    });
    broker.on('unsubscribe', (filters, client) => {
      const session = this.sessions.get(client);
      if (session === undefined) return;
      for (const f of filters) {
        const kind = classifySubscription(session.identity, f);
        if (kind !== undefined) session.subscriptions.delete(kind);
      }
      this.saveSubscriptions();
    });
    broker.on('clientReady', (client) => {
      const session = this.sessions.get(client);
      if (session === undefined) return;
      session.detach = this.options.core.attach(session.identity, session);
      this.logger.info({ identity: identityKey(session.identity) }, 'module connected over MQTT');
    });
    broker.on('clientDisconnect', (client) => this.endSession(client));
    broker.on('clientError', (client, err) => {
      this.logger.debug({ clientId: client.id, err: err.message }, 'MQTT client error');
      this.endSession(client);
    });
    this.broker = broker;

    const server = createTlsServer(
      { cert: this.options.certPem, key: this.options.keyPem, minVersion: 'TLSv1.2' },
      (socket) => {
        // PUBACKs are tiny: without noDelay, Nagle + delayed ACK add ~40 ms to each one-at-a-time send.
        socket.setNoDelay(true);
        broker.handle(socket);
        guardMqttPacketSize(socket, MAX_WIRE_FRAME_BYTES, (info) => {
          this.stats.oversizedPackets += 1;
          this.logger.warn(info, 'MQTT packet too large; connection dropped');
        });
      },
    );
    server.on('tlsClientError', (err) => {
      this.stats.tlsErrors += 1;
      this.logger.debug({ err: err.message }, 'TLS handshake failed (TLS only on this port)');
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port ?? 8883, this.options.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.logger.error({ err }, 'MQTT server error'));
    this.server = server;
    this.boundPort = (server.address() as AddressInfo).port;
    this.logger.info({ port: this.boundPort }, 'edgeHub MQTT endpoint listening');
  }

  /** Closes every connection and the listener. */
  async stop(): Promise<void> {
    const server = this.server;
    const broker = this.broker;
    this.server = undefined;
    this.broker = undefined;
    for (const client of [...this.sessions.keys()]) this.endSession(client);
    if (broker !== undefined) await new Promise<void>((resolve) => broker.close(() => resolve()));
    if (server !== undefined) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      await closed;
    }
  }

  private authenticate(
    client: Client,
    username: string | undefined,
    password: Buffer | undefined,
    cb: (error: AuthenticateError | null, success: boolean | null) => void,
  ): void {
    const refuse = (returnCode: number, reason: AuthFailure | 'bad-username' | 'no-password') => {
      if (returnCode === CONNACK_NOT_AUTHORIZED) this.stats.refused.notAuthorized += 1;
      else this.stats.refused.badCredentials += 1;
      // The password (SAS token) is never logged; only why it failed.
      this.logger.warn({ clientId: client.id, reason, returnCode }, 'MQTT connection refused');
      cb(
        Object.assign(new Error(`connection refused: ${reason}`), { returnCode }) as AuthenticateError,
        null,
      );
    };
    const clientId = client.id;
    const parts = clientId.split('/');
    if (parts.length > 2 || parts.some((p) => p === '')) {
      refuse(CONNACK_NOT_AUTHORIZED, 'unknown-identity');
      return;
    }
    const identity: Identity =
      parts.length === 2
        ? { deviceId: parts[0] as string, moduleId: parts[1] as string }
        : { deviceId: clientId };
    const core = this.options.core;
    const hosts = [core.hubHostName, this.options.gatewayHostName].filter(
      (h): h is string => h !== undefined,
    );
    const userOk =
      username !== undefined &&
      hosts.some((h) => username.toLowerCase().startsWith(`${h}/${clientId}/`.toLowerCase()));
    if (!userOk) {
      refuse(CONNACK_BAD_USERNAME_OR_PASSWORD, 'bad-username');
      return;
    }
    if (password === undefined || password.length === 0) {
      refuse(CONNACK_BAD_USERNAME_OR_PASSWORD, 'no-password');
      return;
    }
    const verdict = core.authenticate(identity, password.toString('utf8'));
    if (!verdict.ok) {
      const code =
        verdict.reason === 'unknown-identity' || verdict.reason === 'wrong-resource'
          ? CONNACK_NOT_AUTHORIZED
          : CONNACK_BAD_USERNAME_OR_PASSWORD;
      refuse(code, verdict.reason);
      return;
    }
    const previous = this.sessions.get(client);
    previous?.shutdown();
    this.sessions.set(
      client,
      new Session(
        client,
        identity,
        this.sessionSubscriptions(identity, this.cleanRequested.get(client) ?? true),
        this.options.ackTimeoutInMs ?? 30_000,
        () => {
          this.stats.inputsDelivered += 1;
        },
      ),
    );
    // A connection that dies between CONNACK and 'clientReady' gets no clientDisconnect event.
    client.conn.once('close', () => this.endSession(client));
    cb(null, true);
  }

  private onPublish(client: Client | null, packet: PublishPacket, cb: (error?: Error | null) => void): void {
    const session = client === null ? undefined : this.sessions.get(client);
    if (session === undefined) {
      cb(new Error('publish from an unauthenticated client'));
      return;
    }
    // Nothing is retained or fanned out; the flag would only make aedes keep a copy.
    packet.retain = false;
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
    const event = parseEventTopic(session.identity, packet.topic);
    if (event !== undefined) {
      if (packet.qos === 2) {
        this.logger.warn({ identity: identityKey(session.identity) }, 'QoS 2 is not supported by IoT Hub');
        cb(new Error('QoS 2 not supported'));
        return;
      }
      this.options.core
        .receive(session.identity, { body: payload, properties: event.properties, system: event.system })
        .then(
          () => {
            this.stats.messagesReceived += 1;
            cb(null); // aedes PUBACKs after this: an ack means stored
          },
          (err: unknown) => {
            this.stats.refusedMessageDisconnects += 1;
            this.logger.warn(
              { identity: identityKey(session.identity), err: toError(err).message },
              'message refused; dropping the connection without PUBACK',
            );
            cb(toError(err));
          },
        );
      return;
    }
    const request = parseIotHubTopic(packet.topic);
    if (request === undefined) {
      this.logger.warn(
        { identity: identityKey(session.identity), topic: packet.topic },
        'publish to a foreign topic refused',
      );
      cb(new Error(`publish to ${packet.topic} is not allowed`));
      return;
    }
    try {
      this.handleRequest(session, request, payload);
    } catch (err) {
      this.logger.warn({ err: toError(err).message }, 'IoT Hub request failed');
    }
    cb(null);
  }

  private handleRequest(
    session: Session,
    request: NonNullable<ReturnType<typeof parseIotHubTopic>>,
    body: Buffer,
  ): void {
    const core = this.options.core;
    switch (request.kind) {
      case 'method-response':
        session.methodResponse(request.rid, request.status, body);
        return;
      case 'twin-get': {
        let twin: unknown;
        try {
          twin = core.getTwin(session.identity);
        } catch (err) {
          this.twinError(session, request.rid, 404, toError(err).message);
          return;
        }
        session.write(
          encodePublish(formatTwinResponseTopic(200, request.rid), Buffer.from(JSON.stringify(twin)), 0),
        );
        return;
      }
      case 'twin-patch-reported': {
        let patch: unknown;
        try {
          patch = JSON.parse(body.toString('utf8'));
        } catch {
          this.twinError(session, request.rid, 400, 'reported patch is not JSON');
          return;
        }
        if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) {
          this.twinError(session, request.rid, 400, 'reported patch must be a JSON object');
          return;
        }
        let version: number;
        try {
          version = core.patchReported(session.identity, patch as Record<string, unknown>);
        } catch (err) {
          this.twinError(session, request.rid, 400, toError(err).message);
          return;
        }
        session.write(encodePublish(formatTwinResponseTopic(204, request.rid, version), Buffer.alloc(0), 0));
        return;
      }
    }
  }

  // The SDK ignores the status and fails the request only when the body has an errorCode.
  private twinError(session: Session, rid: string, status: number, message: string): void {
    const body = Buffer.from(JSON.stringify({ errorCode: status * 1000, message }));
    session.write(encodePublish(formatTwinResponseTopic(status, rid), body, 0));
  }

  /**
   * Subscriptions survive reconnects of a `clean: false` session, as on IoT Hub and edgeHub.
   * azure-iot-device-mqtt subscribes again after every reconnect anyway, but raw MQTT modules
   * and other SDKs rely on the session. With a state dir they also survive a runtime restart, as
   * edgeHub keeps sessions in its store.
   */
  private sessionSubscriptions(identity: Identity, clean: boolean): Set<SubscriptionKind> {
    this.loadSubscriptions();
    const key = identityKey(identity);
    let set = this.savedSubscriptions.get(key);
    if (set === undefined || clean) {
      set = new Set();
      this.savedSubscriptions.set(key, set);
      if (clean) this.saveSubscriptions();
    }
    return set;
  }

  private loadSubscriptions(): void {
    if (this.savedSubscriptionsLoaded) return;
    this.savedSubscriptionsLoaded = true;
    const file = this.sessionFile();
    if (file === undefined) return;
    try {
      const parsed = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
      for (const [key, kinds] of Object.entries(parsed)) {
        if (!Array.isArray(kinds)) continue;
        const valid = kinds.filter((k): k is SubscriptionKind =>
          SUBSCRIPTION_KINDS.includes(k as SubscriptionKind),
        );
        this.savedSubscriptions.set(key, new Set(valid));
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        this.logger.warn(
          { err: toError(err).message },
          'MQTT session file unreadable; starting without sessions',
        );
    }
  }

  private saveSubscriptions(): void {
    const file = this.sessionFile();
    if (file === undefined) return;
    const doc = Object.fromEntries([...this.savedSubscriptions].map(([k, v]) => [k, [...v].sort()]));
    try {
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(`${file}.tmp`, `${JSON.stringify(doc)}\n`);
      renameSync(`${file}.tmp`, file);
    } catch (err) {
      this.logger.warn({ err: toError(err).message }, 'cannot save MQTT sessions');
    }
  }

  private sessionFile(): string | undefined {
    return this.options.stateDir === undefined
      ? undefined
      : join(this.options.stateDir, 'edgehub', 'mqtt-sessions.json');
  }

  private endSession(client: Client): void {
    const session = this.sessions.get(client);
    if (session === undefined) return;
    this.sessions.delete(client);
    session.shutdown();
    if (!client.closed) client.close();
    this.logger.info({ identity: identityKey(session.identity) }, 'module disconnected from MQTT');
  }

  // aedes reports PUBACKs through its persistence, which knows nothing of packets we wrote to
  // the socket ourselves (see mqtt-wire.ts) and would report `undefined`. Hand the PUBACK
  // (which carries the packet id) through instead, so the 'ack' event names the id.
  private patchAckReporting(broker: Aedes): void {
    // aedes' typings do not expose `persistence`; its shape is aedes-persistence's documented API.
    const persistence = (broker as unknown as { persistence: Record<string, unknown> }).persistence;
    const original = persistence.outgoingClearMessageId as (
      client: unknown,
      packet: unknown,
    ) => Promise<unknown>;
    persistence.outgoingClearMessageId = async (client: unknown, packet: unknown) =>
      (await original.call(persistence, client, packet)) ?? packet;
  }
}
