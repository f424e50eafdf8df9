/**
 * The seam between the translator's pipeline (source → decode → batch) and the hop to edgeHub.
 * Three implementations: `sdk-mqtt`, `sdk-amqp` (azure-iot-device ModuleClient) and `raw-mqtt`
 * (MQTT.js straight to edgeHub with a SAS token and the SDK's topic format).
 */

/** Transport names accepted in configuration. */
export type TransportName = 'sdk-mqtt' | 'sdk-amqp' | 'raw-mqtt';

/** One message for edgeHub: a batch envelope or a single record, already encoded. */
export interface UpstreamMessage {
  readonly body: Buffer;
  /** Application properties (envelope version, record count, encoding, dead-letter reason …). */
  readonly properties: Readonly<Record<string, string>>;
  /** `application/json` for the envelope; `application/octet-stream` for raw dead letters. */
  readonly contentType: string;
  /** `utf-8` for JSON, `gzip` for the gzip encoding. */
  readonly contentEncoding: string;
  readonly messageId?: string;
}

/** A connection to edgeHub that sends module outputs. */
export interface UpstreamTransport {
  readonly name: TransportName;
  /** Opens the connection; rejects with a clear error when edgeHub is unreachable or refuses the key. */
  connect(): Promise<void>;
  /**
   * Sends to a module output; resolves when edgeHub acknowledged it (PUBACK / AMQP accepted).
   * Once it resolves, the body is the caller's again (the batcher writes a later batch into it):
   * a transport that keeps the bytes must copy them, as writing them to a socket does.
   */
  send(output: string, message: UpstreamMessage): Promise<void>;
  /** Closes the connection; pending sends reject. */
  close(): Promise<void>;
}
