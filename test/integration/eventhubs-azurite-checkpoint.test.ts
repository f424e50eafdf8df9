import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  EventHubConsumerClient,
  EventHubProducerClient,
  earliestEventPosition,
  type ReceivedEventData,
} from '@azure/event-hubs';
import { BlobCheckpointStore } from '@azure/eventhubs-checkpointstore-blob';
import { ContainerClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventHubsServer, EventLog } from '../../emulator/eventhubs/index.js';
import { createLogger } from '../../modules/common/index.js';

// Checkpoint and restart as a long-running consumer does it in production: the real
// BlobCheckpointStore against Azurite's blob service (a child process on loopback, ephemeral port,
// telemetry off, no network), and the local Event Hubs endpoint. A restarted consumer must resume
// right after its last checkpoint: it re-reads only what it had read but not checkpointed, and
// skips nothing.

// Azurite's documented well-known development account (public, not a secret).
const DEV_ACCOUNT = 'devstoreaccount1';
const DEV_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
const HUB = 'ckpt';
const GROUP = 'longrun';
const PARTITIONS = ['0', '1'];

let server: EventHubsServer;
let cs: string;
let azurite: ChildProcess | undefined;
let azuriteDir: string;
let container: ContainerClient;

/** Starts `azurite-blob` and resolves with its blob endpoint once it listens. */
async function startAzurite(location: string): Promise<{ child: ChildProcess; url: string }> {
  const main = createRequire(import.meta.url).resolve('azurite/dist/src/blob/main.js');
  const child = spawn(
    process.execPath,
    [
      main,
      '--blobHost',
      '127.0.0.1',
      '--blobPort',
      '0',
      '--location',
      location,
      '--silent',
      '--skipApiVersionCheck',
      '--loose',
      '--disableTelemetry',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`azurite did not start: ${output}`)), 15_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      const m = /successfully listens on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (m?.[1] !== undefined) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`azurite exited with ${code}: ${output}`));
    });
  });
  return { child, url };
}

async function stopAzurite(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
}

beforeAll(async () => {
  const log = new EventLog({
    hubs: [{ name: HUB, partitionCount: PARTITIONS.length, consumerGroups: [GROUP] }],
  });
  server = new EventHubsServer({
    log,
    port: 0,
    logger: createLogger('eventhubs-test', { level: 'silent' }),
  });
  await server.start();
  cs = server.connectionString(HUB);

  azuriteDir = mkdtempSync(join(tmpdir(), 'azurite-'));
  const started = await startAzurite(azuriteDir);
  azurite = started.child;
  const storage = `DefaultEndpointsProtocol=http;AccountName=${DEV_ACCOUNT};AccountKey=${DEV_KEY};BlobEndpoint=${started.url}/${DEV_ACCOUNT};`;
  container = new ContainerClient(storage, 'checkpoints');
  await container.createIfNotExists();
}, 20_000);

afterAll(async () => {
  await server?.stop();
  if (azurite !== undefined) await stopAzurite(azurite);
  rmSync(azuriteDir, { recursive: true, force: true });
});

interface RunResult {
  /** Partition → sequence numbers read, in order. */
  readonly read: Map<string, number[]>;
  /** Partition → sequence number of the last checkpoint this run wrote. */
  readonly checkpointed: Map<string, number>;
}

/**
 * Runs one consumer with a fresh BlobCheckpointStore over the same container until every partition
 * has read up to `untilSeq`; a batch is checkpointed only while `shouldCheckpoint` says so.
 */
async function runConsumer(
  untilSeq: number,
  shouldCheckpoint: (partitionId: string, batch: readonly ReceivedEventData[]) => boolean,
): Promise<RunResult> {
  const client = new EventHubConsumerClient(GROUP, cs, new BlobCheckpointStore(container), {
    loadBalancingOptions: { strategy: 'greedy', updateIntervalInMs: 100 },
    retryOptions: { maxRetries: 1, timeoutInMs: 5000 },
  });
  const read = new Map<string, number[]>(PARTITIONS.map((p) => [p, []]));
  const checkpointed = new Map<string, number>();
  const errors: Error[] = [];
  const subscription = client.subscribe(
    {
      processEvents: async (events, context) => {
        const list = read.get(context.partitionId) as number[];
        for (const e of events) list.push(e.sequenceNumber);
        const last = events.at(-1);
        if (last !== undefined && shouldCheckpoint(context.partitionId, events)) {
          await context.updateCheckpoint(last);
          checkpointed.set(context.partitionId, last.sequenceNumber);
        }
      },
      processError: async (err) => {
        errors.push(err);
      },
    },
    { startPosition: earliestEventPosition, maxBatchSize: 3, maxWaitTimeInSeconds: 0.2 },
  );
  try {
    const deadline = Date.now() + 10_000;
    const done = () => PARTITIONS.every((p) => ((read.get(p) as number[]).at(-1) ?? -1) >= untilSeq);
    while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 300)); // an unexpected extra event would show up now
  } finally {
    await subscription.close();
    await client.close();
  }
  expect(errors).toEqual([]);
  return { read, checkpointed };
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

describe('checkpoint and restart through Azurite', () => {
  it('a restarted consumer continues right after its blob checkpoints', async () => {
    const producer = new EventHubProducerClient(cs);
    try {
      for (const p of PARTITIONS) {
        await producer.sendBatch(
          range(0, 9).map((i) => ({ body: `p${p}-${i}` })),
          { partitionId: p },
        );
      }
      // First run: reads all ten events of each partition but checkpoints only batches that start
      // below sequence number 4, so the batches after that are read and not checkpointed.
      const first = await runConsumer(9, (_p, batch) => (batch[0]?.sequenceNumber ?? 0) < 4);
      for (const p of PARTITIONS) {
        expect(first.read.get(p)).toEqual(range(0, 9));
        const ckpt = first.checkpointed.get(p) as number;
        expect(ckpt).toBeGreaterThanOrEqual(3);
        expect(ckpt).toBeLessThan(9);
      }

      // The checkpoints live in Azurite: a brand-new store instance lists them.
      const probe = new EventHubConsumerClient(GROUP, cs);
      const namespace = probe.fullyQualifiedNamespace;
      await probe.close();
      const stored = await new BlobCheckpointStore(container).listCheckpoints(namespace, HUB, GROUP);
      expect(Object.fromEntries(stored.map((c) => [c.partitionId, c.sequenceNumber]))).toEqual(
        Object.fromEntries(first.checkpointed),
      );

      // While it is down, more events arrive.
      for (const p of PARTITIONS) {
        await producer.sendBatch(
          range(10, 12).map((i) => ({ body: `p${p}-${i}` })),
          { partitionId: p },
        );
      }

      // Second run, same container: starts after the checkpoint (not at `earliest`), re-reads only
      // the un-checkpointed tail, skips nothing, and checkpoints everything.
      const second = await runConsumer(12, () => true);
      for (const p of PARTITIONS) {
        const ckpt = first.checkpointed.get(p) as number;
        expect(second.read.get(p)).toEqual(range(ckpt + 1, 12));
        expect(second.checkpointed.get(p)).toBe(12);
      }
    } finally {
      await producer.close();
    }
  }, 30_000);
});
