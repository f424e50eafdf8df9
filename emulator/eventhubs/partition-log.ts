/**
 * An event as an Event Hubs partition stores it. IoT Hub's built-in endpoint and named event hubs
 * (the stream job's output) share this shape.
 */
export interface StoredEvent {
  readonly body: Buffer;
  /** Application properties. */
  readonly properties: Readonly<Record<string, string | number | boolean>>;
  /**
   * Message annotations beyond the four the log assigns (for IoT Hub:
   * `iothub-connection-device-id`, `iothub-connection-module-id`, `iothub-enqueuedtime`, …).
   */
  readonly annotations: Readonly<Record<string, string | number | boolean | Date>>;
  /** AMQP message properties (message_id, correlation_id, content_type, content_encoding, user_id). */
  readonly amqpProperties: Readonly<Record<string, string | undefined>>;
  readonly partitionKey?: string;
  readonly sequenceNumber: number;
  /** Byte offset as a decimal string, as Event Hubs reports it. */
  readonly offset: string;
  readonly enqueuedTimeMs: number;
}
