import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import {
  createLogger,
  EdgePerfError,
  formatConnectionString,
  type Logger,
  toError,
} from '../../modules/common/index.js';
import { authorizeServiceRequest } from './rest-auth.js';
import {
  type ConfigurationContent,
  IotHubRestError,
  type IotHubServiceBackend,
  type MethodInvocation,
  type TwinPatch,
} from './rest-backend.js';

/** Direct-method payload limit (edge-facts §9). */
export const METHOD_PAYLOAD_MAX_BYTES = 128 * 1024;
/** Desired-properties size limit of a twin patch (edge-facts §9). */
export const TWIN_DESIRED_MAX_BYTES = 32 * 1024;
/** Largest request body read; deployment manifests are the biggest bodies. */
export const REQUEST_BODY_MAX_BYTES = 1024 * 1024;
// Past the limit the body is drained (so the client can read the 413) up to this much, then cut.
const DRAIN_MAX_BYTES = 16 * 1024 * 1024;

/** Options for {@link IotHubRestServer}. */
export interface IotHubRestServerOptions {
  /** Answers registry, twin, method and configuration calls. */
  readonly backend: IotHubServiceBackend;
  /** Server certificate (PEM), signed by the runtime CA; must name the host clients use (localhost). */
  readonly certPem: string | Buffer;
  /** Private key of {@link IotHubRestServerOptions.certPem} (PEM). */
  readonly keyPem: string | Buffer;
  /** Interface to listen on; default `127.0.0.1`. */
  readonly host?: string;
  /** TCP port; default 443; 0 picks a free port (read {@link IotHubRestServer.port} after start). */
  readonly port?: number;
  /**
   * Hub host name clients put in `HostName=` (without port); default `localhost`. Service tokens
   * must be signed for it, or for `{hubHostName}:{port}` (what azure-iothub signs when the
   * connection string carries a port).
   */
  readonly hubHostName?: string;
  /** Logger; default a child named `iothub-rest`. */
  readonly logger?: Logger;
}

interface Route {
  readonly name: string;
  readonly method: string;
  readonly pattern: readonly (string | null)[]; // null = a path parameter
  readonly handle: (ctx: RequestContext) => Promise<Reply>;
}

interface RequestContext {
  readonly req: IncomingMessage;
  readonly params: readonly string[];
  readonly body: Buffer;
  /** Aborted when the client goes away or the server stops. */
  readonly signal: AbortSignal;
}

interface Reply {
  readonly status: number;
  /** JSON body; for errors, the message. */
  readonly body?: unknown;
  readonly etag?: string;
  /** Set for errors: the IoT Hub error code. */
  readonly errorCode?: string;
}

/**
 * The IoT Hub service REST API that azure-iothub 1.16 (api-version 2021-04-12) calls, over
 * HTTPS on loopback: direct methods on modules and devices, module identities and twins, and
 * `applyConfigurationContent`. Each request is authenticated with a service SAS token.
 *
 * Connection recipe (verified against azure-iothub 1.16.6 on Node 20, see rest-client-agent.ts):
 * the SDK always connects to `{HostName}:443` and Node does not split `host:port`. Either listen
 * on port 443 and hand out `HostName=localhost` (any unmodified process then works when started
 * with `NODE_EXTRA_CA_CERTS={runtime ca.pem}`), or hand out `HostName=localhost:PORT` and attach
 * the agent from `createLocalHubAgent({ caPem })` with `useLocalHubAgent(client, agent)`.
 *
 * Bad requests get IoT Hub-shaped errors (`{"Message":"ErrorCode:X;…","ExceptionMessage":…}` and
 * an `iothub-errorcode` header); a failing backend never takes the server down.
 */
export class IotHubRestServer {
  private readonly backend: IotHubServiceBackend;
  private readonly certPem: string | Buffer;
  private readonly keyPem: string | Buffer;
  private readonly host: string;
  private readonly requestedPort: number;
  private readonly hubHostName: string;
  private readonly log: Logger;
  private readonly routes: readonly Route[];
  private readonly inFlight = new Set<AbortController>();
  private server: Server | undefined;
  private boundPort: number | undefined;

  constructor(options: IotHubRestServerOptions) {
    this.backend = options.backend;
    this.certPem = options.certPem;
    this.keyPem = options.keyPem;
    this.host = options.host ?? '127.0.0.1';
    this.requestedPort = options.port ?? 443;
    this.hubHostName = options.hubHostName ?? 'localhost';
    this.log = options.logger ?? createLogger('iothub-rest');
    this.routes = this.buildRoutes();
  }

