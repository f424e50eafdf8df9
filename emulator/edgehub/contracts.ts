import type { EdgeMessage, Identity } from './message.js';

/**
 * The seams between the runtime's parts. Protocol endpoints (MQTT, AMQP) talk to the hub core
 * through {@link HubCore}; the core hands accepted messages to store-and-forward through
 * {@link MessageIntake}; store-and-forward delivers to module inputs through {@link InputDelivery}
 * and upstream through {@link UpstreamSink}.
 */

/** Outcome of a direct method call. */
export interface MethodResult {
  readonly status: number;
  readonly payload: unknown;
}

/** One connected module as a protocol endpoint serves it. */
export interface ModuleLink {
  readonly protocol: 'mqtt' | 'amqp';
  /** Sends a message to the module's input; resolves when the module acknowledges it. */
  deliverInput(input: string, message: EdgeMessage): Promise<void>;
  /** True when the module has subscribed to inputs (MQTT) or opened its input link (AMQP). */
  readonly acceptsInputs: boolean;
  /** Invokes a direct method; rejects on timeout or when the module has not subscribed to methods. */
  invokeMethod(name: string, payload: unknown, timeoutMs: number): Promise<MethodResult>;
  /** True when the module listens for direct methods. */
  readonly acceptsMethods: boolean;
  /** Pushes a desired-properties patch (with `$version`) to the module if it listens for them. */
  sendDesiredPatch(patch: Record<string, unknown>): void;
  /**
   * Drops the connection (optional). The core calls it when a newer connection for the same
   * identity replaces this one, as IoT Hub does.
   */
  close?(reason: string): void;
}

/** Why authentication failed, for logs and protocol return codes. */
export type AuthFailure = 'unknown-identity' | 'malformed' | 'expired' | 'bad-signature' | 'wrong-resource';

/** The hub core as protocol endpoints see it. */
export interface HubCore {
  /** IoT Hub host name modules must sign for (`sr=host/devices/d/modules/m`). */
  readonly hubHostName: string;
  /** Verifies a SAS token for an identity. */
  authenticate(identity: Identity, token: string): { ok: true } | { ok: false; reason: AuthFailure };
  /** Registers a connected module; returns the function that detaches it. A new link replaces an old one. */
  attach(identity: Identity, link: ModuleLink): () => void;
  /**
   * Accepts a message from an authenticated sender. Resolves once the message is stored (then the
   * endpoint acknowledges it: PUBACK / AMQP accepted); rejects with a StoreFullError when the
   * store refuses it (then the endpoint must not acknowledge it as delivered).
   */
  receive(
    sender: Identity,
    message: Omit<EdgeMessage, 'id' | 'system'> & {
      system: Omit<EdgeMessage['system'], 'connectionDeviceId' | 'connectionModuleId' | 'receivedAtMs'>;
    },
  ): Promise<void>;
  /** Full twin document `{desired, reported}` with `$version` in each. */
  getTwin(identity: Identity): { desired: Record<string, unknown>; reported: Record<string, unknown> };
  /** Merges a reported patch (null deletes); returns the new reported version. */
  patchReported(identity: Identity, patch: Record<string, unknown>): number;
}

/** Where the core puts accepted messages (routing + store and forward). */
export interface MessageIntake {
  /** Routes and stores; resolves once durable per the storage settings. */
  accept(message: EdgeMessage): Promise<void>;
}

/** How store-and-forward reaches a module input (BrokeredEndpoint). */
export interface InputDelivery {
  /**
   * Delivers one message; resolves on the module's ack. Rejects when the module is not connected
   * or not listening; store-and-forward then keeps the message and retries.
   */
  deliver(moduleId: string, input: string, message: EdgeMessage): Promise<void>;
}

/** The cloud side of the upstream hop: one call is one round trip carrying one batch. */
export interface UpstreamSink {
  /** Sends a batch; resolves when IoT Hub acknowledged all of it; rejects (to be retried) on outage/throttle. */
  sendBatch(messages: readonly EdgeMessage[]): Promise<void>;
}

/** Thrown when the store is full; endpoints refuse the message with it. */
export class StoreFullError extends Error {
  readonly code = 'E_STORE_FULL';
  constructor(message: string) {
    super(message);
    this.name = 'StoreFullError';
  }
}
