import type { MethodResult } from '../edgehub/contracts.js';

/**
 * The seam between the IoT Hub service REST API ({@link IotHubRestServer}) and the runtime that
 * owns identities, twins and connections. The server authenticates, validates and shapes HTTP;
 * the backend answers in domain terms. Every method may return a value or a promise.
 *
 * Expected failures are thrown as {@link IotHubRestError} (e.g. `IotHubRestError.deviceNotOnline`);
 * an {@link EdgePerfError} with exitCode 2 (a ConfigError) becomes 400; anything else becomes 500.
 */
export interface IotHubServiceBackend {
  /** Key (base64) of the shared access policy named `name` (`iothubowner`), or undefined if unknown. */
  policyKey(name: string): string | undefined;
  /**
   * Invokes a direct method on a module and resolves with its answer. Throw
   * `IotHubRestError.deviceNotOnline` when the module is not connected or does not listen for
   * methods. The server also enforces `connectTimeoutInSeconds + responseTimeoutInSeconds` itself
   * (504 GatewayTimeout) and aborts `request.signal` then, so a backend may ignore timeouts.
   */
  invokeModuleMethod(
    deviceId: string,
    moduleId: string,
    request: MethodInvocation,
  ): MethodResult | Promise<MethodResult>;
  /** Same for a device (no module); optional: when absent the device is reported not online. */
  invokeDeviceMethod?(deviceId: string, request: MethodInvocation): MethodResult | Promise<MethodResult>;
  /** A module identity, or undefined when the device or module does not exist. */
  getModule(
    deviceId: string,
    moduleId: string,
  ): ModuleIdentity | undefined | Promise<ModuleIdentity | undefined>;
  /** Every module identity of a device, or undefined when the device does not exist. */
  listModules(deviceId: string): ModuleIdentity[] | undefined | Promise<ModuleIdentity[] | undefined>;
  /** A module twin, or undefined when the device or module does not exist. */
  getModuleTwin(
    deviceId: string,
    moduleId: string,
  ): TwinDocument | undefined | Promise<TwinDocument | undefined>;
  /**
   * Applies a twin patch (IoT Hub semantics: desired properties are merged, `null` deletes a key,
   * `tags` likewise) and pushes the desired delta to the connected module.
   *
   * @param ifMatch - etag without quotes, or `*` for "any version".
   * @returns the updated twin, or undefined when the device or module does not exist.
   * @throws IotHubRestError.preconditionFailed when `ifMatch` is not `*` and not the current etag.
   */
  updateModuleTwin(
    deviceId: string,
    moduleId: string,
    patch: TwinPatch,
    ifMatch: string,
  ): TwinDocument | undefined | Promise<TwinDocument | undefined>;
  /**
   * Applies a deployment (`modulesContent` with `$edgeAgent`/`$edgeHub` desired properties) to an
   * edge device, like `az iot edge set-modules`.
   * @throws ConfigError (→ 400) when the content is not a valid deployment.
   * @throws IotHubRestError.deviceNotFound when the device does not exist.
   */
  applyConfigurationContent(deviceId: string, content: ConfigurationContent): void | Promise<void>;
  /** A device identity (optional; absent → every device is reported not found). */
  getDevice?(deviceId: string): DeviceIdentity | undefined | Promise<DeviceIdentity | undefined>;
  /** A device twin (optional; absent → every device is reported not found). */
  getDeviceTwin?(deviceId: string): TwinDocument | undefined | Promise<TwinDocument | undefined>;
}

/** A direct-method call as IoT Hub receives it (validated; defaults applied). */
export interface MethodInvocation {
  readonly methodName: string;
  /** Any JSON value; `null` when the caller gave none. At most 128 KiB serialised. */
  readonly payload: unknown;
  /** How long to wait for the answer once delivered, seconds (5–300, default 30). */
  readonly responseTimeoutInSeconds: number;
  /** How long to wait for an offline device to connect, seconds (0–300, default 0 = fail at once). */
  readonly connectTimeoutInSeconds: number;
  /** Aborted when the server gives up (timeout, client gone, server stopping). */
  readonly signal: AbortSignal;
}

