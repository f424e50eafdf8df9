import type { AddressInfo, Socket } from 'node:net';
import type { Server as TlsServer } from 'node:tls';
import type {
  AmqpError,
  Message as AmqpMessage,
  Connection,
  Container,
  Delivery,
  EventContext,
  Receiver,
  Sender,
} from 'rhea';
import rhea from 'rhea';
import {
  createLogger,
  EdgePerfError,
  type Logger,
  parseSasToken,
  toError,
} from '../../modules/common/index.js';
import { identityOfResource, type LinkKind, parseLinkAddress } from './amqp-address.js';
import { bodyBytes, toIncomingMessage } from './amqp-message.js';
import { AmqpModuleLink } from './amqp-module-link.js';
import { type HubCore, StoreFullError } from './contracts.js';
import { guardAmqpFrameSize, MAX_WIRE_FRAME_BYTES } from './frame-guard.js';
import { type Identity, identityKey } from './message.js';

/** Options for {@link AmqpEndpoint}. */
export interface AmqpEndpointOptions {
  /** The hub core that verifies tokens, stores messages and owns twins. */
  readonly core: HubCore;
  /** Server private key, PEM. */
  readonly keyPem: string;
  /** Server certificate (chain), PEM; must name the gateway host modules connect to. */
  readonly certPem: string;
  /** Interface to listen on; default `127.0.0.1`. */
  readonly host?: string;
  /** TCP port; default 5671 (amqps); 0 picks a free port (read it from {@link AmqpEndpoint.port}). */
  readonly port?: number;
  /**
   * Gateway host name modules connect to (e.g. `localhost`); only used for {@link AmqpEndpoint.url}.
   * Default `localhost`.
   */
  readonly gatewayHostName?: string;
  /** How long an input delivery waits for the module's disposition, ms; default 30000 (MessageAckTimeoutSecs). */
  readonly ackTimeoutInMs?: number;
  /**
   * Unsettled telemetry messages one sender link may have in flight, i.e. the link credit the
   * endpoint grants; a message's credit comes back only once the core stored it, so a slow store
   * pushes back on the module. Default 1000.
   */
  readonly maxInFlightPerLink?: number;
  /** Largest message accepted, bytes of body; default 262144 (256 KiB, IoT Hub's limit). */
  readonly maxMessageBytes?: number;
  /** Logger; default a child named `edgehub-amqp`. */
  readonly logger?: Logger;
}

const DEFAULTS = {
  host: '127.0.0.1',
  port: 5671,
  ackTimeoutInMs: 30_000,
  maxInFlightPerLink: 1000,
  maxMessageBytes: 256 * 1024,
} as const;

/** Credit kept open on control links (CBS, method responses, twin requests). */
const CONTROL_CREDIT = 100;
const CBS_ADDRESS = '$cbs';
const SAS_TOKEN_TYPE = 'servicebus.windows.net:sastoken';
const MAX_TIMER_MS = 2_147_483_647;

/** Counters of the endpoint, for tests and metrics. */
export interface AmqpEndpointStats {
  /** CBS put-token requests answered 401 (bad signature, expired, unknown identity, …). */
  refusedTokens: number;
  /** Links closed because their identity was not authenticated on the connection. */
  refusedLinks: number;
  /** Telemetry messages stored and accepted. */
  messagesReceived: number;
  /** Telemetry deliveries rejected (store full, too large, core error). */
  messagesRejected: number;
  /** Input messages the module accepted. */
  inputsDelivered: number;
  /** TLS handshakes that failed (plain TCP, untrusted CA, …). */
  tlsErrors: number;
  /** Connections dropped because a frame announced more than the advertised max-frame-size. */
  oversizedFrames: number;
}

type LinkRole =
  | { readonly kind: 'cbs' }
  | { readonly kind: Exclude<LinkKind, 'devicebound'>; readonly identity: Identity; readonly key: string };

interface AuthEntry {
  readonly identity: Identity;
  expiryTimer: NodeJS.Timeout | undefined;
  readonly moduleLink: AmqpModuleLink | undefined;
  readonly detach: (() => void) | undefined;
}

