import { readFile } from 'node:fs/promises';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import {
  createLogger,
  EdgePerfError,
  type Logger,
  parseModuleConnectionString,
  toError,
} from '../../common/index.js';
import { quietMqttLog } from '../../common/mqtt-log.js';
import { createSasToken } from '../../common/sas.js';
import type { UpstreamMessage } from '../upstream-transport.js';
import {
  backoffDelayMs,
  type ControllableTransport,
  type MethodHandler,
  type ModuleControlChannel,
  type TwinDocument,
} from './control-channel.js';
import {
  type ModuleMqttIdentity,
  moduleClientId,
  moduleOutputTopic,
  moduleResourceUri,
  moduleUsername,
  parseTopicQuery,
} from './raw-mqtt-topic.js';

/** Largest message body IoT Hub and edgeHub accept (edge-facts §2, §9). */
const MAX_MESSAGE_BYTES = 256 * 1024;

/** Options for {@link RawMqttTransport}. */
export interface RawMqttTransportOptions {
  /** `EdgeHubConnectionString`: HostName, DeviceId, ModuleId, SharedAccessKey, GatewayHostName. */
  readonly connectionString: string;
  /** PEM of the CA that signed edgeHub's server certificate (`EdgeModuleCACertificateFile`). */
  readonly ca?: string | Buffer;
  /** edgeHub MQTT port; default the port in GatewayHostName, else 8883. */
  readonly port?: number;
  /** `DeviceClientType` in the username; default `edgeperf-raw-mqtt/0.1.0`. */
  readonly deviceClientType?: string;
  /** MQTT keepalive; default 180 s like the SDK (Azure load balancer idles out at 4 min). */
  readonly keepaliveSecs?: number;
  /** SAS token lifetime; default 3600 s like the SDK. */
  readonly tokenValidSecs?: number;
  /** Renew this long before expiry (over MQTT renewal means reconnect); default 900 s like the SDK. */
  readonly tokenRenewalMarginSecs?: number;
  /** First reconnect delay; default 1000 ms, doubled per failure with jitter. */
  readonly reconnectMinDelayInMs?: number;
  /** Largest reconnect delay; default 60000 ms (edgeHub's own retry ceiling). */
  readonly reconnectMaxDelayInMs?: number;
  /** How long a send waits for a connection before rejecting (the pipeline retries); default 30000 ms. */
  readonly offlineWaitInMs?: number;
  /** CONNACK deadline; default 30000 ms. */
  readonly connectTimeoutInMs?: number;
  /** Deadline for a twin request answer; default 10000 ms. */
  readonly twinTimeoutInMs?: number;
  readonly logger?: Logger;
}

/**
 * Reads `EdgeHubConnectionString` and `EdgeModuleCACertificateFile` the way
 * `ModuleClient.fromEnvironment` does (edge-facts §8).
 *
 * @throws EdgePerfError `E_CONFIG` when `EdgeHubConnectionString` is missing or the CA file is unreadable.
 */
export async function rawMqttOptionsFromEnv(
  env: NodeJS.ProcessEnv = process.env,
): Promise<Pick<RawMqttTransportOptions, 'connectionString' | 'ca'>> {
  const connectionString = env.EdgeHubConnectionString ?? env.IotHubConnectionString;
  if (!connectionString)
    throw new EdgePerfError(
      'E_CONFIG',
      'raw-mqtt needs EdgeHubConnectionString (the workload API path is only supported by the sdk transports)',
      { exitCode: 2 },
    );
  const caFile = env.EdgeModuleCACertificateFile;
  if (!caFile) return { connectionString };
  try {
    return { connectionString, ca: await readFile(caFile, 'utf8') };
  } catch (err) {
    throw new EdgePerfError(
      'E_CONFIG',
      `cannot read EdgeModuleCACertificateFile ${caFile}: ${toError(err).message}`,
      {
        exitCode: 2,
        cause: err,
      },
    );
  }
}

interface Inflight {
  readonly client: MqttClient;
  readonly reject: (err: Error) => void;
}

