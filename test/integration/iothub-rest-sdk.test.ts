import { generateKeyPairSync } from 'node:crypto';
import { type Agent, request } from 'node:https';
import iothub from 'azure-iothub';
import forge from 'node-forge';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { MethodResult } from '../../emulator/edgehub/contracts.js';
import {
  type ConfigurationContent,
  IotHubRestError,
  type IotHubServiceBackend,
  type MethodInvocation,
  type ModuleIdentity,
  type TwinDocument,
  type TwinPatch,
} from '../../emulator/iothub/rest-backend.js';
import { createLocalHubAgent, useLocalHubAgent } from '../../emulator/iothub/rest-client-agent.js';
import { IotHubRestServer } from '../../emulator/iothub/rest-server.js';
import { ConfigError, createLogger, createSasToken } from '../../modules/common/index.js';

const { Client, Registry } = iothub;

const OWNER_KEY = Buffer.alloc(32, 7).toString('base64');
const DEVICE = 'edge-1';

interface Pki {
  caPem: string;
  certPem: string;
  keyPem: string;
}

// A runtime-like CA and a server certificate naming localhost and 127.0.0.1. RSA keys come from
// node:crypto (native, fast); node-forge only builds and signs the certificates.
function makePki(): Pki {
  const newKeys = () => {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    return {
      publicKey: forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString()),
      privateKey: forge.pki.privateKeyFromPem(privateKey.export({ type: 'pkcs1', format: 'pem' }).toString()),
    };
  };
  const validity = (cert: forge.pki.Certificate, serial: string) => {
    cert.serialNumber = serial;
    cert.validity.notBefore = new Date(Date.now() - 60_000);
    cert.validity.notAfter = new Date(Date.now() + 86_400_000);
  };
  const caKeys = newKeys();
  const ca = forge.pki.createCertificate();
  ca.publicKey = caKeys.publicKey;
  validity(ca, '01');
  const caName = [{ name: 'commonName', value: 'edgeperf test CA' }];
  ca.setSubject(caName);
  ca.setIssuer(caName);
  ca.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
  ]);
  ca.sign(caKeys.privateKey, forge.md.sha256.create());

  const serverKeys = newKeys();
  const cert = forge.pki.createCertificate();
  cert.publicKey = serverKeys.publicKey;
  validity(cert, '02');
  cert.setSubject([{ name: 'commonName', value: 'localhost' }]);
  cert.setIssuer(caName);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: [
        { type: 2, value: 'localhost' },
        { type: 7, ip: '127.0.0.1' },
      ],
    },
  ]);
  cert.sign(caKeys.privateKey, forge.md.sha256.create());
  return {
    caPem: forge.pki.certificateToPem(ca),
    certPem: forge.pki.certificateToPem(cert),
    keyPem: forge.pki.privateKeyToPem(serverKeys.privateKey),
  };
}

type Call =
  | { op: 'method'; deviceId: string; moduleId: string; request: MethodInvocation }
  | { op: 'twinPatch'; moduleId: string; patch: TwinPatch; ifMatch: string }
  | { op: 'apply'; deviceId: string; content: ConfigurationContent };

/** In-memory stand-in for the registry + hub core; records what the server asked of it. */
class FakeBackend implements IotHubServiceBackend {
  readonly calls: Call[] = [];
  readonly connected = new Set<string>(['translator', 'simulator']);
  readonly modules = new Map<string, ModuleIdentity>();
  readonly twins = new Map<string, TwinDocument>();
  lastSignal: AbortSignal | undefined;

  constructor() {
    for (const m of ['$edgeAgent', '$edgeHub', 'translator', 'simulator']) {
      this.modules.set(m, {
        deviceId: DEVICE,
        moduleId: m,
        generationId: `gen-${m}`,
        etag: 'MQ==',
        connectionState: this.connected.has(m) ? 'Connected' : 'Disconnected',
        authentication: { type: 'sas', symmetricKey: { primaryKey: 'cA==', secondaryKey: 'cw==' } },
      });
      this.twins.set(m, {
        deviceId: DEVICE,
        moduleId: m,
        etag: 'AAAAAAAAAAE=',
        version: 1,
        properties: { desired: { $version: 1 }, reported: { $version: 1 } },
      });
    }
  }