  /**
   * Listens. Resolves with the bound port.
   * @throws EdgePerfError `E_IOTHUB_LISTEN` when the port cannot be bound (in use, privileged).
   */
  async start(): Promise<number> {
    if (this.server !== undefined)
      throw new EdgePerfError('E_IOTHUB_STATE', 'IoT Hub REST server already started');
    const server = createServer({ cert: this.certPem, key: this.keyPem }, (req, res) => {
      this.handle(req, res).catch((err: unknown) => this.onHandlerFailure(res, err));
    });
    // Malformed HTTP or a failed TLS handshake concerns one socket only.
    server.on('clientError', (err, socket) => {
      this.log.debug({ err: err.message }, 'bad client request');
      socket.destroy();
    });
    server.on('tlsClientError', (err) => this.log.debug({ err: err.message }, 'TLS handshake failed'));
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => {
        reject(
          new EdgePerfError(
            'E_IOTHUB_LISTEN',
            `IoT Hub REST server cannot listen on ${this.host}:${this.requestedPort}: ${err.message}`,
            { cause: err },
          ),
        );
      };
      server.once('error', onError);
      server.listen(this.requestedPort, this.host, () => {
        server.off('error', onError);
        resolve();
      });
    });
    server.on('error', (err) => this.log.error({ err: err.message }, 'IoT Hub REST server error'));
    this.server = server;
    this.boundPort = (server.address() as AddressInfo).port;
    this.log.info({ host: this.host, port: this.boundPort }, 'IoT Hub service REST API listening');
    return this.boundPort;
  }

  /** Stops listening, answers pending method calls with 503 and closes every connection. */
  async stop(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    for (const controller of this.inFlight) {
      controller.abort(new IotHubRestError(503, 'ServiceUnavailable', 'the local IoT Hub is stopping'));
    }
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    // azure-iothub keeps sockets alive; close() alone would wait for them to idle out.
    server.closeIdleConnections();
    setImmediate(() => server.closeAllConnections());
    await closed;
  }

  /**
   * The bound port.
   * @throws EdgePerfError `E_IOTHUB_STATE` before {@link IotHubRestServer.start} resolved.
   */
  get port(): number {
    if (this.boundPort === undefined)
      throw new EdgePerfError('E_IOTHUB_STATE', 'IoT Hub REST server not started');
    return this.boundPort;
  }

  /**
   * The service connection string for a policy:
   * `HostName={hubHostName}[:{port}];SharedAccessKeyName={policy};SharedAccessKey={key}`
   * (the port is left out when it is 443). Use it with {@link useLocalHubAgent} unless the port is 443.
   */
  serviceConnectionString(policyName: string, key: string): string {
    const port = this.port;
    return formatConnectionString({
      HostName: port === 443 ? this.hubHostName : `${this.hubHostName}:${port}`,
      SharedAccessKeyName: policyName,
      SharedAccessKey: key,
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const startedAt = Date.now();
    const url = new URL(req.url ?? '/', 'https://local');
    const method = (req.method ?? 'GET').toUpperCase();
    let reply: Reply;
    try {
      reply = await this.dispatch(req, res, url, method);
    } catch (err) {
      reply = this.errorReply(err);
    }
    if (!res.headersSent && !res.destroyed) writeReply(res, reply);
    this.log.debug(
      { method, path: url.pathname, status: reply.status, durationMs: Date.now() - startedAt },
      'service request',
    );
  }

  private async dispatch(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    method: string,
  ): Promise<Reply> {
    const segments = splitPath(url.pathname);
    const matching = this.routes.filter((r) => matches(r.pattern, segments));
    if (matching.length === 0) {
      drain(req);
      throw new IotHubRestError(404, 'NotFound', `no such API: ${method} ${url.pathname}`);
    }
    const route = matching.find((r) => r.method === method);
    if (route === undefined) {
      drain(req);
      throw new IotHubRestError(
        405,
        'InvalidOperation',
        `${method} is not supported on ${url.pathname}; use ${matching.map((r) => r.method).join(' or ')}`,
      );
    }
    try {
      authorizeServiceRequest(req.headers.authorization, this.acceptedResources(), (name) =>
        this.backend.policyKey(name),
      );
    } catch (err) {
      drain(req);
      throw err;
    }
    if (!url.searchParams.has('api-version')) {
      drain(req);
      throw new IotHubRestError(400, 'ArgumentInvalid', 'the api-version query parameter is required');
    }
    const body = await readBody(req);
    const params = segments.filter((_, i) => route.pattern[i] === null);
    const controller = new AbortController();
    this.inFlight.add(controller);
    const onClose = (): void => {
      if (!res.writableFinished)
        controller.abort(new IotHubRestError(499, 'ClientClosedRequest', 'client went away'));
    };
    res.once('close', onClose);
    try {
      return await route.handle({ req, params, body, signal: controller.signal });
    } finally {
      res.off('close', onClose);
      this.inFlight.delete(controller);
    }
  }

  private acceptedResources(): string[] {
    return [this.hubHostName, `${this.hubHostName}:${this.boundPort ?? this.requestedPort}`];
  }

  private buildRoutes(): Route[] {
    const b = this.backend;
    return [
      {
        name: 'invokeModuleMethod',
        method: 'POST',
        pattern: ['twins', null, 'modules', null, 'methods'],
        handle: (ctx) => this.invokeMethod(ctx, ctx.params[0] as string, ctx.params[1] as string),
      },
      {
        name: 'invokeDeviceMethod',
        method: 'POST',
        pattern: ['twins', null, 'methods'],
        handle: (ctx) => this.invokeMethod(ctx, ctx.params[0] as string, undefined),
      },
      {
        name: 'getModuleTwin',
        method: 'GET',
        pattern: ['twins', null, 'modules', null],
        handle: async ({ params: [d = '', m = ''] }) => {
          const twin = await b.getModuleTwin(d, m);
          if (twin === undefined) throw IotHubRestError.moduleNotFound(d, m);
          return { status: 200, body: twin, etag: twin.etag };
        },
      },
      {
        name: 'updateModuleTwin',
        method: 'PATCH',
        pattern: ['twins', null, 'modules', null],
        handle: async ({ req, body, params: [d = '', m = ''] }) => {
          const patch = parseTwinPatch(body);
          const twin = await b.updateModuleTwin(d, m, patch, ifMatchOf(req));
          if (twin === undefined) throw IotHubRestError.moduleNotFound(d, m);
          return { status: 200, body: twin, etag: twin.etag };
        },
      },
      {
        name: 'getDeviceTwin',
        method: 'GET',
        pattern: ['twins', null],
        handle: async ({ params: [d = ''] }) => {
          const twin = b.getDeviceTwin === undefined ? undefined : await b.getDeviceTwin(d);
          if (twin === undefined) throw IotHubRestError.deviceNotFound(d);
          return { status: 200, body: twin, etag: twin.etag };
        },
      },
      {
        name: 'getDevice',
        method: 'GET',
        pattern: ['devices', null],
        handle: async ({ params: [d = ''] }) => {
          const device = b.getDevice === undefined ? undefined : await b.getDevice(d);
          if (device === undefined) throw IotHubRestError.deviceNotFound(d);
          return { status: 200, body: device, ...etagOf(device) };
        },
      },
      {
        name: 'listModules',
        method: 'GET',
        pattern: ['devices', null, 'modules'],
        handle: async ({ params: [d = ''] }) => {
          const modules = await b.listModules(d);
          if (modules === undefined) throw IotHubRestError.deviceNotFound(d);
          return { status: 200, body: modules };
        },
      },
      {
        name: 'getModule',
        method: 'GET',
        pattern: ['devices', null, 'modules', null],
        handle: async ({ params: [d = '', m = ''] }) => {
          const module = await b.getModule(d, m);
          if (module === undefined) throw IotHubRestError.moduleNotFound(d, m);
          return { status: 200, body: module, ...etagOf(module) };
        },
      },
      {
        name: 'applyConfigurationContent',
        method: 'POST',
        pattern: ['devices', null, 'applyConfigurationContent'],
        handle: async ({ body, params: [d = ''] }) => {
          await b.applyConfigurationContent(d, parseConfigurationContent(body));
          return { status: 204 };
        },
      },
    ];
  }

  private async invokeMethod(
    ctx: RequestContext,
    deviceId: string,
    moduleId: string | undefined,
  ): Promise<Reply> {
    const requestSignal = ctx.signal;
    const parsed = parseMethodRequest(ctx.body);
    const totalSecs = parsed.connectTimeoutInSeconds + parsed.responseTimeoutInSeconds;
    const controller = new AbortController();
    const timer = setTimeout(
      () => controller.abort(IotHubRestError.gatewayTimeout(deviceId, moduleId, totalSecs)),
      totalSecs * 1000,
    );
    const onOuterAbort = (): void => controller.abort(requestSignal.reason);
    requestSignal.addEventListener('abort', onOuterAbort, { once: true });
    const invocation: MethodInvocation = { ...parsed, signal: controller.signal };
    try {
      const call =
        moduleId !== undefined
          ? this.backend.invokeModuleMethod(deviceId, moduleId, invocation)
          : this.backend.invokeDeviceMethod !== undefined
            ? this.backend.invokeDeviceMethod(deviceId, invocation)
            : Promise.reject(IotHubRestError.deviceNotOnline(deviceId));
      const result = await raceAbort(Promise.resolve(call), controller.signal);
      if (!Number.isInteger(result.status)) {
        throw new EdgePerfError(
          'E_IOTHUB_BACKEND',
          `method result status ${String(result.status)} is not an integer`,
        );
      }
      return { status: 200, body: { status: result.status, payload: result.payload ?? null } };
    } finally {
      clearTimeout(timer);
      requestSignal.removeEventListener('abort', onOuterAbort);
    }
  }

  private errorReply(err: unknown): Reply {
    if (err instanceof IotHubRestError)
      return { status: err.status, errorCode: err.errorCode, body: err.message };
    if (err instanceof EdgePerfError && err.exitCode === 2) {
      return { status: 400, errorCode: 'ArgumentInvalid', body: err.message };
    }
    this.log.error({ err: toError(err).message }, 'IoT Hub REST backend failed');
    return { status: 500, errorCode: 'ServerError', body: `internal error: ${toError(err).message}` };
  }

  private onHandlerFailure(res: ServerResponse, err: unknown): void {
    this.log.error({ err: toError(err).message }, 'IoT Hub REST request handler failed');
    if (!res.headersSent && !res.destroyed) {
      writeReply(res, { status: 500, errorCode: 'ServerError', body: 'internal error' });
    } else {
      res.destroy();
    }
  }
}

function writeReply(res: ServerResponse, reply: Reply): void {
  if (reply.status === 499) {
    res.destroy();
    return;
  }
  const headers: Record<string, string | number> = {};
  let text: string | undefined;
  if (reply.errorCode !== undefined) {
    const message = String(reply.body).replaceAll(';', ',');
    text = JSON.stringify({
      Message: `ErrorCode:${reply.errorCode};${message}`,
      ExceptionMessage: `Tracking ID:${randomUUID().replaceAll('-', '')}-G:0-TimeStamp:${new Date().toISOString()}`,
    });
    headers['iothub-errorcode'] = reply.errorCode;
    // The request body may not have been read; do not reuse a connection in an unknown state.
    if (reply.status === 401 || reply.status === 413 || reply.status >= 500) headers.Connection = 'close';
  } else if (reply.body !== undefined) {
    text = JSON.stringify(reply.body);
  }
  if (reply.etag !== undefined) headers.ETag = `"${reply.etag}"`;
  if (text !== undefined) {
    headers['Content-Type'] = 'application/json; charset=utf-8';
    headers['Content-Length'] = Buffer.byteLength(text);
  }
  res.writeHead(reply.status, headers);
  res.end(text);
}

function splitPath(pathname: string): string[] {
  return pathname
    .split('/')
    .filter((s) => s !== '')
    .map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        throw new IotHubRestError(
          400,
          'ArgumentInvalid',
          `path segment "${s}" is not valid percent-encoding`,
        );
      }
    });
}