interface Waiter {
  readonly resolve: (client: MqttClient) => void;
  readonly reject: (err: Error) => void;
  readonly timer: NodeJS.Timeout;
}

/**
 * The "lightweight client": MQTT.js straight to edgeHub over TLS with a SAS token, publishing
 * exactly what azure-iot-device-mqtt publishes (edge-facts §6) without the SDK's state machine.
 * One message per PUBLISH, QoS 1; a send resolves on PUBACK.
 *
 * When the connection drops, unacknowledged sends reject (the pipeline retries: at-least-once),
 * new sends wait up to `offlineWaitInMs`, and the transport reconnects with exponential backoff
 * and a fresh token. The token is renewed `tokenRenewalMarginSecs` before expiry by draining
 * in-flight sends and reconnecting, as the SDK does over MQTT.
 */
export class RawMqttTransport implements ControllableTransport {
  readonly name = 'raw-mqtt' as const;
  readonly control: ModuleControlChannel;
  private readonly opts: RawMqttTransportOptions;
  private readonly log: Logger;
  private identity:
    | (ModuleMqttIdentity & { key: string; gateway: string; gatewayPort: number | undefined })
    | undefined;
  private client: MqttClient | undefined;
  private closed = false;
  private reconnectAttempt = 0;
  private connects = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private renewTimer: NodeJS.Timeout | undefined;
  private nextSendId = 0;
  private readonly inflight = new Map<number, Inflight>();
  private waiters: Waiter[] = [];
  private drainWaiters: (() => void)[] = [];
  private readonly methods = new Map<string, MethodHandler>();
  private desiredHandlers: ((patch: Record<string, unknown>) => void)[] = [];
  private wantTwin = false;
  private nextRid = 1;
  private readonly twinRequests = new Map<
    string,
    { resolve: (r: TwinReply) => void; reject: (e: Error) => void }
  >();

  constructor(options: RawMqttTransportOptions) {
    this.opts = options;
    this.log = options.logger ?? createLogger('translator.raw-mqtt');
    this.control = {
      onMethod: (name, handler) => {
        this.methods.set(name, handler);
        if (this.methods.size === 1 && this.client) this.subscribe(this.client, ['$iothub/methods/POST/#']);
      },
      getTwin: async () => {
        const reply = await this.twinRequest('$iothub/twin/GET/', '');
        const doc = JSON.parse(reply.body.toString('utf8') || '{}') as Partial<TwinDocument>;
        return { desired: doc.desired ?? {}, reported: doc.reported ?? {} };
      },
      onDesiredPatch: (handler) => {
        this.desiredHandlers.push(handler);
        this.ensureTwinSubscriptions();
      },
      patchReported: async (patch) => {
        await this.twinRequest('$iothub/twin/PATCH/properties/reported/', JSON.stringify(patch));
      },
    };
  }

  /** Successful connections so far (first connect, reconnects, token renewals). */
  get connectCount(): number {
    return this.connects;
  }

  /** True while a connection to edgeHub is up (sends go out at once). */
  get connected(): boolean {
    return this.client?.connected === true;
  }

  /**
   * Connects once; rejects with a clear error when edgeHub is unreachable or refuses the key.
   * Later disconnections are repaired in the background.
   */
  async connect(): Promise<void> {
    if (this.closed) throw new EdgePerfError('E_TRANSPORT_CLOSED', 'raw-mqtt transport is closed');
    if (this.client) return;
    const cs = parseModuleConnectionString(this.opts.connectionString);
    if (!cs.moduleId)
      throw new EdgePerfError('E_CONFIG', 'EdgeHubConnectionString lacks ModuleId', { exitCode: 2 });
    // GatewayHostName may carry a port (`localhost:18883`), as the SDK accepts for local runtimes.
    const gateway = splitHostPort(cs.gatewayHostName ?? cs.hostName);
    this.identity = {
      hubHostName: cs.hostName,
      deviceId: cs.deviceId,
      moduleId: cs.moduleId,
      key: cs.sharedAccessKey,
      gateway: gateway.host,
      gatewayPort: gateway.port,
    };
    this.setConnected(await this.open());
  }

