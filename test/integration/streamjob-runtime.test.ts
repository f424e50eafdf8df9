import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventHubConsumerClient, earliestEventPosition, type Subscription } from '@azure/event-hubs';
import { Message, ModuleClient } from 'azure-iot-device';
import { Mqtt } from 'azure-iot-device-mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalEdgeRuntime, parseDeployment, type RuntimeReadyInfo } from '../../emulator/index.js';
import type { StreamJobRow } from '../../emulator/streamjob/index.js';
import { createLogger } from '../../modules/common/index.js';

// The local runtime's whole cloud half: a module's messages go through a route to $upstream, the
// modelled link, the built-in endpoint, the in-process stream job, and come out as rows on the
// `asa-output` event hub, read with an unmodified EventHubConsumerClient.

function manifest() {
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
            sender: {
              type: 'docker',
              status: 'running',
              restartPolicy: 'always',
              settings: { image: 'example.azurecr.io/sender:1' },
            },
          },
        },
      },
      $edgeHub: {
        'properties.desired': {
          schemaVersion: '1.1',
          routes: { up: 'FROM /messages/modules/sender/outputs/* INTO $upstream' },
          storeAndForwardConfiguration: { timeToLiveSecs: 7200 },
        },
      },
    },
  };
}

let stateDir: string;
let runtime: LocalEdgeRuntime;
let ready: RuntimeReadyInfo;
let sender: ModuleClient | undefined;
let reader: EventHubConsumerClient | undefined;
let subscription: Subscription | undefined;

beforeAll(async () => {
  stateDir = mkdtempSync(join(tmpdir(), 'rt-streamjob-'));
  runtime = new LocalEdgeRuntime({
    deployment: parseDeployment(manifest()),
    stateDir,
    ports: { mqtt: 0, amqp: 0, metrics: 0, iothub: 0, eventHubs: 0 },
    link: { rttMs: 2 },
    logger: createLogger('test', { level: 'warn', pretty: false }),
  });
  ready = await runtime.start();
}, 20_000);

afterAll(async () => {
  await subscription?.close();
  await reader?.close();
  await sender?.close().catch(() => undefined);
  await runtime?.stop();
  rmSync(stateDir, { recursive: true, force: true });
});

async function openModule(connectionString: string, caFile: string): Promise<ModuleClient> {
  const saved = { cs: process.env.EdgeHubConnectionString, ca: process.env.EdgeModuleCACertificateFile };
  process.env.EdgeHubConnectionString = connectionString;
  process.env.EdgeModuleCACertificateFile = caFile;
  try {
    const client = await ModuleClient.fromEnvironment(Mqtt);
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

function perfMessage(sid: string, burst: number, seq: number): Message {
  const msg = new Message(
    JSON.stringify({ perf: { sid, burst, seq, ts: Date.now() }, payload: 'x'.repeat(16) }),
  );
  msg.contentType = 'application/json';
  msg.contentEncoding = 'utf-8';
  return msg;
}

describe('local runtime with the stream job', () => {
  it('announces the asa-output hub next to the built-in endpoint', () => {
    expect(ready.eventHubs.asaOutput).toMatch(/EntityPath=asa-output;UseDevelopmentEmulator=true$/);
    expect(runtime.streamJob).toBeDefined();
  });

  it('turns routed module messages into per-session, per-burst rows on asa-output', async () => {
    const expected = new Map([
      ['s-a/1', 5],
      ['s-a/2', 3],
      ['s-b/1', 4],
    ]);
    sender = await openModule(ready.modules.sender as string, ready.caFile);
    for (const [key, count] of expected) {
      const [sid, burst] = key.split('/') as [string, string];
      for (let seq = 0; seq < count; seq++)
        await sender.sendOutputEvent('perf', perfMessage(sid, Number(burst), seq));
    }
    // A message without perf fields is routed too, and filtered out by the job (not a row).
    await sender.sendOutputEvent('perf', new Message(JSON.stringify({ hello: 'no perf' })));

    const rows: StreamJobRow[] = [];
    reader = new EventHubConsumerClient('$Default', ready.eventHubs.asaOutput);
    subscription = reader.subscribe(
      {
        processEvents: async (events) => {
          for (const e of events) rows.push(e.body as StreamJobRow);
        },
        processError: async () => undefined,
      },
      { startPosition: earliestEventPosition, maxWaitTimeInSeconds: 0.5 },
    );
    const counts = () => {
      const byKey = new Map<string, number>();
      for (const r of rows)
        byKey.set(`${r.sid}/${r.burst}`, (byKey.get(`${r.sid}/${r.burst}`) ?? 0) + r.messages);
      return byKey;
    };
    const total = [...expected.values()].reduce((a, b) => a + b, 0);
    // Windows close after the late-arrival delay (5 s) once the partitions go idle.
    const deadline = Date.now() + 20_000;
    while ([...counts().values()].reduce((a, b) => a + b, 0) < total && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 500)); // a duplicate row would show up now

    expect(Object.fromEntries(counts())).toEqual(Object.fromEntries(expected));
    for (const [key, count] of expected) {
      const mine = rows.filter((r) => `${r.sid}/${r.burst}` === key);
      expect(Math.min(...mine.map((r) => r.minSeq))).toBe(0);
      expect(Math.max(...mine.map((r) => r.maxSeq))).toBe(count - 1);
      for (const r of mine) {
        expect(r.latencyMinMs).toBeGreaterThanOrEqual(0);
        expect(r.payloadBytes).toBe(16 * r.messages);
      }
    }
    const stats = runtime.streamJob?.stats();
    expect(stats?.messages).toBe(total);
    expect(stats?.ignoredRecords).toBe(1);
    expect(stats?.sendFailures).toBe(0);
  }, 30_000);
});