  policyKey(name: string): string | undefined {
    return name === 'iothubowner' ? OWNER_KEY : undefined;
  }

  async invokeModuleMethod(deviceId: string, moduleId: string, req: MethodInvocation): Promise<MethodResult> {
    this.calls.push({ op: 'method', deviceId, moduleId, request: req });
    this.lastSignal = req.signal;
    if (deviceId !== DEVICE || !this.connected.has(moduleId)) {
      throw IotHubRestError.deviceNotOnline(deviceId, moduleId);
    }
    switch (req.methodName) {
      case 'echo':
        return { status: 200, payload: { echoed: req.payload } };
      case 'fail':
        return { status: 500, payload: { error: 'module said no' } };
      case 'hang':
        return new Promise<MethodResult>(() => {});
      case 'crash':
        throw new Error('backend bug');
      default:
        return { status: 501, payload: null };
    }
  }

  getModule(deviceId: string, moduleId: string): ModuleIdentity | undefined {
    return deviceId === DEVICE ? this.modules.get(moduleId) : undefined;
  }

  listModules(deviceId: string): ModuleIdentity[] | undefined {
    return deviceId === DEVICE ? [...this.modules.values()] : undefined;
  }

  getModuleTwin(deviceId: string, moduleId: string): TwinDocument | undefined {
    return deviceId === DEVICE ? this.twins.get(moduleId) : undefined;
  }

  updateModuleTwin(
    deviceId: string,
    moduleId: string,
    patch: TwinPatch,
    ifMatch: string,
  ): TwinDocument | undefined {
    this.calls.push({ op: 'twinPatch', moduleId, patch, ifMatch });
    const twin = deviceId === DEVICE ? this.twins.get(moduleId) : undefined;
    if (twin === undefined) return undefined;
    if (ifMatch !== '*' && ifMatch !== twin.etag) throw IotHubRestError.preconditionFailed(ifMatch);
    const version = (twin.version ?? 1) + 1;
    const desired: Record<string, unknown> = { ...twin.properties.desired };
    for (const [k, v] of Object.entries(patch.properties?.desired ?? {})) {
      if (v === null) delete desired[k];
      else desired[k] = v;
    }
    desired.$version = version;
    const updated: TwinDocument = {
      ...twin,
      version,
      etag: Buffer.from(`v${version}`).toString('base64'),
      properties: { desired, reported: twin.properties.reported },
    };
    this.twins.set(moduleId, updated);
    return updated;
  }

  applyConfigurationContent(deviceId: string, content: ConfigurationContent): void {
    this.calls.push({ op: 'apply', deviceId, content });
    if (deviceId !== DEVICE) throw IotHubRestError.deviceNotFound(deviceId);
    if (!('$edgeAgent' in content.modulesContent)) {
      throw new ConfigError('deployment', [{ field: 'modulesContent.$edgeAgent', message: 'is required' }]);
    }
  }
}

/** What azure-iot-http-base puts on errors it builds from a response. */
interface SdkError extends Error {
  response?: { statusCode?: number };
  responseBody?: string;
}

async function sdkError(p: Promise<unknown>): Promise<SdkError> {
  try {
    await p;
  } catch (err) {
    return err as SdkError;
  }
  throw new Error('expected the SDK call to fail');
}

let pki: Pki;
let backend: FakeBackend;
let server: IotHubRestServer;
let agent: Agent;
let cs: string;

beforeAll(async () => {
  pki = makePki();
  backend = new FakeBackend();
  server = new IotHubRestServer({
    backend,
    certPem: pki.certPem,
    keyPem: pki.keyPem,
    port: 0,
    logger: createLogger('iothub-rest-test', { level: 'silent' }),
  });
  await server.start();
  cs = server.serviceConnectionString('iothubowner', OWNER_KEY);
  agent = createLocalHubAgent({ caPem: pki.caPem });
});