interface ConnectionState {
  readonly id: number;
  readonly connection: Connection;
  readonly auth: Map<string, AuthEntry>;
  readonly links: Map<Sender | Receiver, LinkRole>;
  cbsSender: Sender | undefined;
  closed: boolean;
}

type ServerState =
  | { readonly phase: 'idle' }
  | {
      readonly phase: 'running';
      readonly server: TlsServer;
      readonly container: Container;
      readonly port: number;
      readonly sockets: Set<Socket>;
    }
  | { readonly phase: 'stopped' };

/**
 * The local edgeHub's AMQP 1.0 endpoint (amqps, edge-facts §7), serving unmodified
 * azure-iot-device-amqp clients:
 * - CBS `put-token` on `$cbs`: the SAS token names the identity (`sr=host/devices/d/modules/m`)
 *   and is verified by {@link HubCore.authenticate}; the reply carries `status-code` 200 or 401.
 *   Links are only accepted for identities authenticated on the same connection; a token that
 *   expires or is refused on renewal closes that identity's links with `amqp:unauthorized-access`.
 * - Telemetry/outputs on `/devices/{d}[/modules/{m}]/messages/events` go to {@link HubCore.receive};
 *   a delivery is accepted only once the core stored it. A full store *rejects* the delivery with
 *   `amqp:resource-limit-exceeded` (the SDK fails the send with that error); it is never
 *   *released*, because the Node SDK treats a released delivery as sent and would lose it.
 * - Modules get an {@link AmqpModuleLink} registered with {@link HubCore.attach}: inputs on their
 *   receiver link on `…/messages/events` (annotation `x-opt-input-name`), direct methods on
 *   `…/methods/devicebound`, twin on `…/twin`.
 *
 * Not served: leaf-device C2D (`/devices/{d}/messages/devicebound`), device twin/methods, AMQP
 * over WebSockets, X.509 client authentication.
 */
export class AmqpEndpoint {
  /** Live counters; never reset. */
  readonly stats: AmqpEndpointStats = {
    refusedTokens: 0,
    refusedLinks: 0,
    messagesReceived: 0,
    messagesRejected: 0,
    inputsDelivered: 0,
    tlsErrors: 0,
    oversizedFrames: 0,
  };
  private readonly options: AmqpEndpointOptions;
  private readonly logger: Logger;
  private readonly connections = new Map<Connection, ConnectionState>();
  private state: ServerState = { phase: 'idle' };
  private nextConnectionId = 1;

  constructor(options: AmqpEndpointOptions) {
    this.options = options;
    this.logger = options.logger ?? createLogger('edgehub-amqp');
  }

  /**
   * The bound TCP port.
   * @throws EdgePerfError `E_NOT_STARTED` before {@link start} resolved.
   */
  get port(): number {
    if (this.state.phase !== 'running')
      throw new EdgePerfError('E_NOT_STARTED', 'AMQP endpoint is not running');
    return this.state.port;
  }

  /**
   * `amqps://{gatewayHostName}:{port}` for display (the `--json` ready line).
   * @throws EdgePerfError `E_NOT_STARTED` before {@link start} resolved.
   */
  get url(): string {
    return `amqps://${this.options.gatewayHostName ?? 'localhost'}:${this.port}`;
  }

  /** Open AMQP connections. */
  get connectionCount(): number {
    return this.connections.size;
  }