  /** Publishes to the output; resolves on PUBACK. Rejects when the connection drops first or stays down. */
  async send(output: string, message: UpstreamMessage): Promise<void> {
    if (message.body.length > MAX_MESSAGE_BYTES)
      throw new EdgePerfError('E_MESSAGE_TOO_LARGE', `message body ${message.body.length} B exceeds 256 KiB`);
    const client = await this.connectedClient();
    const id = this.identity as ModuleMqttIdentity;
    const topic = moduleOutputTopic(id, output, message);
    await new Promise<void>((resolve, reject) => {
      const sendId = ++this.nextSendId;
      this.inflight.set(sendId, { client, reject });
      client.publish(topic, message.body, { qos: 1, retain: false }, (err) => {
        if (!this.inflight.delete(sendId)) return;
        this.notifyDrained();
        if (err)
          reject(new EdgePerfError('E_SEND', `edgeHub did not acknowledge: ${err.message}`, { cause: err }));
        else resolve();
      });
    });
  }

  /** Disconnects; pending and waiting sends reject. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.renewTimer);
    const err = new EdgePerfError('E_TRANSPORT_CLOSED', 'raw-mqtt transport closed');
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    this.failInflight(undefined, err);
    for (const r of this.twinRequests.values()) r.reject(err);
    this.twinRequests.clear();
    const client = this.client;
    this.client = undefined;
    if (client) await endClient(client, false);
  }

  private async open(): Promise<MqttClient> {
    const id = this.identity;
    if (!id) throw new Error('identity not parsed');
    const validSecs = this.opts.tokenValidSecs ?? 3600;
    const password = createSasToken(moduleResourceUri(id), id.key, Math.floor(Date.now() / 1000) + validSecs);
    const options: IClientOptions = {
      protocol: 'mqtts',
      host: id.gateway,
      port: this.opts.port ?? id.gatewayPort ?? 8883,
      // Node's hostname check applies: the server certificate must name the gateway (edge-facts §6).
      servername: id.gateway,
      protocolVersion: 4,
      clientId: moduleClientId(id),
      username: moduleUsername(id, this.opts.deviceClientType ?? 'edgeperf-raw-mqtt/0.1.0'),
      password,
      clean: false,
      keepalive: this.opts.keepaliveSecs ?? 180,
      reconnectPeriod: 0,
      connectTimeout: this.opts.connectTimeoutInMs ?? 30_000,
      ...quietMqttLog(),
      ...(this.opts.ca === undefined ? {} : { ca: this.opts.ca }),
    };
    const client = mqtt.connect(options);
    await new Promise<void>((resolve, reject) => {
      const fail = (err: Error) => {
        client.removeListener('connect', ok);
        client.removeListener('close', closed);
        client.removeListener('error', fail);
        // An abandoned client may still emit 'error'; an unheard one would throw.
        client.on('error', () => undefined);
        client.end(true);
        reject(describeConnectError(err, id.gateway, options.port as number));
      };
      const ok = () => {
        client.removeListener('error', fail);
        client.removeListener('close', closed);
        resolve();
      };
      const closed = () => fail(new Error('connection closed before CONNACK'));
      client.once('connect', ok);
      client.once('error', fail);
      client.once('close', closed);
    });
    // After CONNACK errors are reported by 'close'; keep a listener so an 'error' never throws.
    client.on('error', (err) => this.log.warn({ err: err.message }, 'edgeHub connection error'));
    client.on('close', () => this.onConnectionLost(client));
    client.on('message', (topic, payload) => this.onMessage(client, topic, payload));
    const topics: string[] = [];
    if (this.methods.size > 0) topics.push('$iothub/methods/POST/#');
    if (this.wantTwin) topics.push('$iothub/twin/res/#', '$iothub/twin/PATCH/properties/desired/#');
    if (topics.length > 0) this.subscribe(client, topics);
    const renewInMs = Math.max(1, validSecs - (this.opts.tokenRenewalMarginSecs ?? 900)) * 1000;
    clearTimeout(this.renewTimer);
    this.renewTimer = setTimeout(() => void this.renew(client), renewInMs);
    this.renewTimer.unref();
    return client;
  }

  private setConnected(client: MqttClient): void {
    this.client = client;
    this.connects++;
    this.reconnectAttempt = 0;
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.resolve(client);
    }
  }

  private connectedClient(): Promise<MqttClient> {
    if (this.closed)
      return Promise.reject(new EdgePerfError('E_TRANSPORT_CLOSED', 'raw-mqtt transport closed'));
    if (this.client?.connected) return Promise.resolve(this.client);
    const waitMs = this.opts.offlineWaitInMs ?? 30_000;
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          reject(new EdgePerfError('E_OFFLINE', `edgeHub unreachable for ${waitMs} ms`));
        }, waitMs),
      };
      this.waiters.push(waiter);
    });
  }

  private onConnectionLost(client: MqttClient): void {
    if (this.client !== client) return;
    this.client = undefined;
    clearTimeout(this.renewTimer);
    this.failInflight(
      client,
      new EdgePerfError('E_CONNECTION_LOST', 'edgeHub connection lost before PUBACK'),
    );
    if (this.closed) return;
    this.log.warn('edgeHub connection lost; reconnecting');
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer) return;
    const delay = backoffDelayMs(
      this.reconnectAttempt++,
      this.opts.reconnectMinDelayInMs ?? 1000,
      this.opts.reconnectMaxDelayInMs ?? 60_000,
    );
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.open().then(
        (client) => {
          if (this.closed) {
            client.end(true);
            return;
          }
          this.log.info('reconnected to edgeHub');
          this.setConnected(client);
        },
        (err: unknown) => {
          this.log.warn({ err: toError(err).message, attempt: this.reconnectAttempt }, 'reconnect failed');
          this.scheduleReconnect();
        },
      );
    }, delay);
  }

  // Token renewal over MQTT is a reconnect (edge-facts §6): hold new sends, let in-flight ones
  // finish, disconnect cleanly, connect with a fresh token.
  private async renew(client: MqttClient): Promise<void> {
    if (this.closed || this.client !== client) return;
    this.client = undefined;
    this.log.info('renewing SAS token (reconnect)');
    await this.drained(client, 10_000);
    client.removeAllListeners('close');
    this.failInflight(client, new EdgePerfError('E_CONNECTION_LOST', 'reconnected to renew the SAS token'));
    await endClient(client, false);
    if (this.closed) return;
    try {
      this.setConnected(await this.open());
    } catch (err) {
      this.log.warn({ err: toError(err).message }, 'reconnect after token renewal failed');
      this.scheduleReconnect();
    }
  }

  private drained(client: MqttClient, maxWaitMs: number): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        for (const f of this.inflight.values()) if (f.client === client) return false;
        return true;
      };
      if (check()) return resolve();
      const timer = setTimeout(done, maxWaitMs);
      const listener = () => {
        if (check()) done();
      };
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.drainWaiters.push(listener);
    });
  }

  private notifyDrained(): void {
    const listeners = this.drainWaiters;
    this.drainWaiters = [];
    for (const l of listeners) l();
  }

  private failInflight(client: MqttClient | undefined, err: Error): void {
    for (const [id, f] of this.inflight) {
      if (client !== undefined && f.client !== client) continue;
      this.inflight.delete(id);
      f.reject(err);
    }
    this.notifyDrained();
  }

  private subscribe(client: MqttClient, topics: string[]): void {
    client.subscribe(topics, { qos: 0 }, (err) => {
      if (err) this.log.warn({ err: err.message, topics }, 'subscribe failed');
    });
  }

  private ensureTwinSubscriptions(): void {
    if (this.wantTwin) return;
    this.wantTwin = true;
    if (this.client)
      this.subscribe(this.client, ['$iothub/twin/res/#', '$iothub/twin/PATCH/properties/desired/#']);
  }

  private async twinRequest(prefix: string, body: string): Promise<TwinReply> {
    this.ensureTwinSubscriptions();
    const client = await this.connectedClient();
    const rid = String(this.nextRid++);
    const timeoutMs = this.opts.twinTimeoutInMs ?? 10_000;
    return new Promise<TwinReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.twinRequests.delete(rid);
        reject(
          new EdgePerfError('E_TWIN_TIMEOUT', `edgeHub did not answer ${prefix} within ${timeoutMs} ms`),
        );
      }, timeoutMs);
      this.twinRequests.set(rid, {
        resolve: (r) => {
          clearTimeout(timer);
          if (r.status >= 300)
            reject(new EdgePerfError('E_TWIN', `${prefix} answered ${r.status}: ${r.body.toString('utf8')}`));
          else resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      client.publish(`${prefix}?$rid=${rid}`, body, { qos: 0 }, (err) => {
        if (!err) return;
        this.twinRequests.delete(rid);
        clearTimeout(timer);
        reject(toError(err));
      });
    });
  }

  private onMessage(client: MqttClient, topic: string, payload: Buffer): void {
    if (topic.startsWith('$iothub/methods/POST/')) {
      void this.onMethodRequest(client, topic, payload);
    } else if (topic.startsWith('$iothub/twin/res/')) {
      const status = Number(topic.split('/')[3]);
      const rid = parseTopicQuery(topic).$rid;
      const pending = rid === undefined ? undefined : this.twinRequests.get(rid);
      if (rid === undefined || pending === undefined) return;
      this.twinRequests.delete(rid);
      pending.resolve({ status, body: payload });
    } else if (topic.startsWith('$iothub/twin/PATCH/properties/desired/')) {
      let patch: Record<string, unknown>;
      try {
        patch = JSON.parse(payload.toString('utf8')) as Record<string, unknown>;
      } catch {
        this.log.warn({ topic }, 'desired patch is not JSON; ignored');
        return;
      }
      const version = parseTopicQuery(topic).$version;
      if (patch.$version === undefined && version !== undefined) patch.$version = Number(version);
      for (const h of this.desiredHandlers) h(patch);
    }
  }

  private async onMethodRequest(client: MqttClient, topic: string, payload: Buffer): Promise<void> {
    const name = topic.split('/')[3] ?? '';
    const rid = parseTopicQuery(topic).$rid ?? '';
    const handler = this.methods.get(name);
    let status = 404;
    let body: unknown = { message: `method ${name} is not registered` };
    if (handler) {
      try {
        const text = payload.toString('utf8');
        const res = await handler(text === '' ? null : (JSON.parse(text) as unknown));
        status = res.status;
        body = res.payload;
      } catch (err) {
        status = 500;
        body = { message: toError(err).message };
      }
    }
    client.publish(
      `$iothub/methods/res/${status}/?$rid=${encodeURIComponent(rid)}`,
      JSON.stringify(body ?? null),
      {
        qos: 0,
      },
    );
  }
}

interface TwinReply {
  readonly status: number;
  readonly body: Buffer;
}

function endClient(client: MqttClient, force: boolean): Promise<void> {
  return new Promise((resolve) => {
    client.end(force, {}, () => resolve());
  });
}

function describeConnectError(err: Error, host: string, port: number): Error {
  const code = (err as { code?: unknown }).code;
  // CONNACK 4/5: bad user name or password / not authorized.
  if (code === 4 || code === 5)
    return new EdgePerfError('E_AUTH', `edgeHub at ${host}:${port} refused the SAS token (CONNACK ${code})`, {
      cause: err,
    });
  return new EdgePerfError('E_CONNECT', `cannot connect to edgeHub at ${host}:${port}: ${err.message}`, {
    cause: err,
  });
}

function splitHostPort(text: string): { host: string; port: number | undefined } {
  const m = /^(.*):(\d{1,5})$/.exec(text);
  return m ? { host: m[1] as string, port: Number(m[2]) } : { host: text, port: undefined };
}