afterAll(async () => {
  agent?.destroy();
  await server?.stop();
});

afterEach(() => {
  backend.calls.length = 0;
});

function serviceClient(connectionString = cs): InstanceType<typeof Client> {
  return useLocalHubAgent(Client.fromConnectionString(connectionString), agent);
}

function registry(connectionString = cs): InstanceType<typeof Registry> {
  return useLocalHubAgent(Registry.fromConnectionString(connectionString), agent);
}

describe('connection string and trust', () => {
  it('hands out HostName=localhost:PORT with the policy', () => {
    expect(cs).toBe(
      `HostName=localhost:${server.port};SharedAccessKeyName=iothubowner;SharedAccessKey=${OWNER_KEY}`,
    );
  });

  it('without the agent the SDK cannot reach a port other than 443 (documented redirection)', async () => {
    const err = await sdkError(Registry.fromConnectionString(cs).getModule(DEVICE, 'translator'));
    expect((err as NodeJS.ErrnoException).code).toBe('ENOTFOUND');
  });

  it('verifies the server certificate: an agent without the runtime CA is refused', async () => {
    const untrusting = createLocalHubAgent();
    try {
      const err = await sdkError(
        useLocalHubAgent(Registry.fromConnectionString(cs), untrusting).getModule(DEVICE, 'translator'),
      );
      expect((err as NodeJS.ErrnoException).code).toMatch(/SELF_SIGNED|UNABLE_TO_VERIFY|CERT/);
    } finally {
      untrusting.destroy();
    }
  });
});

describe('direct methods through azure-iothub Client', () => {
  it('invokes a module method and returns {status, payload}', async () => {
    const { result, message } = await serviceClient().invokeDeviceMethod(DEVICE, 'translator', {
      methodName: 'echo',
      payload: { burst: 3 },
      responseTimeoutInSeconds: 10,
    });
    expect(message.statusCode).toBe(200);
    expect(result).toEqual({ status: 200, payload: { echoed: { burst: 3 } } });
    const call = backend.calls[0];
    expect(call?.op).toBe('method');
    if (call?.op !== 'method') return;
    expect(call.deviceId).toBe(DEVICE);
    expect(call.moduleId).toBe('translator');
    expect(call.request.methodName).toBe('echo');
    expect(call.request.responseTimeoutInSeconds).toBe(10);
    expect(call.request.connectTimeoutInSeconds).toBe(0);
  });

  it("passes the module's own non-200 status through in a 200 response", async () => {
    const { result } = await serviceClient().invokeDeviceMethod(DEVICE, 'translator', { methodName: 'fail' });
    expect(result).toEqual({ status: 500, payload: { error: 'module said no' } });
  });

  it('answers 404 DeviceNotOnline for a module that is not connected', async () => {
    backend.connected.delete('simulator');
    try {
      const err = await sdkError(
        serviceClient().invokeDeviceMethod(DEVICE, 'simulator', { methodName: 'echo' }),
      );
      expect(err.response?.statusCode).toBe(404);
      const body = JSON.parse(err.responseBody ?? '{}') as { Message: string; ExceptionMessage: string };
      expect(body.Message).toMatch(/^ErrorCode:DeviceNotOnline;/);
      expect(body.ExceptionMessage).toMatch(/^Tracking ID:/);
    } finally {
      backend.connected.add('simulator');
    }
  });

  it('answers 504 GatewayTimeout when the module does not answer in time, and aborts the backend', async () => {
    const started = Date.now();
    const err = await sdkError(
      serviceClient().invokeDeviceMethod(DEVICE, 'translator', {
        methodName: 'hang',
        responseTimeoutInSeconds: 5,
      }),
    );
    expect(err.name).toBe('GatewayTimeoutError');
    expect(err.response?.statusCode).toBe(504);
    expect(Date.now() - started).toBeGreaterThanOrEqual(4900);
    expect(backend.lastSignal?.aborted).toBe(true);
  }, 20_000);

  it('refuses a payload over 128 KiB with 413 and still serves the next call', async () => {
    const err = await sdkError(
      serviceClient().invokeDeviceMethod(DEVICE, 'translator', {
        methodName: 'echo',
        payload: 'x'.repeat(128 * 1024 + 1),
      }),
    );
    expect(err.response?.statusCode).toBe(413);
    expect(err.message).toMatch(/at most 131072/);
    expect(backend.calls).toHaveLength(0);
    const { result } = await serviceClient().invokeDeviceMethod(DEVICE, 'translator', { methodName: 'echo' });
    expect(result).toEqual({ status: 200, payload: { echoed: null } });
  });

  it('rejects a response timeout below IoT Hub minimum (5 s) as ArgumentError', async () => {
    const err = await sdkError(
      serviceClient().invokeDeviceMethod(DEVICE, 'translator', {
        methodName: 'echo',
        responseTimeoutInSeconds: 1,
      }),
    );
    expect(err.name).toBe('ArgumentError');
    expect(err.message).toMatch(/responseTimeoutInSeconds=1 must be an integer from 5 to 300/);
  });

  it('reports a device method call (no module) as not online when the backend has none', async () => {
    const err = await sdkError(serviceClient().invokeDeviceMethod(DEVICE, { methodName: 'echo' }));
    expect(err.response?.statusCode).toBe(404);
    expect(err.responseBody).toMatch(/DeviceNotOnline/);
  });
});

