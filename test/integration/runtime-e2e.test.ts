import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventHubConsumerClient, earliestEventPosition, type ReceivedEventData } from '@azure/event-hubs';
import { Message, ModuleClient } from 'azure-iot-device';
import { Amqp } from 'azure-iot-device-amqp';
import { Mqtt } from 'azure-iot-device-mqtt';
import { Client, Registry } from 'azure-iothub';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  LocalEdgeRuntime,
  parseDeployment,
  type RuntimeReadyInfo,
  useLocalHubAgent,
} from '../../emulator/index.js';
import { createLogger } from '../../modules/common/index.js';

// The whole runtime as a user meets it: a manifest in, connection strings out, unmodified SDK
// clients on both sides (module SDK over MQTT and AMQP, service SDK, Event Hubs client).

function manifest() {
  const mod = (image: string, env: Record<string, string> = {}) => ({
    type: 'docker',
    status: 'running',
    restartPolicy: 'always',
    settings: { image },
    env: Object.fromEntries(Object.entries(env).map(([k, v]) => [k, { value: v }])),
  });
  return {
    modulesContent: {
      $edgeAgent: {
        'properties.desired': {
          schemaVersion: '1.1',
          runtime: { type: 'docker', settings: {} },
          systemModules: {
            edgeAgent: { type: 'docker', settings: { image: 'mcr.microsoft.com/azureiotedge-agent:1.5' } },
            edgeHub: {
              type: 'docker',
              settings: { image: 'mcr.microsoft.com/azureiotedge-hub:1.5' },
              env: {},
            },
          },
          modules: {
            sender: mod('example.azurecr.io/sender:1'),
            receiver: mod('example.azurecr.io/receiver:1', { UpstreamTransport: 'sdk-amqp' }),
          },
        },
      },
      $edgeHub: {
        'properties.desired': {
          schemaVersion: '1.1',
          routes: {
            up: {
              route: 'FROM /messages/modules/sender/outputs/up INTO $upstream',
              priority: 0,
              timeToLiveSecs: 600,
            },
            fwd: 'FROM /messages/modules/sender/outputs/fwd INTO BrokeredEndpoint("/modules/receiver/inputs/in")',
          },
          storeAndForwardConfiguration: { timeToLiveSecs: 7200 },
        },
      },
      receiver: { 'properties.desired': { threshold: 1 } },
    },
  };
}

async function moduleClient(connectionString: string, caFile: string, transport: typeof Mqtt | typeof Amqp) {
  const saved = { cs: process.env.EdgeHubConnectionString, ca: process.env.EdgeModuleCACertificateFile };
  process.env.EdgeHubConnectionString = connectionString;
  process.env.EdgeModuleCACertificateFile = caFile;
  try {
    const client = await ModuleClient.fromEnvironment(transport);
    await client.open();
    return client;
  } finally {
    for (const [k, v] of [
      ['EdgeHubConnectionString', saved.cs],
      ['EdgeModuleCACertificateFile', saved.ca],
    ] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

let stateDir: string;
let runtime: LocalEdgeRuntime;
let ready: RuntimeReadyInfo;
const clients: ModuleClient[] = [];

beforeAll(async () => {
  stateDir = mkdtempSync(join(tmpdir(), 'rt-e2e-'));
  runtime = new LocalEdgeRuntime({
    deployment: parseDeployment(manifest()),
    stateDir,
    ports: { mqtt: 0, amqp: 0, metrics: 0, iothub: 0, eventHubs: 0 },
    logger: createLogger('test', { level: 'warn', pretty: false }),
  });
  ready = await runtime.start();
});

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => undefined);
  await runtime?.stop();
  rmSync(stateDir, { recursive: true, force: true });
});

