import { once } from 'node:events';
import type { AddressInfo, Server } from 'node:net';
import { createServer } from 'node:net';
import { Aedes } from 'aedes';
import type { Logger } from '../../common/index.js';

/** Options for {@link EmbeddedBroker}. */
export interface EmbeddedBrokerOptions {
  /** Interface to listen on; default `127.0.0.1` (field devices on other hosts need `0.0.0.0`). */
  host?: string;
  /** TCP port; default 1883. 0 picks a free port (tests). */
  port?: number;
  logger?: Logger;
}

/**
 * An aedes MQTT broker inside the translator for a self-contained device: field devices publish
 * to the module itself and the source subscribes to it like to any broker. Plain TCP, in-memory
 * persistence: sessions and unacknowledged messages survive a client reconnect but not a
 * restart of the module (use Mosquitto for that).
 */
export class EmbeddedBroker {
  private readonly options: EmbeddedBrokerOptions;
  private broker: Aedes | undefined;
  private server: Server | undefined;
  private boundPort: number | undefined;

  constructor(options: EmbeddedBrokerOptions = {}) {
    this.options = options;
  }

  /** `mqtt://host:port` once started. @throws Error before start(). */
  get url(): string {
    if (this.boundPort === undefined) throw new Error('embedded broker is not started');
    return `mqtt://${this.options.host ?? '127.0.0.1'}:${this.boundPort}`;
  }

  /** The bound port once started. */
  get port(): number | undefined {
    return this.boundPort;
  }

  /** Starts aedes and listens. @throws Error when the port is taken. */
  async start(): Promise<void> {
    if (this.server !== undefined) return;
    const broker = await Aedes.createBroker();
    const server = createServer(broker.handle);
    server.listen(this.options.port ?? 1883, this.options.host ?? '127.0.0.1');
    try {
      await once(server, 'listening');
    } catch (err) {
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      throw err;
    }
    this.broker = broker;
    this.server = server;
    this.boundPort = (server.address() as AddressInfo).port;
    this.options.logger?.info({ url: this.url }, 'embedded source broker listening');
  }

  /** Disconnects every client and closes the listener. Idempotent. */
  async stop(): Promise<void> {
    const { broker, server } = this;
    this.broker = undefined;
    this.server = undefined;
    this.boundPort = undefined;
    if (broker !== undefined) await new Promise<void>((resolve) => broker.close(() => resolve()));
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