describe('registry and twins through azure-iothub Registry', () => {
  it('gets a module and lists the modules of a device', async () => {
    const reg = registry();
    const { responseBody: module } = await reg.getModule(DEVICE, 'translator');
    expect(module).toMatchObject({ deviceId: DEVICE, moduleId: 'translator', connectionState: 'Connected' });
    const { responseBody: list } = await reg.getModulesOnDevice(DEVICE);
    expect(list.map((m) => m.moduleId).sort()).toEqual(['$edgeAgent', '$edgeHub', 'simulator', 'translator']);
    // The SDK percent-encodes `$` in system module ids.
    const { responseBody: agentTwin } = await reg.getModuleTwin(DEVICE, '$edgeAgent');
    expect(agentTwin.moduleId).toBe('$edgeAgent');
  });

  it('maps an unknown device to DeviceNotFoundError and an unknown module to 404', async () => {
    const reg = registry();
    const noDevice = await sdkError(reg.getModulesOnDevice('nope'));
    expect(noDevice.name).toBe('DeviceNotFoundError');
    const noModule = await sdkError(reg.getModule(DEVICE, 'nope'));
    expect(noModule.response?.statusCode).toBe(404);
    expect(noModule.responseBody).toMatch(/ErrorCode:ModuleNotFound/);
  });

  it('reads a module twin and patches its desired properties with etag *', async () => {
    const reg = registry();
    const { responseBody: twin, httpResponse } = await reg.getModuleTwin(DEVICE, 'translator');
    expect(httpResponse.headers.etag).toBe('"AAAAAAAAAAE="');
    expect(twin.moduleId).toBe('translator');
    expect(twin.properties.desired.$version).toBe(1);

    const { responseBody: updated } = await reg.updateModuleTwin(
      DEVICE,
      'translator',
      { properties: { desired: { batch: { maxMessages: 50 } } } },
      '*',
    );
    expect(updated.properties.desired).toMatchObject({ batch: { maxMessages: 50 }, $version: 2 });
    const call = backend.calls.find((c) => c.op === 'twinPatch');
    expect(call).toEqual({
      op: 'twinPatch',
      moduleId: 'translator',
      patch: { properties: { desired: { batch: { maxMessages: 50 } } } },
      ifMatch: '*',
    });

    // Twin.update goes through the same PATCH with the twin's etag.
    const fresh = (await reg.getModuleTwin(DEVICE, 'translator')).responseBody;
    await fresh.update({ properties: { desired: { batch: null } } });
    expect(backend.twins.get('translator')?.properties.desired.batch).toBeUndefined();
  });

  it('refuses a stale etag with InvalidEtagError', async () => {
    const err = await sdkError(
      registry().updateModuleTwin(DEVICE, 'simulator', { properties: { desired: { a: 1 } } }, 'c3RhbGU='),
    );
    expect(err.name).toBe('InvalidEtagError');
  });

  it('refuses desired properties over 32 KiB with ArgumentError', async () => {
    const err = await sdkError(
      registry().updateModuleTwin(
        DEVICE,
        'simulator',
        { properties: { desired: { big: 'x'.repeat(33_000) } } },
        '*',
      ),
    );
    expect(err.name).toBe('ArgumentError');
    expect(err.message).toMatch(/at most 32768/);
    expect(backend.calls).toHaveLength(0);
  });

  it('applies configuration content to an edge device', async () => {
    const content = {
      modulesContent: {
        $edgeAgent: { 'properties.desired': { schemaVersion: '1.1', modules: {} } },
        $edgeHub: { 'properties.desired': { schemaVersion: '1.2', routes: {} } },
      },
    };
    const { httpResponse } = await registry().applyConfigurationContentOnDevice(DEVICE, content);
    expect(httpResponse.statusCode).toBe(204);
    expect(backend.calls).toEqual([{ op: 'apply', deviceId: DEVICE, content }]);
  });

  it('turns an invalid deployment into ArgumentError naming the field', async () => {
    const missing = await sdkError(
      registry().applyConfigurationContentOnDevice(DEVICE, { deviceContent: {} }),
    );
    expect(missing.name).toBe('ArgumentError');
    expect(missing.message).toMatch(/modulesContent is required/);
    const invalid = await sdkError(
      registry().applyConfigurationContentOnDevice(DEVICE, { modulesContent: {} }),
    );
    expect(invalid.name).toBe('ArgumentError');
    expect(invalid.message).toMatch(/modulesContent\.\$edgeAgent: is required/);
  });
});

