import { EventEmitter } from 'node:events';
import { EdgePerfError, type Logger, verifySasToken } from '../../modules/common/index.js';
import type { IdentityRegistry, TwinDocument } from '../iothub/registry.js';
import type {
  AuthFailure,
  HubCore,
  InputDelivery,
  MessageIntake,
  MethodResult,
  ModuleLink,
} from './contracts.js';
import { type EdgeMessage, type Identity, identityKey } from './message.js';

/** Largest message edgeHub (and IoT Hub) accepts, bytes (edge-facts §2). */
export const MAX_MESSAGE_BYTES = 256 * 1024;

/** Options for {@link EdgeHubCore}. */
export interface EdgeHubCoreOptions {
  /** Identities, keys and twins; must be opened. */
  readonly registry: IdentityRegistry;
  /** Where accepted messages go (routing + store and forward). */
  readonly intake: MessageIntake;
  /**
   * Gateway host name modules connect to (e.g. `localhost`). Tokens signed for
   * `{gateway}/devices/…` are accepted too, besides the hub host form the SDKs use.
   */
  readonly gatewayHostName?: string;
  /** Edge device id; lets {@link EdgeHubCore.deliver} find modules by module id alone. */
  readonly edgeDeviceId?: string;
  /** Component logger; none = silent. */
  readonly logger?: Logger;
  /** Clock, unix ms; default Date.now (injectable for tests). */
  readonly now?: () => number;
}

/** Events the core emits (typed). */
export interface EdgeHubCoreEvents {
  /** A module link was attached (connected / re-connected). */
  connected: [identity: Identity, protocol: ModuleLink['protocol']];
  /** A module link went away (closed, or replaced by a newer connection). */
  disconnected: [identity: Identity, protocol: ModuleLink['protocol'], reason: 'closed' | 'replaced'];
}

/**
 * Why a hub-side operation (delivery, direct method, twin push) failed. `status` is the HTTP
 * status IoT Hub would answer with: 404 not connected / not listening, 504 timeout, 400 bad input.
 */
export class HubOperationError extends EdgePerfError {
  readonly status: number;
  constructor(code: string, status: number, message: string) {
    super(code, message);
    this.name = 'HubOperationError';
    this.status = status;
  }
}

/** What {@link HubCore.receive} takes: a message without the fields the core stamps. */
export type IncomingMessage = Parameters<HubCore['receive']>[1];

/**
 * edgeHub's protocol-independent core: verifies SAS tokens against the registry, keeps one link
 * per connected module (a new connection replaces the old one, as IoT Hub does), stamps received
 * messages with a runtime-unique id and the authenticated sender, hands them to the intake, and
 * delivers inputs, direct methods and desired-property patches through the module's link.
 */
export class EdgeHubCore extends EventEmitter<EdgeHubCoreEvents> implements HubCore, InputDelivery {
  private readonly registry: IdentityRegistry;
  private readonly intake: MessageIntake;
  private readonly gatewayHostName: string | undefined;
  private readonly edgeDeviceId: string | undefined;
  private readonly logger: Logger | undefined;
  private readonly now: () => number;
  private readonly links = new Map<string, { identity: Identity; link: ModuleLink }>();
  private readonly idPrefix: string;
  private counter = 0;

  constructor(options: EdgeHubCoreOptions) {
    super();
    this.registry = options.registry;
    this.intake = options.intake;
    this.gatewayHostName = options.gatewayHostName;
    this.edgeDeviceId = options.edgeDeviceId;
    this.logger = options.logger;
    this.now = options.now ?? Date.now;
    // Start time in base36 makes ids unique across restarts; the counter keeps them ordered.
    this.idPrefix = this.now().toString(36);
  }

  /** IoT Hub host name modules sign for. */
  get hubHostName(): string {
    return this.registry.hubHostName;
  }

  /** Verifies a SAS token for `sr = {hub}/devices/{d}[/modules/{m}]` (or the gateway host form). */
  authenticate(identity: Identity, token: string): { ok: true } | { ok: false; reason: AuthFailure } {
    const record = this.registry.get(identity);
    if (record === undefined) return { ok: false, reason: 'unknown-identity' };
    const path =
      identity.moduleId === undefined
        ? `/devices/${identity.deviceId}`
        : `/devices/${identity.deviceId}/modules/${identity.moduleId}`;
    const nowSecs = Math.floor(this.now() / 1000);
    let verdict = 'malformed' as ReturnType<typeof verifySasToken>;
    for (const key of [record.primaryKey, record.secondaryKey]) {
      verdict = verifySasToken(token, key, `${this.hubHostName}${path}`, nowSecs);
      if (verdict === 'wrong-resource' && this.gatewayHostName !== undefined)
        verdict = verifySasToken(token, key, `${this.gatewayHostName}${path}`, nowSecs);
      if (verdict !== 'bad-signature') break;
    }
    return verdict === 'ok' ? { ok: true } : { ok: false, reason: verdict };
  }

  /**
   * Registers a connected module. An existing link for the same identity is closed and replaced.
   * Returns the detach function; it only removes this link (not a newer one).
   */
  attach(identity: Identity, link: ModuleLink): () => void {
    const key = identityKey(identity);
    const previous = this.links.get(key);
    const entry = { identity, link };
    this.links.set(key, entry);
    if (previous !== undefined) {
      this.logger?.info(
        { identity: key, protocol: previous.link.protocol },
        'connection replaced by a newer one',
      );
      this.emit('disconnected', previous.identity, previous.link.protocol, 'replaced');
      try {
        previous.link.close?.('replaced by a newer connection');
      } catch (err) {
        this.logger?.warn({ err, identity: key }, 'closing the replaced link failed');
      }
    }
    this.emit('connected', identity, link.protocol);
    let detached = false;
    return () => {
      if (detached) return;
      detached = true;
      if (this.links.get(key) === entry) {
        this.links.delete(key);
        this.emit('disconnected', identity, link.protocol, 'closed');
      }
    };
  }