describe('local edge runtime, end to end with unmodified clients', () => {
  it('prints a connection string for every module and trusts its own CA', () => {
    expect(Object.keys(ready.modules).sort()).toEqual(['receiver', 'sender']);
    expect(ready.modules.sender).toMatch(
      /^HostName=.+;DeviceId=edge-device;ModuleId=sender;SharedAccessKey=.+;GatewayHostName=localhost:\d+$/,
    );
    expect(ready.eventHubs.builtin).toContain('UseDevelopmentEmulator=true');
  });

  it('routes an output upstream to the built-in endpoint and another to a module input', async () => {
    const sender = await moduleClient(ready.modules.sender as string, ready.caFile, Mqtt);
    const receiver = await moduleClient(ready.modules.receiver as string, ready.caFile, Amqp);
    clients.push(sender, receiver);
    const inputs: string[] = [];
    receiver.on('inputMessage', (input: string, msg: Message) => {
      inputs.push(`${input}:${msg.getBytes().toString()}`);
      void receiver.complete(msg);
    });
    await new Promise((r) => setTimeout(r, 300));

    const up = new Message(JSON.stringify({ hello: 'hub' }));
    up.properties.add('kind', 'test');
    up.contentType = 'application/json';
    up.contentEncoding = 'utf-8';
    await sender.sendOutputEvent('up', up);
    await sender.sendOutputEvent('fwd', new Message('to-receiver'));

    const consumer = new EventHubConsumerClient('$Default', ready.eventHubs.builtin);
    const events: ReceivedEventData[] = [];
    const sub = consumer.subscribe(
      { processEvents: async (batch) => void events.push(...batch), processError: async () => undefined },
      { startPosition: earliestEventPosition, maxWaitTimeInSeconds: 1 },
    );
    const deadline = Date.now() + 15_000;
    while ((events.length < 1 || inputs.length < 1) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    await sub.close();
    await consumer.close();

    expect(inputs).toEqual(['in:to-receiver']);
    expect(events).toHaveLength(1);
    const e = events[0] as ReceivedEventData;
    expect(e.body).toEqual({ hello: 'hub' });
    expect(e.properties?.kind).toBe('test');
    expect(e.systemProperties?.['iothub-connection-device-id']).toBe('edge-device');
    expect(e.systemProperties?.['iothub-connection-module-id']).toBe('sender');
    expect(e.enqueuedTimeUtc.getTime()).toBeGreaterThan(Date.now() - 60_000);
  });

  it('answers a direct method invoked with azure-iothub and receives a desired patch from Registry', async () => {
    const receiver = clients[1] as ModuleClient;
    receiver.onMethod('echo', (req, res) => {
      // The SDK's callback type marks both optional; it always passes them.
      void res?.send(200, { got: req?.payload });
    });
    const twin = await receiver.getTwin();
    const patches: unknown[] = [];
    twin.on('properties.desired', (p: unknown) => patches.push(p));
    await new Promise((r) => setTimeout(r, 200));

    const agent = runtime.serviceAgent();
    const client = useLocalHubAgent(Client.fromConnectionString(ready.iothub), agent);
    const result = await client.invokeDeviceMethod('edge-device', 'receiver', {
      methodName: 'echo',
      payload: { n: 7 },
      responseTimeoutInSeconds: 10,
    });
    expect(result.result).toEqual({ status: 200, payload: { got: { n: 7 } } });

    const registry = useLocalHubAgent(Registry.fromConnectionString(ready.iothub), agent);
    await registry.updateModuleTwin(
      'edge-device',
      'receiver',
      { properties: { desired: { threshold: 5 } } },
      '*',
    );
    const deadline = Date.now() + 10_000;
    while (!patches.some((p) => (p as { threshold?: number }).threshold === 5) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(patches.some((p) => (p as { threshold?: number }).threshold === 5)).toBe(true);
  });

  it('re-applies a manifest deployed through applyConfigurationContentOnDevice, keeping queued messages', async () => {
    const next = manifest();
    const hub = next.modulesContent.$edgeHub['properties.desired'] as { routes: Record<string, unknown> };
    hub.routes.back = 'FROM /messages/modules/receiver/outputs/* INTO $upstream';
    (next.modulesContent as Record<string, unknown>).receiver = { 'properties.desired': { threshold: 9 } };
    const registry = useLocalHubAgent(Registry.fromConnectionString(ready.iothub), runtime.serviceAgent());
    await registry.applyConfigurationContentOnDevice('edge-device', {
      modulesContent: next.modulesContent as never,
    });
    const routes = (runtime.storeAndForward?.currentRoutes ?? []).map((r) => r.name).sort();
    expect(routes).toEqual(['back', 'fwd', 'up']);
    const twin = await registry.getModuleTwin('edge-device', 'receiver');
    expect(twin.responseBody.properties.desired.threshold).toBe(9);
  });
});