describe('service authentication', () => {
  const hostWithPort = () => `localhost:${server.port}`;

  it('rejects a wrong key with UnauthorizedError', async () => {
    const wrong = Buffer.alloc(32, 9).toString('base64');
    const err = await sdkError(
      registry(
        `HostName=${hostWithPort()};SharedAccessKeyName=iothubowner;SharedAccessKey=${wrong}`,
      ).getModule(DEVICE, 'translator'),
    );
    expect(err.name).toBe('UnauthorizedError');
    expect(err.message).toMatch(/signature does not match/);
    expect(err.responseBody).not.toMatch(/sig=/);
  });

  it('rejects an unknown policy', async () => {
    const err = await sdkError(
      registry(
        `HostName=${hostWithPort()};SharedAccessKeyName=service;SharedAccessKey=${OWNER_KEY}`,
      ).getModule(DEVICE, 'translator'),
    );
    expect(err.name).toBe('UnauthorizedError');
    expect(err.message).toMatch(/unknown shared access policy "service"/);
  });

  it('rejects a token signed for another hub and an expired token', async () => {
    const now = Math.floor(Date.now() / 1000);
    const other = await rawRequest('GET', '/devices/edge-1/modules?api-version=2021-04-12', {
      authorization: createSasToken('other.azure-devices.net', OWNER_KEY, now + 600, 'iothubowner'),
    });
    expect(other.status).toBe(401);
    expect(JSON.parse(other.body).Message).toMatch(/is for "other.azure-devices.net"/);
    const expired = await rawRequest('GET', '/devices/edge-1/modules?api-version=2021-04-12', {
      authorization: createSasToken(hostWithPort(), OWNER_KEY, now - 1, 'iothubowner'),
    });
    expect(expired.status).toBe(401);
    expect(expired.body).toMatch(/expired/);
    const none = await rawRequest('GET', '/devices/edge-1/modules?api-version=2021-04-12', {});
    expect(none.status).toBe(401);
  });
});

