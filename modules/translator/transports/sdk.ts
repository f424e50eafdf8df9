import { readFile } from 'node:fs/promises';
import deviceSdk from 'azure-iot-device';
import amqpSdk from 'azure-iot-device-amqp';
import mqttSdk from 'azure-iot-device-mqtt';
import { createLogger, EdgePerfError, type Logger, toError } from '../../common/index.js';
import type { UpstreamMessage } from '../upstream-transport.js';
import type {
  ControllableTransport,
  MethodHandler,
  ModuleControlChannel,
  TwinDocument,
} from './control-channel.js';

type ModuleClient = deviceSdk.ModuleClient;
type Twin = deviceSdk.Twin;

/** Options for {@link SdkTransport}. */
export interface SdkTransportOptions {
  /** `mqtt` (azure-iot-device-mqtt) or `amqp` (azure-iot-device-amqp). */
  readonly protocol: 'mqtt' | 'amqp';
  /**
   * Connection string to use instead of `ModuleClient.fromEnvironment` (tests, hand-run modules).
   * Default: none, so `EdgeHubConnectionString`/`EdgeModuleCACertificateFile` or the workload API
   * are used exactly as a deployed module would (edge-facts §8).
   */
  readonly connectionString?: string;
  /** CA PEM trusted with `connectionString`. */
  readonly ca?: string;
  /** Environment read by `fromEnvironment`; default `process.env`. Only `EdgeModuleCACertificateFile` is read here. */
  readonly env?: NodeJS.ProcessEnv;
  readonly logger?: Logger;
}

/**
 * `sdk-mqtt` / `sdk-amqp`: the Azure IoT device SDK's ModuleClient and `sendOutputEvent`, one
 * message per send (the Node SDK has no batching: `sendOutputEventBatch` throws on MQTT and AMQP,
 * edge-facts §6). The SDK renews tokens and reconnects on its own; a send during an outage waits
 * inside the SDK's retry policy and rejects when it gives up, so the pipeline retries.
 */
export class SdkTransport implements ControllableTransport {
  readonly name: 'sdk-mqtt' | 'sdk-amqp';
  readonly control: ModuleControlChannel;
  private readonly opts: SdkTransportOptions;
  private readonly log: Logger;
  private client: ModuleClient | undefined;
  private twin: Twin | undefined;
  private readonly pendingMethods = new Map<string, MethodHandler>();
  private readonly pendingDesired: ((patch: Record<string, unknown>) => void)[] = [];

  constructor(options: SdkTransportOptions) {
    this.opts = options;
    this.name = options.protocol === 'mqtt' ? 'sdk-mqtt' : 'sdk-amqp';
    this.log = options.logger ?? createLogger(`translator.${this.name}`);
    this.control = {
      onMethod: (name, handler) => {
        this.pendingMethods.set(name, handler);
        if (this.client) this.registerMethod(this.client, name, handler);
      },
      getTwin: async () => {
        const twin = await this.getTwinObject();
        return {
          desired: { ...twin.properties.desired },
          reported: { ...twin.properties.reported },
        } satisfies TwinDocument;
      },
      onDesiredPatch: (handler) => {
        this.pendingDesired.push(handler);
        if (this.twin) this.listenDesired(this.twin, handler);
        else
          void this.getTwinObject().catch((err: unknown) =>
            this.log.warn({ err: toError(err).message }, 'cannot read twin'),
          );
      },
      patchReported: async (patch) => {
        const twin = await this.getTwinObject();
        await new Promise<void>((resolve, reject) => {
          twin.properties.reported.update(patch, (err?: Error) => (err ? reject(err) : resolve()));
        });
      },
    };
  }