function matches(pattern: readonly (string | null)[], segments: readonly string[]): boolean {
  if (pattern.length !== segments.length) return false;
  return pattern.every((p, i) => p === null || p.toLowerCase() === (segments[i] as string).toLowerCase());
}

function ifMatchOf(req: IncomingMessage): string {
  const raw = req.headers['if-match'];
  if (raw === undefined || raw.trim() === '') {
    throw new IotHubRestError(400, 'ArgumentInvalid', 'the If-Match header is required: an etag or "*"');
  }
  return raw
    .trim()
    .replace(/^W\//, '')
    .replace(/^"(.*)"$/, '$1');
}

function etagOf(doc: { readonly [field: string]: unknown }): { etag?: string } {
  return typeof doc.etag === 'string' ? { etag: doc.etag } : {};
}

/** Consumes an unread body so the response can be written on a clean connection. */
function drain(req: IncomingMessage): void {
  req.resume();
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= REQUEST_BODY_MAX_BYTES) chunks.push(chunk);
      else if (size > DRAIN_MAX_BYTES) req.destroy();
    });
    req.on('end', () => {
      if (size > REQUEST_BODY_MAX_BYTES) {
        reject(
          new IotHubRestError(
            413,
            'RequestEntityTooLarge',
            `request body is ${size} bytes, at most ${REQUEST_BODY_MAX_BYTES} are allowed`,
          ),
        );
      } else {
        resolve(Buffer.concat(chunks));
      }
    });
    req.on('error', reject);
    req.on('close', () => {
      if (!req.complete) reject(new IotHubRestError(499, 'ClientClosedRequest', 'client went away'));
    });
  });
}