describe('bad requests get IoT Hub-shaped errors and never crash the server', () => {
  const auth = () => ({
    authorization: createSasToken('localhost', OWNER_KEY, Math.floor(Date.now() / 1000) + 600, 'iothubowner'),
  });

  it('unknown path → 404, wrong verb → 405, missing api-version → 400', async () => {
    const unknown = await rawRequest('GET', '/nothing/here?api-version=2021-04-12', auth());
    expect(unknown.status).toBe(404);
    expect(JSON.parse(unknown.body).Message).toMatch(/^ErrorCode:NotFound;no such API: GET \/nothing\/here/);
    const verb = await rawRequest(
      'DELETE',
      '/twins/edge-1/modules/translator?api-version=2021-04-12',
      auth(),
    );
    expect(verb.status).toBe(405);
    const noVersion = await rawRequest('GET', '/devices/edge-1/modules', auth());
    expect(noVersion.status).toBe(400);
    expect(noVersion.body).toMatch(/api-version/);
  });

  it('malformed JSON → 400 ArgumentInvalid', async () => {
    const res = await rawRequest(
      'POST',
      '/twins/edge-1/modules/translator/methods?api-version=2021-04-12',
      { ...auth(), 'content-type': 'application/json' },
      '{"methodName": "echo",',
    );
    expect(res.status).toBe(400);
    expect(res.headers['iothub-errorcode']).toBe('ArgumentInvalid');
    expect(JSON.parse(res.body).Message).toMatch(
      /^ErrorCode:ArgumentInvalid;direct method: the body is not valid JSON/,
    );
  });

  it('a body over 1 MiB → 413', async () => {
    const res = await rawRequest(
      'POST',
      '/devices/edge-1/applyConfigurationContent?api-version=2021-04-12',
      auth(),
      `{"modulesContent":{"x":"${'y'.repeat(1024 * 1024)}"}}`,
    );
    expect(res.status).toBe(413);
  });

  it('a backend bug → 500 ServerError, and the server keeps serving', async () => {
    const res = await rawRequest(
      'POST',
      '/twins/edge-1/modules/translator/methods?api-version=2021-04-12',
      auth(),
      JSON.stringify({ methodName: 'crash', responseTimeoutInSeconds: 5 }),
    );
    expect(res.status).toBe(500);
    expect(res.headers['iothub-errorcode']).toBe('ServerError');
    const ok = await rawRequest('GET', '/devices/edge-1/modules/translator?api-version=2021-04-12', auth());
    expect(ok.status).toBe(200);
  });
});

describe('lifecycle', () => {
  it('stop() answers a pending method call and returns promptly', async () => {
    const own = new IotHubRestServer({
      backend: new FakeBackend(),
      certPem: pki.certPem,
      keyPem: pki.keyPem,
      port: 0,
      logger: createLogger('iothub-rest-test', { level: 'silent' }),
    });
    await own.start();
    const ownAgent = createLocalHubAgent({ caPem: pki.caPem });
    try {
      const client = useLocalHubAgent(
        Client.fromConnectionString(own.serviceConnectionString('iothubowner', OWNER_KEY)),
        ownAgent,
      );
      const pending = sdkError(client.invokeDeviceMethod(DEVICE, 'translator', { methodName: 'hang' }));
      await new Promise((r) => setTimeout(r, 200));
      const started = Date.now();
      await own.stop();
      expect(Date.now() - started).toBeLessThan(2000);
      const err = await pending;
      expect(err).toBeInstanceOf(Error);
    } finally {
      ownAgent.destroy();
      await own.stop();
    }
  });

  it('refuses to start on a port in use with a clear error', async () => {
    const clash = new IotHubRestServer({
      backend: new FakeBackend(),
      certPem: pki.certPem,
      keyPem: pki.keyPem,
      port: server.port,
      logger: createLogger('iothub-rest-test', { level: 'silent' }),
    });
    await expect(clash.start()).rejects.toThrow(/cannot listen on 127\.0\.0\.1:\d+/);
  });
});

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function rawRequest(
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: server.port, servername: 'localhost', ca: pki.caPem, method, path, headers },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
