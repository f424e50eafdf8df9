import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EdgePerfError, formatConnectionString } from '../../modules/common/index.js';
import { type Identity, identityKey } from '../edgehub/message.js';
import { isPlainObject, mergePatch, type TwinProperties, withoutMetadata } from './registry-twin.js';

/** Default IoT Hub host name the local runtime pretends to be. */
export const DEFAULT_HUB_HOST_NAME = 'edgeperf-local.azure-devices.net';

/** Name of the service policy whose key signs service (REST) tokens. */
export const SERVICE_POLICY_NAME = 'iothubowner';

/** Options for {@link IdentityRegistry}. */
export interface IdentityRegistryOptions {
  /**
   * State directory; the registry is persisted as `<stateDir>/registry.json` so keys survive
   * restarts. Omit for an in-memory registry (tests).
   */
  readonly stateDir?: string;
  /** IoT Hub host name used in connection strings and SAS resources; default {@link DEFAULT_HUB_HOST_NAME}. */
  readonly hubHostName?: string;
}

/** A twin as IoT Hub returns it to a module: both documents carry `$version`. */
export interface TwinDocument {
  readonly desired: TwinProperties & { $version: number };
  readonly reported: TwinProperties & { $version: number };
}

/** A device or module identity with its keys and twin. */
export interface IdentityRecord {
  readonly deviceId: string;
  /** Absent for a device identity. */
  readonly moduleId?: string;
  /** Base64 of 32 random bytes. */
  readonly primaryKey: string;
  readonly secondaryKey: string;
  /** ISO time the identity was created. */
  readonly createdAt: string;
  /** Opaque generation id (changes only when the identity is re-created). */
  readonly generationId: string;
}

interface StoredTwin {
  desired: TwinProperties;
  desiredVersion: number;
  reported: TwinProperties;
  reportedVersion: number;
}

interface StoredRegistry {
  version: 1;
  hubHostName: string;
  serviceKey: string;
  identities: Record<string, IdentityRecord & { twin: StoredTwin }>;
}

/** Result of a desired-properties update: the new version and the patch to push (with `$version`). */
export interface DesiredUpdate {
  readonly version: number;
  readonly patch: TwinProperties & { $version: number };
}

