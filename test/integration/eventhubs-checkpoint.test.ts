import { randomUUID } from 'node:crypto';
import {
  type Checkpoint,
  type CheckpointStore,
  EventHubConsumerClient,
  EventHubProducerClient,
  earliestEventPosition,
  type PartitionOwnership,
  type ReceivedEventData,
} from '@azure/event-hubs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventHubsServer, EventLog } from '../../emulator/eventhubs/index.js';
import { createLogger } from '../../modules/common/index.js';

// A consumer with a checkpoint store claims partitions with owner level 0 and resumes from the
// stored offset after a restart. The store here is an in-test map with etag semantics (the blob
// store against Azurite is a later step); what is under test is the endpoint's side: epoch links,
// exclusive offset filters, load-balanced claims.

class MapCheckpointStore implements CheckpointStore {
  private readonly owners = new Map<string, PartitionOwnership>();
  private readonly checkpoints = new Map<string, Checkpoint>();

  async listOwnership(_ns: string, hub: string, group: string): Promise<PartitionOwnership[]> {
    return [...this.owners.values()].filter((o) => o.eventHubName === hub && o.consumerGroup === group);
  }

  async claimOwnership(claims: PartitionOwnership[]): Promise<PartitionOwnership[]> {
    const won: PartitionOwnership[] = [];
    for (const claim of claims) {
      const current = this.owners.get(claim.partitionId);
      if (current !== undefined && current.etag !== claim.etag) continue;
      const next = { ...claim, etag: randomUUID(), lastModifiedTimeInMs: Date.now() };
      this.owners.set(claim.partitionId, next);
      won.push(next);
    }
    return won;
  }

  async updateCheckpoint(checkpoint: Checkpoint): Promise<void> {
    this.checkpoints.set(checkpoint.partitionId, checkpoint);
  }

  async listCheckpoints(): Promise<Checkpoint[]> {
    return [...this.checkpoints.values()];
  }
}

let server: EventHubsServer;
let cs: string;

beforeAll(async () => {
  const log = new EventLog({ hubs: [{ name: 'ckpt', partitionCount: 2 }] });
  server = new EventHubsServer({
    log,
    port: 0,
    logger: createLogger('eventhubs-test', { level: 'silent' }),
  });
  await server.start();
  cs = server.connectionString('ckpt');
});

afterAll(async () => {
  await server.stop();
});

async function consumeUntil(store: CheckpointStore, n: number): Promise<string[]> {
  const client = new EventHubConsumerClient('$Default', cs, store, {
    loadBalancingOptions: { strategy: 'greedy', updateIntervalInMs: 100 },
    retryOptions: { maxRetries: 0, timeoutInMs: 5000 },
  });
  const bodies: string[] = [];
  const errors: Error[] = [];
  const subscription = client.subscribe(
    {
      processEvents: async (events: ReceivedEventData[], context) => {
        for (const e of events) bodies.push(String(e.body));
        const last = events.at(-1);
        if (last !== undefined) await context.updateCheckpoint(last);
      },
      processError: async (err) => {
        errors.push(err);
      },
    },
    { startPosition: earliestEventPosition, maxWaitTimeInSeconds: 0.2 },
  );
  try {
    const deadline = Date.now() + 10_000;
    while (bodies.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 400)); // anything extra would show up now
  } finally {
    await subscription.close();
    await client.close();
  }
  expect(errors).toEqual([]);
  return bodies.sort();
}

describe('checkpoint and restart', () => {
  it('a restarted consumer continues after its checkpoints on every partition', async () => {
    const producer = new EventHubProducerClient(cs);
    try {
      await producer.sendBatch(
        ['a0', 'a1', 'a2'].map((body) => ({ body })),
        { partitionId: '0' },
      );
      await producer.sendBatch(
        ['b0', 'b1', 'b2'].map((body) => ({ body })),
        { partitionId: '1' },
      );
      const store = new MapCheckpointStore();
      expect(await consumeUntil(store, 6)).toEqual(['a0', 'a1', 'a2', 'b0', 'b1', 'b2']);

      await producer.sendBatch([{ body: 'a3' }], { partitionId: '0' });
      await producer.sendBatch([{ body: 'b3' }, { body: 'b4' }], { partitionId: '1' });
      expect(await consumeUntil(store, 3)).toEqual(['a3', 'b3', 'b4']);
    } finally {
      await producer.close();
    }
  });
});
