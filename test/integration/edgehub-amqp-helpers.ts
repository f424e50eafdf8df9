import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ModuleClient } from 'azure-iot-device';
import { Amqp } from 'azure-iot-device-amqp';
import { AmqpEndpoint } from '../../emulator/edgehub/amqp-endpoint.js';
import type { MessageIntake } from '../../emulator/edgehub/contracts.js';
import { EdgeHubCore } from '../../emulator/edgehub/core.js';
import type { EdgeMessage } from '../../emulator/edgehub/message.js';
import { IdentityRegistry } from '../../emulator/iothub/registry.js';
import { ensureRuntimeCertificates, type RuntimeCertificates } from '../../emulator/pki/index.js';
import { createLogger, type Logger } from '../../modules/common/index.js';

export const DEVICE_ID = 'edge-amqp-test';

/** Records accepted messages; `refuseWith` makes it reject (e.g. a StoreFullError). */
export class RecordingIntake implements MessageIntake {
  readonly messages: EdgeMessage[] = [];
  refuseWith: Error | undefined;

  async accept(message: EdgeMessage): Promise<void> {
    if (this.refuseWith !== undefined) throw this.refuseWith;
    this.messages.push(message);
  }
}

/** The real core, registry and PKI with the AMQP endpoint on an ephemeral loopback port. */
export interface AmqpRig {
  readonly certs: RuntimeCertificates;
  readonly registry: IdentityRegistry;
  readonly intake: RecordingIntake;
  readonly core: EdgeHubCore;
  readonly endpoint: AmqpEndpoint;
  /** Connection string with `GatewayHostName=localhost:{port}`: the SDK takes the port from there. */
  connectionString(moduleId: string): string;
  /** `ModuleClient.fromEnvironment(Amqp)` exactly as a module does it, with the given connection string. */
  moduleClient(connectionString: string): Promise<ModuleClient>;
  close(): Promise<void>;
}

export async function startAmqpRig(moduleIds: readonly string[], endpointLogger?: Logger): Promise<AmqpRig> {
  const stateDir = await mkdtemp(join(tmpdir(), 'edgeperf-amqp-'));
  const certs = await ensureRuntimeCertificates({ stateDir, hostNames: ['localhost'] });
  const registry = new IdentityRegistry({ stateDir });
  registry.open();
  for (const moduleId of moduleIds) registry.ensure({ deviceId: DEVICE_ID, moduleId });
  const intake = new RecordingIntake();
  const logger = createLogger('edgehub-amqp-test', { level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const core = new EdgeHubCore({
    registry,
    intake,
    gatewayHostName: 'localhost',
    edgeDeviceId: DEVICE_ID,
    logger,
  });
  const endpoint = new AmqpEndpoint({
    core,
    certPem: certs.certPem,
    keyPem: certs.keyPem,
    port: 0,
    gatewayHostName: 'localhost',
    ackTimeoutInMs: 5_000,
    logger: endpointLogger ?? logger,
  });
  await endpoint.start();
  return {
    certs,
    registry,
    intake,
    core,
    endpoint,
    connectionString: (moduleId) =>
      registry.connectionString(DEVICE_ID, moduleId, `localhost:${endpoint.port}`),
    moduleClient: async (connectionString) => {
      const saved = { cs: process.env.EdgeHubConnectionString, ca: process.env.EdgeModuleCACertificateFile };
      process.env.EdgeHubConnectionString = connectionString;
      process.env.EdgeModuleCACertificateFile = certs.caFile;
      try {
        return await ModuleClient.fromEnvironment(Amqp);
      } finally {
        restore('EdgeHubConnectionString', saved.cs);
        restore('EdgeModuleCACertificateFile', saved.ca);
      }
    },
    close: async () => {
      await endpoint.stop();
      await rm(stateDir, { recursive: true, force: true });
    },
  };
}

function restore(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}

/** Polls until `check` is true. */
export async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