function parseJsonObject(body: Buffer, what: string): Record<string, unknown> {
  if (body.length === 0)
    throw new IotHubRestError(400, 'ArgumentInvalid', `${what}: the request body is empty`);
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new IotHubRestError(
      400,
      'ArgumentInvalid',
      `${what}: the body is not valid JSON (${toError(err).message})`,
    );
  }
  if (!isObject(value))
    throw new IotHubRestError(400, 'ArgumentInvalid', `${what}: the body must be a JSON object`);
  return value;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseMethodRequest(body: Buffer): Omit<MethodInvocation, 'signal'> {
  const o = parseJsonObject(body, 'direct method');
  const bad = (field: string, allowed: string): IotHubRestError =>
    new IotHubRestError(
      400,
      'ArgumentInvalid',
      `direct method: ${field}=${JSON.stringify(o[field])} ${allowed}`,
    );
  if (typeof o.methodName !== 'string' || o.methodName === '' || o.methodName.length > 100) {
    throw bad('methodName', 'must be a non-empty string of at most 100 characters');
  }
  const responseTimeoutInSeconds = o.responseTimeoutInSeconds ?? 30;
  if (
    !Number.isInteger(responseTimeoutInSeconds) ||
    (responseTimeoutInSeconds as number) < 5 ||
    (responseTimeoutInSeconds as number) > 300
  ) {
    throw bad('responseTimeoutInSeconds', 'must be an integer from 5 to 300');
  }
  const connectTimeoutInSeconds = o.connectTimeoutInSeconds ?? 0;
  if (
    !Number.isInteger(connectTimeoutInSeconds) ||
    (connectTimeoutInSeconds as number) < 0 ||
    (connectTimeoutInSeconds as number) > 300
  ) {
    throw bad('connectTimeoutInSeconds', 'must be an integer from 0 to 300');
  }
  const payload = o.payload ?? null;
  const payloadBytes = Buffer.byteLength(JSON.stringify(payload));
  if (payloadBytes > METHOD_PAYLOAD_MAX_BYTES) {
    throw new IotHubRestError(
      413,
      'RequestEntityTooLarge',
      `direct method payload is ${payloadBytes} bytes, at most ${METHOD_PAYLOAD_MAX_BYTES} are allowed`,
    );
  }
  return {
    methodName: o.methodName,
    payload,
    responseTimeoutInSeconds: responseTimeoutInSeconds as number,
    connectTimeoutInSeconds: connectTimeoutInSeconds as number,
  };
}

