/** Identity of a device or module as IoT Hub names it. */
export interface Identity {
  readonly deviceId: string;
  /** Absent for a device (leaf) identity. */
  readonly moduleId?: string;
}

/** `device/module` (or `device`), the key identities are stored and grouped under. */
export function identityKey(id: Identity): string {
  return id.moduleId === undefined ? id.deviceId : `${id.deviceId}/${id.moduleId}`;
}

/** System properties edgeHub and IoT Hub keep on a message (edge-facts §6–7). */
export interface SystemProperties {
  messageId?: string;
  correlationId?: string;
  contentType?: string;
  contentEncoding?: string;
  userId?: string;
  to?: string;
  /** Absolute expiry as the sender set it (`$.exp`). */
  expiryTimeUtc?: string;
  creationTimeUtc?: string;
  /** Module output the message was sent on (`$.on`, AMQP `iothub-outputname`). */
  outputName?: string;
  /** Set by edgeHub from the authenticated sender, never from the message. */
  connectionDeviceId: string;
  connectionModuleId?: string;
  /** Time edgeHub accepted the message, unix ms. */
  receivedAtMs: number;
}

/**
 * A message inside the local runtime: what a module sent, with the sender's identity stamped on.
 * `body` is kept as bytes; nothing in the runtime parses it except `$body` route conditions.
 */
export interface EdgeMessage {
  /** Runtime-unique id assigned on receipt (monotonic per runtime start + counter). */
  readonly id: string;
  readonly body: Buffer;
  /** Application properties. */
  readonly properties: Readonly<Record<string, string>>;
  readonly system: Readonly<SystemProperties>;
}
