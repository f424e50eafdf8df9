import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MessageIntake } from '../../emulator/edgehub/contracts.js';
import { EdgeHubCore } from '../../emulator/edgehub/core.js';
import type { EdgeMessage } from '../../emulator/edgehub/message.js';
import { MqttEndpoint } from '../../emulator/edgehub/mqtt-endpoint.js';
import { IdentityRegistry } from '../../emulator/iothub/registry.js';
import { ensureRuntimeCertificates, type RuntimeCertificates } from '../../emulator/pki/index.js';
import { createLogger } from '../../modules/common/index.js';

/** Records accepted messages; `refuseWith` makes it reject (e.g. a StoreFullError). */
export class RecordingIntake implements MessageIntake {
  readonly messages: EdgeMessage[] = [];
  refuseWith: Error | undefined;
  private waiters: (() => void)[] = [];

  async accept(message: EdgeMessage): Promise<void> {
    if (this.refuseWith !== undefined) throw this.refuseWith;
    this.messages.push(message);
    for (const w of this.waiters.splice(0)) w();
  }

  async waitFor(count: number, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.messages.length < count) {
      if (Date.now() > deadline) throw new Error(`only ${this.messages.length}/${count} messages arrived`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  }
}

/** A running core + MQTT endpoint on an ephemeral loopback port, with one module registered. */
export interface Rig {
  readonly stateDir: string;
  readonly certs: RuntimeCertificates;
  readonly registry: IdentityRegistry;
  readonly intake: RecordingIntake;
  readonly core: EdgeHubCore;
  readonly endpoint: MqttEndpoint;
  /** Connection string with `GatewayHostName=localhost:{port}` (the SDK takes the port from there). */
  connectionString(moduleId: string): string;
  close(): Promise<void>;
}

export const DEVICE_ID = 'edge-test';

export async function startRig(moduleIds: readonly string[]): Promise<Rig> {
  const stateDir = await mkdtemp(join(tmpdir(), 'edgeperf-mqtt-'));
  const certs = await ensureRuntimeCertificates({ stateDir, hostNames: ['localhost'] });
  const registry = new IdentityRegistry({ stateDir });
  registry.open();
  for (const moduleId of moduleIds) registry.ensure({ deviceId: DEVICE_ID, moduleId });
  const intake = new RecordingIntake();
  const logger = createLogger('edgehub-test', { level: 'silent' });
  const core = new EdgeHubCore({
    registry,
    intake,
    gatewayHostName: 'localhost',
    edgeDeviceId: DEVICE_ID,
    logger,
  });
  const endpoint = new MqttEndpoint({
    core,
    certPem: certs.certPem,
    keyPem: certs.keyPem,
    port: 0,
    gatewayHostName: 'localhost',
    ackTimeoutInMs: 5_000,
    stateDir,
    logger,
  });
  await endpoint.start();
  return {
    stateDir,
    certs,
    registry,
    intake,
    core,
    endpoint,
    connectionString: (moduleId) =>
      registry.connectionString(DEVICE_ID, moduleId, `localhost:${endpoint.port}`),
    close: async () => {
      await endpoint.stop();
      await rm(stateDir, { recursive: true, force: true });
    },
  };
}

/** Polls until `check` is true. */
export async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