function parseTwinPatch(body: Buffer): TwinPatch {
  const patch = parseJsonObject(body, 'twin patch');
  if (patch.tags !== undefined && !isObject(patch.tags)) {
    throw new IotHubRestError(400, 'ArgumentInvalid', 'twin patch: tags must be a JSON object');
  }
  const properties = patch.properties;
  if (properties !== undefined) {
    if (!isObject(properties)) {
      throw new IotHubRestError(400, 'ArgumentInvalid', 'twin patch: properties must be a JSON object');
    }
    if (properties.reported !== undefined) {
      throw new IotHubRestError(
        400,
        'ArgumentInvalid',
        'twin patch: reported properties are read-only for services',
      );
    }
    const desired = properties.desired;
    if (desired !== undefined) {
      if (!isObject(desired)) {
        throw new IotHubRestError(
          400,
          'ArgumentInvalid',
          'twin patch: properties.desired must be a JSON object',
        );
      }
      const bytes = Buffer.byteLength(JSON.stringify(desired));
      if (bytes > TWIN_DESIRED_MAX_BYTES) {
        throw new IotHubRestError(
          400,
          'ArgumentInvalid',
          `twin patch: desired properties are ${bytes} bytes, at most ${TWIN_DESIRED_MAX_BYTES} are allowed`,
        );
      }
    }
  }
  return patch as TwinPatch;
}

function parseConfigurationContent(body: Buffer): ConfigurationContent {
  const content = parseJsonObject(body, 'configuration content');
  if (!isObject(content.modulesContent)) {
    throw new IotHubRestError(
      400,
      'ArgumentInvalid',
      'configuration content: modulesContent is required and must be a JSON object',
    );
  }
  for (const field of ['moduleContent', 'deviceContent'] as const) {
    if (content[field] !== undefined && !isObject(content[field])) {
      throw new IotHubRestError(
        400,
        'ArgumentInvalid',
        `configuration content: ${field} must be a JSON object`,
      );
    }
  }
  return content as unknown as ConfigurationContent;
}

function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