const ID_PATTERN = /^[A-Za-z0-9\-:.+%_#*?!(),=@$']{1,128}$/;

/**
 * The local IoT Hub's identity registry: devices and modules with symmetric keys, the
 * `iothubowner` service key, and per-identity twins (desired/reported, `$version`, JSON merge
 * patch where null deletes). Persisted as one JSON file, rewritten atomically on every change.
 *
 * `open()` loads (or creates) the file; every other method is synchronous and in-memory.
 */
export class IdentityRegistry {
  private readonly file: string | undefined;
  private readonly requestedHost: string | undefined;
  private state: StoredRegistry | undefined;

  constructor(options: IdentityRegistryOptions = {}) {
    this.file = options.stateDir === undefined ? undefined : join(options.stateDir, 'registry.json');
    this.requestedHost = options.hubHostName;
  }

  /**
   * Loads the registry from the state directory, or creates an empty one with a fresh service key.
   * A hub host name given in the options wins over the stored one.
   * @throws EdgePerfError `E_REGISTRY` when the file exists but is not a registry.
   */
  open(): void {
    if (this.state !== undefined) return;
    let loaded: StoredRegistry | undefined;
    if (this.file !== undefined) {
      mkdirSync(join(this.file, '..'), { recursive: true, mode: 0o700 });
      let text: string | undefined;
      try {
        text = readFileSync(this.file, 'utf8');
      } catch {
        text = undefined;
      }
      if (text !== undefined) {
        try {
          const parsed = JSON.parse(text) as StoredRegistry;
          if (
            parsed.version !== 1 ||
            !isPlainObject(parsed.identities) ||
            typeof parsed.serviceKey !== 'string'
          )
            throw new Error('unexpected shape');
          loaded = parsed;
        } catch (err) {
          throw new EdgePerfError(
            'E_REGISTRY',
            `${this.file} is not an edgeperf registry: ${(err as Error).message}`,
          );
        }
      }
    }
    this.state = loaded ?? {
      version: 1,
      hubHostName: this.requestedHost ?? DEFAULT_HUB_HOST_NAME,
      serviceKey: newKey(),
      identities: {},
    };
    if (this.requestedHost !== undefined) this.state.hubHostName = this.requestedHost;
    this.persist();
  }

  /** IoT Hub host name (`HostName=` in connection strings, the host in SAS `sr`). */
  get hubHostName(): string {
    return this.s().hubHostName;
  }

  /** Key of the `iothubowner` policy (base64). */
  get serviceKey(): string {
    return this.s().serviceKey;
  }

  /** `HostName=…;SharedAccessKeyName=iothubowner;SharedAccessKey=…` for azure-iothub clients. */
  serviceConnectionString(): string {
    return formatConnectionString({
      HostName: this.hubHostName,
      SharedAccessKeyName: SERVICE_POLICY_NAME,
      SharedAccessKey: this.serviceKey,
    });
  }

  /**
   * Returns the identity, creating it (with fresh keys and an empty twin) if missing. Creating a
   * module also creates its device.
   * @throws EdgePerfError `E_IDENTITY` for an id IoT Hub would not accept.
   */
  ensure(identity: Identity): IdentityRecord {
    checkId('deviceId', identity.deviceId);
    if (identity.moduleId !== undefined) {
      checkId('moduleId', identity.moduleId);
      this.ensure({ deviceId: identity.deviceId });
    }
    const key = identityKey(identity);
    const existing = this.s().identities[key];
    if (existing !== undefined) return strip(existing);
    const record = {
      deviceId: identity.deviceId,
      ...(identity.moduleId === undefined ? {} : { moduleId: identity.moduleId }),
      primaryKey: newKey(),
      secondaryKey: newKey(),
      createdAt: new Date().toISOString(),
      generationId: randomBytes(8).toString('hex'),
      twin: { desired: {}, desiredVersion: 1, reported: {}, reportedVersion: 1 },
    };
    this.s().identities[key] = record;
    this.persist();
    return strip(record);
  }

  /** The identity, or undefined when it is not registered. */
  get(identity: Identity): IdentityRecord | undefined {
    const found = this.s().identities[identityKey(identity)];
    return found === undefined ? undefined : strip(found);
  }

  /** All identities; with `deviceId`, that device and its modules only. */
  list(deviceId?: string): IdentityRecord[] {
    return Object.values(this.s().identities)
      .filter((r) => deviceId === undefined || r.deviceId === deviceId)
      .map(strip);
  }

  /** Removes an identity (and, for a device, its modules). Returns false when it did not exist. */
  remove(identity: Identity): boolean {
    const ids = this.s().identities;
    const key = identityKey(identity);
    if (ids[key] === undefined) return false;
    delete ids[key];
    if (identity.moduleId === undefined) {
      for (const [k, r] of Object.entries(ids)) if (r.deviceId === identity.deviceId) delete ids[k];
    }
    this.persist();
    return true;
  }

  /**
   * A module's (or device's) connection string in the exact form edgeAgent hands modules:
   * `HostName=…;DeviceId=…;ModuleId=…;SharedAccessKey=…;GatewayHostName=…`.
   * @throws EdgePerfError `E_IDENTITY` when the identity is not registered.
   */
  connectionString(deviceId: string, moduleId?: string, gatewayHostName?: string): string {
    const record = this.get({ deviceId, ...(moduleId === undefined ? {} : { moduleId }) });
    if (record === undefined)
      throw new EdgePerfError(
        'E_IDENTITY',
        `identity ${identityKey({ deviceId, moduleId })} is not registered`,
      );
    return formatConnectionString({
      HostName: this.hubHostName,
      DeviceId: deviceId,
      ModuleId: moduleId,
      SharedAccessKey: record.primaryKey,
      GatewayHostName: gatewayHostName,
    });
  }

  /**
   * The twin as IoT Hub returns it to the module (`{desired, reported}` with `$version` each).
   * @throws EdgePerfError `E_IDENTITY` when the identity is not registered.
   */
  getTwin(identity: Identity): TwinDocument {
    const t = this.twin(identity);
    return {
      desired: { ...structuredClone(t.desired), $version: t.desiredVersion },
      reported: { ...structuredClone(t.reported), $version: t.reportedVersion },
    };
  }

  /**
   * Merges a reported-properties patch (null deletes); bumps and returns the reported version.
   * @throws EdgePerfError `E_TWIN` when the patch is not a JSON object, `E_IDENTITY` when unknown.
   */
  patchReported(identity: Identity, patch: unknown): number {
    const t = this.twin(identity);
    if (!isPlainObject(patch)) throw new EdgePerfError('E_TWIN', 'reported patch must be a JSON object');
    t.reported = mergePatch(t.reported, patch);
    t.reportedVersion += 1;
    this.persist();
    return t.reportedVersion;
  }

  /**
   * Merges a desired-properties patch (null deletes); bumps the desired version. Returns the new
   * version and the patch to push to the module (the given patch plus `$version`).
   * @throws EdgePerfError `E_TWIN` when the patch is not a JSON object, `E_IDENTITY` when unknown.
   */
  patchDesired(identity: Identity, patch: unknown): DesiredUpdate {
    const t = this.twin(identity);
    if (!isPlainObject(patch)) throw new EdgePerfError('E_TWIN', 'desired patch must be a JSON object');
    const clean = withoutMetadata(patch);
    t.desired = mergePatch(t.desired, clean);
    t.desiredVersion += 1;
    this.persist();
    return { version: t.desiredVersion, patch: { ...structuredClone(clean), $version: t.desiredVersion } };
  }

  /**
   * Replaces the whole desired document (IoT Hub "replace twin"); bumps the version.
   * Returns the update to push (the full document with `$version`).
   */
  replaceDesired(identity: Identity, desired: unknown): DesiredUpdate {
    const t = this.twin(identity);
    if (!isPlainObject(desired))
      throw new EdgePerfError('E_TWIN', 'desired properties must be a JSON object');
    // Keys that disappear must reach the module as null deletions.
    const patch: TwinProperties = Object.fromEntries(Object.keys(t.desired).map((k) => [k, null]));
    Object.assign(patch, withoutMetadata(desired));
    return this.patchDesired(identity, patch);
  }

  private twin(identity: Identity): StoredTwin {
    const found = this.s().identities[identityKey(identity)];
    if (found === undefined)
      throw new EdgePerfError('E_IDENTITY', `identity ${identityKey(identity)} is not registered`);
    return found.twin;
  }

  private s(): StoredRegistry {
    if (this.state === undefined)
      throw new EdgePerfError('E_REGISTRY', 'IdentityRegistry.open() was not called');
    return this.state;
  }

  private persist(): void {
    if (this.file === undefined || this.state === undefined) return;
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(this.state, null, 2)}\n`, { mode: 0o600 });
    renameSync(tmp, this.file);
  }
}

function newKey(): string {
  return randomBytes(32).toString('base64');
}

function strip(r: IdentityRecord & { twin?: StoredTwin }): IdentityRecord {
  const { twin: _twin, ...rest } = r;
  return rest;
}

function checkId(field: string, value: string): void {
  if (!ID_PATTERN.test(value))
    throw new EdgePerfError(
      'E_IDENTITY',
      `${field} "${value.slice(0, 40)}" is not allowed: 1-128 characters of letters, digits and - : . + % _ # * ? ! ( ) , = @ $ '`,
    );
}
