import type { MethodResult } from '../edgehub/contracts.js';
import type { EdgeHubCore } from '../edgehub/core.js';
import { HubOperationError } from '../edgehub/core.js';
import type { IdentityRegistry } from './registry.js';
import type {
  ConfigurationContent,
  DeviceIdentity,
  IotHubServiceBackend,
  MethodInvocation,
  ModuleIdentity,
  TwinDocument,
  TwinPatch,
} from './rest-backend.js';
import { IotHubRestError } from './rest-backend.js';

/** Options for {@link RuntimeServiceBackend}. */
export interface RuntimeServiceBackendOptions {
  readonly registry: IdentityRegistry;
  readonly core: EdgeHubCore;
  /** Applies a deployment (`applyConfigurationContentOnDevice`); the runtime re-applies its manifest. */
  readonly deploy: (deviceId: string, content: ConfigurationContent) => Promise<void>;
}

/**
 * The local IoT Hub's service side backed by the real registry and hub core: direct methods go to
 * the connected module through edgeHub, twin updates are stored and pushed, deployments re-apply.
 */
export class RuntimeServiceBackend implements IotHubServiceBackend {
  constructor(private readonly options: RuntimeServiceBackendOptions) {}

  policyKey(name: string): string | undefined {
    return name === 'iothubowner' ? this.options.registry.serviceKey : undefined;
  }

  async invokeModuleMethod(
    deviceId: string,
    moduleId: string,
    request: MethodInvocation,
  ): Promise<MethodResult> {
    const identity = { deviceId, moduleId };
    if (this.options.registry.get(identity) === undefined)
      throw IotHubRestError.moduleNotFound(deviceId, moduleId);
    try {
      return await this.options.core.invokeMethod(
        identity,
        request.methodName,
        request.payload,
        request.responseTimeoutInSeconds * 1000,
      );
    } catch (err) {
      if (err instanceof HubOperationError) {
        if (err.status === 504) {
          throw IotHubRestError.gatewayTimeout(deviceId, moduleId, request.responseTimeoutInSeconds);
        }
        if (err.status === 404) throw IotHubRestError.deviceNotOnline(deviceId, moduleId);
      }
      throw err;
    }
  }

  getModule(deviceId: string, moduleId: string): ModuleIdentity | undefined {
    const record = this.options.registry.get({ deviceId, moduleId });
    if (record === undefined) return undefined;
    return this.moduleIdentity(deviceId, moduleId, record.primaryKey, record.secondaryKey);
  }

  listModules(deviceId: string): ModuleIdentity[] | undefined {
    if (this.options.registry.get({ deviceId }) === undefined) return undefined;
    return this.options.registry
      .list(deviceId)
      .filter((r) => r.moduleId !== undefined)
      .map((r) => this.moduleIdentity(deviceId, r.moduleId as string, r.primaryKey, r.secondaryKey));
  }

  getDevice(deviceId: string): DeviceIdentity | undefined {
    return this.options.registry.get({ deviceId }) === undefined
      ? undefined
      : { deviceId, status: 'enabled' };
  }

  getModuleTwin(deviceId: string, moduleId: string): TwinDocument | undefined {
    const identity = { deviceId, moduleId };
    if (this.options.registry.get(identity) === undefined) return undefined;
    const twin = this.options.registry.getTwin(identity);
    return {
      deviceId,
      moduleId,
      etag: String(twin.desired.$version),
      version: twin.desired.$version + twin.reported.$version,
      properties: { desired: twin.desired, reported: twin.reported },
    };
  }

  updateModuleTwin(
    deviceId: string,
    moduleId: string,
    patch: TwinPatch,
    ifMatch: string,
  ): TwinDocument | undefined {
    const identity = { deviceId, moduleId };
    if (this.options.registry.get(identity) === undefined) return undefined;
    const current = this.options.registry.getTwin(identity);
    if (ifMatch !== '*' && ifMatch !== String(current.desired.$version)) {
      throw IotHubRestError.preconditionFailed(ifMatch);
    }
    const desired = patch.properties?.desired;
    if (desired !== undefined) this.options.core.updateDesired(identity, desired);
    return this.getModuleTwin(deviceId, moduleId);
  }

  async applyConfigurationContent(deviceId: string, content: ConfigurationContent): Promise<void> {
    await this.options.deploy(deviceId, content);
  }

  private moduleIdentity(
    deviceId: string,
    moduleId: string,
    primaryKey: string,
    secondaryKey: string,
  ): ModuleIdentity {
    // The runtime's own modules are up whenever this API is: edgeAgent and edgeHub serve it.
    const connected =
      moduleId === '$edgeAgent' ||
      moduleId === '$edgeHub' ||
      this.options.core.isConnected({ deviceId, moduleId });
    return {
      deviceId,
      moduleId,
      managedBy: 'IotEdge',
      connectionState: connected ? 'Connected' : 'Disconnected',
      authentication: { type: 'sas', symmetricKey: { primaryKey, secondaryKey } },
    };
  }
}