  /** True when the identity has an attached link. */
  isConnected(identity: Identity): boolean {
    return this.links.has(identityKey(identity));
  }

  /** Identities with an attached link. */
  connectedIdentities(): Identity[] {
    return [...this.links.values()].map((e) => e.identity);
  }

  /**
   * Stamps the message (runtime-unique id, connectionDeviceId/ModuleId from the authenticated
   * sender, receivedAtMs) and hands it to the intake. Resolves when the intake stored it.
   * @throws HubOperationError `E_MESSAGE_TOO_LARGE` (413) over 256 KiB; whatever the intake
   *   rejects with (StoreFullError when the store is full).
   */
  async receive(sender: Identity, message: IncomingMessage): Promise<void> {
    if (message.body.length > MAX_MESSAGE_BYTES)
      throw new HubOperationError(
        'E_MESSAGE_TOO_LARGE',
        413,
        `message of ${message.body.length} bytes exceeds the ${MAX_MESSAGE_BYTES}-byte limit`,
      );
    this.counter += 1;
    const stamped: EdgeMessage = {
      id: `${this.idPrefix}-${this.counter.toString().padStart(12, '0')}`,
      body: message.body,
      properties: message.properties,
      system: {
        ...message.system,
        connectionDeviceId: sender.deviceId,
        ...(sender.moduleId === undefined ? {} : { connectionModuleId: sender.moduleId }),
        receivedAtMs: this.now(),
      },
    };
    await this.intake.accept(stamped);
  }

  /**
   * Delivers a message to a module input through its link; resolves on the module's ack.
   * @throws HubOperationError `E_MODULE_NOT_CONNECTED` / `E_MODULE_NOT_LISTENING` (404) so
   *   store-and-forward keeps the message and retries; whatever the link rejects with.
   */
  async deliver(moduleId: string, input: string, message: EdgeMessage): Promise<void> {
    const entry = this.findModule(moduleId);
    if (entry === undefined)
      throw new HubOperationError('E_MODULE_NOT_CONNECTED', 404, `module ${moduleId} is not connected`);
    if (!entry.link.acceptsInputs)
      throw new HubOperationError(
        'E_MODULE_NOT_LISTENING',
        404,
        `module ${moduleId} has not subscribed to its inputs`,
      );
    await entry.link.deliverInput(input, message);
  }

  /**
   * Invokes a direct method on a connected module.
   * @param timeoutMs - how long to wait for the module's response.
   * @throws HubOperationError `E_MODULE_NOT_CONNECTED` (404, IoT Hub 404103) when not connected or not
   *   listening for methods, `E_METHOD_TIMEOUT` (504) when the module does not answer in time.
   */
  async invokeMethod(
    identity: Identity,
    name: string,
    payload: unknown,
    timeoutMs: number,
  ): Promise<MethodResult> {
    const entry = this.links.get(identityKey(identity));
    if (entry === undefined || !entry.link.acceptsMethods)
      throw new HubOperationError(
        'E_MODULE_NOT_CONNECTED',
        404,
        `${identityKey(identity)} is not connected or not listening for direct methods`,
      );
    return await entry.link.invokeMethod(name, payload, timeoutMs);
  }

  /** Full twin `{desired, reported}` with `$version` each. @throws EdgePerfError `E_IDENTITY`. */
  getTwin(identity: Identity): TwinDocument {
    return this.registry.getTwin(identity);
  }

  /** Merges a reported patch from the module; returns the new reported version. */
  patchReported(identity: Identity, patch: Record<string, unknown>): number {
    return this.registry.patchReported(identity, patch);
  }

  /**
   * Merges a desired patch (null deletes), bumps the version, persists it in the registry and
   * pushes the patch (with `$version`) to the module when it is connected. Returns the new version.
   * @throws EdgePerfError `E_TWIN` / `E_IDENTITY`.
   */
  updateDesired(identity: Identity, patch: Record<string, unknown>): number {
    const update = this.registry.patchDesired(identity, patch);
    this.push(identity, update.patch);
    return update.version;
  }

  /** Replaces the whole desired document; pushes the difference. Returns the new version. */
  replaceDesired(identity: Identity, desired: Record<string, unknown>): number {
    const update = this.registry.replaceDesired(identity, desired);
    this.push(identity, update.patch);
    return update.version;
  }

  private push(identity: Identity, patch: Record<string, unknown>): void {
    const entry = this.links.get(identityKey(identity));
    if (entry === undefined) return;
    try {
      entry.link.sendDesiredPatch(patch);
    } catch (err) {
      // The module reads the full twin when it reconnects, so a lost push is not fatal.
      this.logger?.warn({ err, identity: identityKey(identity) }, 'desired patch push failed');
    }
  }

  private findModule(moduleId: string): { identity: Identity; link: ModuleLink } | undefined {
    if (this.edgeDeviceId !== undefined) return this.links.get(`${this.edgeDeviceId}/${moduleId}`);
    for (const entry of this.links.values()) if (entry.identity.moduleId === moduleId) return entry;
    return undefined;
  }
}