/** Twin document as the service API returns it (`GET /twins/{d}/modules/{m}`). */
export interface TwinDocument {
  readonly deviceId: string;
  readonly moduleId?: string;
  /** Opaque version tag, unquoted (the server adds quotes in the `ETag` header). */
  readonly etag: string;
  readonly version?: number;
  readonly tags?: Record<string, unknown>;
  readonly properties: {
    readonly desired: Record<string, unknown>;
    readonly reported: Record<string, unknown>;
  };
  readonly [field: string]: unknown;
}

/** What `Registry.updateModuleTwin` sends (validated to be an object; desired at most 32 KiB). */
export interface TwinPatch {
  readonly tags?: Record<string, unknown>;
  readonly properties?: { readonly desired?: Record<string, unknown> };
  readonly [field: string]: unknown;
}

/** Module identity as `Registry.getModule` returns it (azure-iothub `Module`). */
export interface ModuleIdentity {
  readonly deviceId: string;
  readonly moduleId: string;
  readonly generationId?: string;
  readonly etag?: string;
  readonly connectionState?: 'Connected' | 'Disconnected';
  readonly connectionStateUpdatedTime?: string;
  readonly lastActivityTime?: string;
  readonly cloudToDeviceMessageCount?: number;
  readonly managedBy?: string;
  readonly authentication?: {
    readonly type: 'sas' | 'selfSigned' | 'certificateAuthority' | 'none';
    readonly symmetricKey?: { readonly primaryKey: string; readonly secondaryKey: string };
  };
  readonly [field: string]: unknown;
}

/** Device identity as `Registry.get` returns it (azure-iothub `Device`), loosely typed. */
export interface DeviceIdentity {
  readonly deviceId: string;
  readonly [field: string]: unknown;
}

/** Body of `POST /devices/{d}/applyConfigurationContent` (`modulesContent` is mandatory). */
export interface ConfigurationContent {
  readonly modulesContent: Record<string, unknown>;
  readonly moduleContent?: Record<string, unknown>;
  readonly deviceContent?: Record<string, unknown>;
}

/**
 * An IoT Hub service error: HTTP status plus IoT Hub error code. The server renders it as
 * `{"Message":"ErrorCode:{code};{message}","ExceptionMessage":"…"}`, the shape
 * azure-iot-http-base `Http.parseErrorBody` splits on `;` and `:` (so `;` in messages is replaced).
 */
export class IotHubRestError extends Error {
  /** HTTP status code. */
  readonly status: number;
  /** IoT Hub error code, e.g. `DeviceNotOnline`. */
  readonly errorCode: string;

  constructor(status: number, errorCode: string, message: string) {
    super(message);
    this.name = 'IotHubRestError';
    this.status = status;
    this.errorCode = errorCode;
  }

  /** 404 DeviceNotOnline: the target is not connected or does not listen for direct methods. */
  static deviceNotOnline(deviceId: string, moduleId?: string): IotHubRestError {
    return new IotHubRestError(
      404,
      'DeviceNotOnline',
      `Timed out waiting for device to connect. ${target(deviceId, moduleId)} is not online`,
    );
  }

  /** 404 DeviceNotFound (azure-iothub turns it into DeviceNotFoundError). */
  static deviceNotFound(deviceId: string): IotHubRestError {
    return new IotHubRestError(404, 'DeviceNotFound', `Device ${deviceId} not found`);
  }

  /** 404 ModuleNotFound. */
  static moduleNotFound(deviceId: string, moduleId: string): IotHubRestError {
    return new IotHubRestError(404, 'ModuleNotFound', `Module ${moduleId} on device ${deviceId} not found`);
  }

  /** 412 PreconditionFailed: If-Match names an old etag (azure-iothub: InvalidEtagError). */
  static preconditionFailed(given: string): IotHubRestError {
    return new IotHubRestError(412, 'PreconditionFailed', `etag ${given} does not match the current version`);
  }

  /** 504 GatewayTimeout: no answer from the device in time (azure-iothub: GatewayTimeoutError). */
  static gatewayTimeout(
    deviceId: string,
    moduleId: string | undefined,
    timeoutSecs: number,
  ): IotHubRestError {
    return new IotHubRestError(
      504,
      'GatewayTimeout',
      `Timed out waiting for the response from ${target(deviceId, moduleId)} after ${timeoutSecs} s`,
    );
  }
}

function target(deviceId: string, moduleId: string | undefined): string {
  return moduleId === undefined ? `device ${deviceId}` : `module ${deviceId}/${moduleId}`;
}