  /**
   * Starts listening.
   * @throws EdgePerfError `E_LISTEN` when the port cannot be bound (in use, no permission),
   *   `E_STATE` when already started or stopped.
   */
  async start(): Promise<void> {
    if (this.state.phase !== 'idle')
      throw new EdgePerfError('E_STATE', `AMQP endpoint is ${this.state.phase}`);
    const host = this.options.host ?? DEFAULTS.host;
    const requestedPort = this.options.port ?? DEFAULTS.port;
    const container = rhea.create_container({ id: 'edgehub-amqp' });
    this.wire(container);
    const sockets = new Set<Socket>();
    // Manual settlement and manual credit on every link we receive on (see maxInFlightPerLink).
    const server = container.listen({
      transport: 'tls',
      host,
      port: requestedPort,
      key: this.options.keyPem,
      cert: this.options.certPem,
      autoaccept: false,
      credit_window: 0,
      // Dispositions are tiny writes: without this, Nagle + delayed ACK cost ~40 ms per message
      // to a module that awaits each send (measured: 42 msg/s one-at-a-time).
      tcp_no_delay: true,
      // Advertised in OPEN and enforced by guardAmqpFrameSize: rhea itself buffers any size.
      max_frame_size: MAX_WIRE_FRAME_BYTES,
    } as Parameters<Container['listen']>[0]) as unknown as TlsServer;
    server.on('secureConnection', (socket: Socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
      guardAmqpFrameSize(socket, MAX_WIRE_FRAME_BYTES, (info) => {
        this.stats.oversizedFrames += 1;
        this.logger.warn(info, 'AMQP frame larger than max-frame-size; connection dropped');
      });
    });
    server.on('tlsClientError', (err: Error) => {
      this.stats.tlsErrors += 1;
      this.logger.debug({ err: err.message }, 'TLS handshake failed');
    });
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => {
        server.off('listening', onListening);
        reject(
          new EdgePerfError(
            'E_LISTEN',
            `AMQP endpoint cannot listen on ${host}:${requestedPort}: ${err.message}`,
            { cause: err },
          ),
        );
      };
      const onListening = () => {
        server.off('error', onError);
        resolve();
      };
      server.once('error', onError);
      server.once('listening', onListening);
    });
    server.on('error', (err: Error) => this.logger.error({ err: err.message }, 'AMQP server error'));
    const port = (server.address() as AddressInfo).port;
    this.state = { phase: 'running', server, container, port, sockets };
    this.logger.info({ host, port }, 'AMQP endpoint listening');
  }

  /**
   * Closes every connection (AMQP close, then the socket after `graceMs`) and stops listening.
   * Pending input deliveries and method calls fail with `E_NOT_CONNECTED`. Idempotent.
   * @param graceMs - how long connections get to answer the AMQP close, ms; default 500.
   */
  async stop(graceMs = 500): Promise<void> {
    const state = this.state;
    if (state.phase !== 'running') {
      this.state = { phase: 'stopped' };
      return;
    }
    this.state = { phase: 'stopped' };
    const closed = new Promise<void>((resolve) => state.server.close(() => resolve()));
    for (const conn of [...this.connections.values()]) {
      this.teardown(conn, 'edgeHub stopping');
      try {
        conn.connection.close({ condition: 'amqp:connection:forced', description: 'edgeHub stopping' });
      } catch {
        // The socket may already be gone; destroying it below is enough.
      }
    }
    const deadline = Date.now() + graceMs;
    while (state.sockets.size > 0 && Date.now() < deadline) await delay(20);
    for (const socket of state.sockets) socket.destroy();
    await closed;
    this.connections.clear();
    state.container.removeAllListeners();
    this.logger.info('AMQP endpoint stopped');
  }

  private wire(container: Container): void {
    container.on('connection_open', (ctx: EventContext) => {
      const s = this.stateOf(ctx.connection);
      this.logger.debug({ conn: s.id }, 'AMQP connection open');
    });
    container.on('sender_open', (ctx: EventContext) =>
      this.guard('sender_open', () => this.onSenderOpen(ctx)),
    );
    container.on('receiver_open', (ctx: EventContext) =>
      this.guard('receiver_open', () => this.onReceiverOpen(ctx)),
    );
    container.on('message', (ctx: EventContext) => this.guard('message', () => this.onMessage(ctx)));
    for (const outcome of ['accepted', 'rejected', 'released', 'modified'] as const) {
      container.on(outcome, (ctx: EventContext) => this.guard(outcome, () => this.onOutcome(ctx, outcome)));
    }
    container.on('sendable', (ctx: EventContext) => this.guard('sendable', () => this.onSendable(ctx)));
    container.on('sender_close', (ctx: EventContext) =>
      this.guard('sender_close', () => this.onLinkClose(ctx)),
    );
    container.on('receiver_close', (ctx: EventContext) =>
      this.guard('receiver_close', () => this.onLinkClose(ctx)),
    );
    // Errors a client indicates when it detaches; the matching *_close event follows.
    for (const ev of ['sender_error', 'receiver_error', 'session_error', 'connection_error'] as const) {
      container.on(ev, (ctx: EventContext) => {
        const link = ctx.sender ?? ctx.receiver;
        const err = link?.error ?? ctx.session?.error ?? ctx.connection.error;
        this.logger.debug(
          { conn: this.connections.get(ctx.connection)?.id, event: ev, err: describe(err) },
          'peer error',
        );
      });
    }
    container.on('connection_close', (ctx: EventContext) =>
      this.onConnectionGone(ctx.connection, 'closed by peer'),
    );
    container.on('disconnected', (ctx: EventContext) =>
      this.onConnectionGone(ctx.connection, describe(ctx.error) ?? 'socket closed'),
    );
    container.on('error', (err: unknown) => this.logger.warn({ err: describe(err) }, 'AMQP protocol error'));
  }

  /** Runs an event handler so that a bug in one event never takes the endpoint down. */
  private guard(event: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.logger.error({ event, err: toError(err).message }, 'AMQP event handler failed');
    }
  }

  private stateOf(connection: Connection): ConnectionState {
    let s = this.connections.get(connection);
    if (s === undefined) {
      s = {
        id: this.nextConnectionId++,
        connection,
        auth: new Map(),
        links: new Map(),
        cbsSender: undefined,
        closed: false,
      };
      this.connections.set(connection, s);
    }
    return s;
  }

  /** The client opened a receiver: we send on it (CBS replies, inputs, method requests, twin replies). */
  private onSenderOpen(ctx: EventContext): void {
    const sender = ctx.sender as Sender;
    const conn = this.stateOf(ctx.connection);
    const address = sender.source?.address;
    echoTerminus(sender);
    if (address === CBS_ADDRESS) {
      conn.cbsSender = sender;
      conn.links.set(sender, { kind: 'cbs' });
      return;
    }
    const role = this.authorizeLink(conn, sender, address);
    if (role === undefined) return;
    const link = conn.auth.get(role.key)?.moduleLink;
    if (link === undefined) {
      refuse(sender, 'amqp:not-implemented', `no ${role.kind} link for device ${role.identity.deviceId}`);
      return;
    }
    conn.links.set(sender, role);
    link.addSender(role.kind, sender);
    this.logger.debug({ conn: conn.id, module: role.key, link: role.kind }, 'module receiver link attached');
  }

  /** The client opened a sender: we receive on it (CBS requests, telemetry, method responses, twin requests). */
  private onReceiverOpen(ctx: EventContext): void {
    const receiver = ctx.receiver as Receiver;
    const conn = this.stateOf(ctx.connection);
    const address = receiver.target?.address;
    echoTerminus(receiver);
    if (address === CBS_ADDRESS) {
      conn.links.set(receiver, { kind: 'cbs' });
      receiver.add_credit(CONTROL_CREDIT);
      return;
    }
    const role = this.authorizeLink(conn, receiver, address);
    if (role === undefined) return;
    if (role.kind === 'events') {
      conn.links.set(receiver, role);
      receiver.add_credit(this.options.maxInFlightPerLink ?? DEFAULTS.maxInFlightPerLink);
      return;
    }
    const link = conn.auth.get(role.key)?.moduleLink;
    if (link === undefined) {
      refuse(receiver, 'amqp:not-implemented', `no ${role.kind} link for device ${role.identity.deviceId}`);
      return;
    }
    conn.links.set(receiver, role);
    link.addReceiver(role.kind, receiver);
    receiver.add_credit(CONTROL_CREDIT);
    this.logger.debug({ conn: conn.id, module: role.key, link: role.kind }, 'module sender link attached');
  }

  /** Checks a link's address names an identity authenticated on this connection; refuses it otherwise. */
  private authorizeLink(
    conn: ConnectionState,
    link: Sender | Receiver,
    address: string | undefined,
  ): Extract<LinkRole, { identity: Identity }> | undefined {
    const parsed = parseLinkAddress(address);
    if (parsed === undefined) {
      refuse(link, 'amqp:not-found', `unknown address ${String(address)}`);
      return undefined;
    }
    const key = identityKey(parsed.identity);
    if (!conn.auth.has(key)) {
      this.stats.refusedLinks += 1;
      this.logger.warn(
        { conn: conn.id, identity: key, address },
        'link refused: identity not authenticated on this connection',
      );
      refuse(
        link,
        'amqp:unauthorized-access',
        `${key} is not authorized on this connection (put a token on $cbs first)`,
      );
      return undefined;
    }
    if (parsed.kind === 'devicebound') {
      refuse(link, 'amqp:not-implemented', 'cloud-to-device messages are not served by the local edgeHub');
      return undefined;
    }
    return { kind: parsed.kind, identity: parsed.identity, key };
  }

  private onMessage(ctx: EventContext): void {
    const receiver = ctx.receiver as Receiver;
    const delivery = ctx.delivery as Delivery;
    const conn = this.connections.get(ctx.connection);
    const role = conn?.links.get(receiver);
    if (conn === undefined || role === undefined) {
      delivery.reject({ condition: 'amqp:not-found', description: 'link is not attached' });
      return;
    }
    if (role.kind === 'cbs') {
      delivery.accept();
      receiver.add_credit(1);
      this.onPutToken(conn, ctx.message);
      return;
    }
    if (role.kind === 'events') {
      this.onTelemetry(conn, role.identity, ctx);
      return;
    }
    const link = conn.auth.get(role.key)?.moduleLink;
    if (role.kind === 'methods') link?.onMethodResponse(ctx);
    else link?.onTwinRequest(ctx);
    if (link === undefined) delivery.release();
    receiver.add_credit(1);
  }

  /** Telemetry/output: accept only once the core stored it; credit comes back after settling. */
  private onTelemetry(conn: ConnectionState, sender: Identity, ctx: EventContext): void {
    const receiver = ctx.receiver as Receiver;
    const delivery = ctx.delivery as Delivery;
    // Runs inside promise callbacks too: guarded so a gone connection cannot become an unhandled rejection.
    const settle = (error?: AmqpError): void =>
      this.guard('settle', () => {
        if (error === undefined) {
          this.stats.messagesReceived += 1;
          delivery.accept();
        } else {
          this.stats.messagesRejected += 1;
          delivery.reject(error);
        }
        if (receiver.is_open()) receiver.add_credit(1);
      });
    const msg = ctx.message;
    if (msg === undefined) {
      settle({ condition: 'amqp:decode-error', description: 'message could not be decoded' });
      return;
    }
    const incoming = toIncomingMessage(msg);
    const max = this.options.maxMessageBytes ?? DEFAULTS.maxMessageBytes;
    if (incoming.body.length > max) {
      settle({
        condition: 'amqp:link:message-size-exceeded',
        description: `message body is ${incoming.body.length} bytes; the limit is ${max}`,
      });
      return;
    }
    this.options.core.receive(sender, incoming).then(
      () => settle(),
      (err: unknown) => {
        const error = toError(err);
        if (error instanceof StoreFullError) {
          this.logger.warn(
            { conn: conn.id, sender: identityKey(sender) },
            `message rejected: ${error.message}`,
          );
          settle({ condition: 'amqp:resource-limit-exceeded', description: error.message });
        } else {
          this.logger.error(
            { conn: conn.id, sender: identityKey(sender), err: error.message },
            'core refused a message',
          );
          settle({ condition: 'amqp:internal-error', description: error.message });
        }
      },
    );
  }

  /** CBS put-token (azure-iot-amqp-base ClaimsBasedSecurityAgent): verify, remember, reply. */
  private onPutToken(conn: ConnectionState, msg: AmqpMessage | undefined): void {
    if (msg === undefined) return;
    const props = msg.application_properties ?? {};
    const reply = (status: number, description: string): void => {
      const sender = conn.cbsSender;
      if (sender === undefined || !sender.is_open()) {
        this.logger.warn({ conn: conn.id }, 'put-token without a $cbs reply link');
        return;
      }
      const out: AmqpMessage = {
        body: undefined,
        application_properties: { 'status-code': status, 'status-description': description },
      };
      if (msg.reply_to !== undefined) out.to = msg.reply_to;
      if (msg.message_id !== undefined) out.correlation_id = msg.message_id;
      sender.send(out);
    };
    if (props.operation !== 'put-token') {
      reply(400, `unsupported CBS operation ${String(props.operation)}`);
      return;
    }
    if (props.type !== SAS_TOKEN_TYPE) {
      reply(400, `unsupported token type ${String(props.type)}; expected ${SAS_TOKEN_TYPE}`);
      return;
    }
    const token = typeof msg.body === 'string' ? msg.body : bodyBytes(msg.body).toString('utf8');
    const parsed = parseSasToken(token);
    const identity = parsed === undefined ? undefined : identityOfResource(parsed.resourceUri);
    if (parsed === undefined || identity === undefined) {
      this.stats.refusedTokens += 1;
      this.logger.warn({ conn: conn.id, audience: String(props.name) }, 'put-token refused: malformed token');
      reply(401, 'Unauthorized: malformed token');
      return;
    }
    const key = identityKey(identity);
    let verdict = this.options.core.authenticate(identity, token);
    if (verdict.ok && !sameAudience(String(props.name ?? ''), parsed.resourceUri)) {
      verdict = { ok: false, reason: 'wrong-resource' };
    }
    if (!verdict.ok) {
      // Never the token itself: the resource and expiry are enough to diagnose.
      this.logger.warn(
        {
          conn: conn.id,
          identity: key,
          reason: verdict.reason,
          resource: parsed.resourceUri,
          expiry: parsed.expiry,
        },
        'put-token refused',
      );
      this.stats.refusedTokens += 1;
      this.revoke(conn, key, 'amqp:unauthorized-access', `token refused: ${verdict.reason}`);
      reply(401, `Unauthorized: ${verdict.reason}`);
      return;
    }
    if (this.grant(conn, identity, parsed.expiry))
      this.logger.info({ conn: conn.id, identity: key, expiry: parsed.expiry }, 'authenticated');
    else this.logger.debug({ conn: conn.id, identity: key, expiry: parsed.expiry }, 'token renewed');
    reply(200, 'OK');
  }

  /**
   * Remembers an authenticated identity until its token expires; attaches modules to the core.
   * Returns true for a new identity, false for a renewal.
   */
  private grant(conn: ConnectionState, identity: Identity, expirySecs: number): boolean {
    const key = identityKey(identity);
    let entry = conn.auth.get(key);
    const fresh = entry === undefined;
    if (entry === undefined) {
      let moduleLink: AmqpModuleLink | undefined;
      let detach: (() => void) | undefined;
      if (identity.moduleId !== undefined) {
        const link = new AmqpModuleLink({
          identity,
          core: this.options.core,
          inputAckTimeoutMs: this.options.ackTimeoutInMs ?? DEFAULTS.ackTimeoutInMs,
          logger: this.logger,
          onCloseRequested: (reason) => this.replaced(conn, key, reason),
        });
        moduleLink = link;
        detach = this.options.core.attach(identity, link);
      }
      entry = { identity, expiryTimer: undefined, moduleLink, detach };
      conn.auth.set(key, entry);
    }
    if (entry.expiryTimer !== undefined) clearTimeout(entry.expiryTimer);
    const ms = Math.min(Math.max(expirySecs * 1000 - Date.now(), 0), MAX_TIMER_MS);
    entry.expiryTimer = setTimeout(() => {
      this.logger.warn({ conn: conn.id, identity: key }, 'token expired without renewal; closing its links');
      this.revoke(conn, key, 'amqp:unauthorized-access', 'token expired');
    }, ms);
    entry.expiryTimer.unref();
    return fresh;
  }

  /** Forgets an identity on a connection, closes its links with `condition`, detaches it from the core. */
  private revoke(
    conn: ConnectionState,
    key: string,
    condition: string,
    description: string,
    detach = true,
  ): void {
    const entry = conn.auth.get(key);
    if (entry === undefined) return;
    conn.auth.delete(key);
    if (entry.expiryTimer !== undefined) clearTimeout(entry.expiryTimer);
    for (const [link, role] of conn.links) {
      if (role.kind === 'cbs' || role.key !== key) continue;
      conn.links.delete(link);
      refuse(link, condition, description);
    }
    entry.moduleLink?.shutdown(description);
    if (detach) entry.detach?.();
  }

  /** The core replaced this module's link with a newer connection's: drop ours as IoT Hub does. */
  private replaced(conn: ConnectionState, key: string, reason: string): void {
    // The core already holds the new link: detaching ours could remove it.
    this.revoke(conn, key, 'amqp:link:stolen', reason, false);
    if (conn.auth.size === 0 && !conn.closed) {
      conn.closed = true;
      this.teardown(conn, reason);
      try {
        conn.connection.close({ condition: 'amqp:link:stolen', description: reason });
      } catch (err) {
        this.logger.debug(
          { conn: conn.id, err: toError(err).message },
          'closing a replaced connection failed',
        );
      }
    }
  }

  private onOutcome(ctx: EventContext, outcome: 'accepted' | 'rejected' | 'released' | 'modified'): void {
    const conn = this.connections.get(ctx.connection);
    const sender = ctx.sender;
    if (conn === undefined || sender === undefined || ctx.delivery === undefined) return;
    const role = conn.links.get(sender);
    if (role === undefined || role.kind === 'cbs') return;
    const link = conn.auth.get(role.key)?.moduleLink;
    if (link?.settled(ctx.delivery, outcome) === true && outcome === 'accepted')
      this.stats.inputsDelivered += 1;
  }

  private onSendable(ctx: EventContext): void {
    const conn = this.connections.get(ctx.connection);
    const sender = ctx.sender;
    if (conn === undefined || sender === undefined) return;
    const role = conn.links.get(sender);
    if (role === undefined || role.kind === 'cbs') return;
    conn.auth.get(role.key)?.moduleLink?.flush(sender);
  }

  private onLinkClose(ctx: EventContext): void {
    const conn = this.connections.get(ctx.connection);
    const link = ctx.sender ?? ctx.receiver;
    if (conn === undefined || link === undefined) return;
    const role = conn.links.get(link);
    if (role === undefined) return;
    conn.links.delete(link);
    if (role.kind === 'cbs') {
      if (link === conn.cbsSender) conn.cbsSender = undefined;
      return;
    }
    conn.auth.get(role.key)?.moduleLink?.linkClosed(link);
  }

  private onConnectionGone(connection: Connection, reason: string): void {
    const conn = this.connections.get(connection);
    if (conn === undefined) return;
    this.teardown(conn, reason);
    this.connections.delete(connection);
    this.logger.debug({ conn: conn.id, reason }, 'AMQP connection gone');
  }

  /** Detaches every identity of a connection from the core and fails what waited on it. */
  private teardown(conn: ConnectionState, reason: string): void {
    conn.closed = true;
    for (const [key, entry] of [...conn.auth]) {
      conn.auth.delete(key);
      if (entry.expiryTimer !== undefined) clearTimeout(entry.expiryTimer);
      entry.moduleLink?.shutdown(reason);
      entry.detach?.();
    }
    conn.links.clear();
    conn.cbsSender = undefined;
  }
}

/** Echoes the peer's source and target so the client sees its attach accepted (null would mean refused). */
function echoTerminus(link: Sender | Receiver): void {
  const source = link.source?.address;
  const target = link.target?.address;
  if (source !== undefined) link.set_source({ address: source });
  if (target !== undefined) link.set_target({ address: target });
}

/** Closes a link with an AMQP error (after rhea already answered the attach). */
function refuse(link: Sender | Receiver, condition: string, description: string): void {
  try {
    link.close({ condition, description });
  } catch {
    // Link already gone with its connection.
  }
}

/** The CBS audience the client named must be the token's own resource. */
function sameAudience(audience: string, resourceUri: string): boolean {
  let decoded = audience;
  try {
    decoded = decodeURIComponent(audience);
  } catch {
    // Keep it as given.
  }
  const norm = (s: string) => s.toLowerCase().replace(/\/+$/, '');
  return norm(decoded) === norm(resourceUri);
}

function describe(err: unknown): string | undefined {
  if (err === undefined || err === null) return undefined;
  if (err instanceof Error) return err.message;
  if (typeof err === 'object') {
    const e = err as { condition?: unknown; description?: unknown };
    return `${String(e.condition)}: ${String(e.description)}`;
  }
  return String(err);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