  /** Creates the ModuleClient and opens it. @throws EdgePerfError `E_CONNECT` with the SDK's reason. */
  async connect(): Promise<void> {
    if (this.client) return;
    const ctor = this.opts.protocol === 'mqtt' ? mqttSdk.Mqtt : amqpSdk.Amqp;
    let client: ModuleClient | undefined;
    try {
      if (this.opts.connectionString !== undefined) {
        client = deviceSdk.ModuleClient.fromConnectionString(this.opts.connectionString, ctor);
        const ca = this.opts.ca ?? (await readCaFromEnv(this.opts.env ?? process.env));
        if (ca !== undefined) await client.setOptions({ ca });
      } else {
        client = await deviceSdk.ModuleClient.fromEnvironment(ctor);
      }
      client.on('error', (err: Error) => this.log.warn({ err: err.message }, 'module client error'));
      client.on('disconnect', () => this.log.warn('module client disconnected; the SDK retries'));
      await client.open();
    } catch (err) {
      // A client that failed to open may still hold sockets or retry timers.
      await client?.close().catch(() => undefined);
      throw new EdgePerfError(
        'E_CONNECT',
        `${this.name}: cannot connect to edgeHub: ${toError(err).message}`,
        {
          cause: err,
        },
      );
    }
    this.client = client;
    for (const [name, handler] of this.pendingMethods) this.registerMethod(client, name, handler);
  }

  /** `sendOutputEvent`; resolves when edgeHub acknowledged (PUBACK / AMQP accepted). */
  async send(output: string, message: UpstreamMessage): Promise<void> {
    const client = this.client;
    if (!client) throw new EdgePerfError('E_NOT_CONNECTED', `${this.name} is not connected`);
    const msg = new deviceSdk.Message(quietJson(message.body));
    // The SDK's types allow only application/json and utf-*; the wire takes any value (gzip).
    Object.assign(msg, { contentType: message.contentType, contentEncoding: message.contentEncoding });
    if (message.messageId !== undefined) msg.messageId = message.messageId;
    for (const [k, v] of Object.entries(message.properties)) msg.properties.add(k, v);
    await client.sendOutputEvent(output, msg);
  }

  /** Closes the ModuleClient; the SDK fails pending sends. */
  async close(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.twin = undefined;
    if (!client) return;
    client.removeAllListeners();
    // Keep a listener: the SDK may still emit 'error' while closing.
    client.on('error', () => undefined);
    await client.close();
  }

  private registerMethod(client: ModuleClient, name: string, handler: MethodHandler): void {
    client.onMethod(name, (request, response) => {
      if (!request || !response) return;
      void (async () => {
        let status = 500;
        let payload: unknown;
        try {
          const res = await handler(parseMethodPayload(request.payload));
          status = res.status;
          payload = res.payload;
        } catch (err) {
          payload = { message: toError(err).message };
        }
        try {
          await response.send(status, payload);
        } catch (err) {
          this.log.warn({ err: toError(err).message, method: name }, 'cannot answer direct method');
        }
      })();
    });
  }

  private async getTwinObject(): Promise<Twin> {
    if (this.twin) return this.twin;
    const client = this.client;
    if (!client) throw new EdgePerfError('E_NOT_CONNECTED', `${this.name} is not connected`);
    const twin = await client.getTwin();
    if (this.twin) return this.twin;
    this.twin = twin;
    for (const h of this.pendingDesired) this.listenDesired(twin, h);
    return twin;
  }

  private listenDesired(twin: Twin, handler: (patch: Record<string, unknown>) => void): void {
    // The SDK emits the full desired document first, then each patch; both carry $version.
    twin.on('properties.desired', (delta: Record<string, unknown>) => handler({ ...delta }));
  }
}

function parseMethodPayload(payload: unknown): unknown {
  if (Buffer.isBuffer(payload)) {
    const text = payload.toString('utf8');
    if (text === '') return null;
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return text;
    }
  }
  return payload ?? null;
}

async function readCaFromEnv(env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const file = env.EdgeModuleCACertificateFile;
  return file ? await readFile(file, 'utf8') : undefined;
}

/**
 * azure-iot-device-mqtt runs `debug('sendOutputEvent ' + JSON.stringify(message))` on every send,
 * even with DEBUG off, and Buffer's toJSON expands the body into an array of numbers: profiled as
 * about half the translator's CPU at 1 KB and the main bound of the sdk-mqtt transport. A short
 * toJSON on this one Buffer keeps the log line cheap; the bytes sent are unchanged.
 */
function quietJson(body: Buffer): Buffer {
  if (!Object.hasOwn(body, 'toJSON')) {
    Object.defineProperty(body, 'toJSON', {
      value: () => ({ type: 'Buffer', length: body.length }),
      enumerable: false,
    });
  }
  return body;
}
