import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { open } from 'lmdb';
import { afterEach, describe, expect, it } from 'vitest';
import { parseRoutes } from '../../emulator/edgehub/routes/index.js';
import { parseEdgeHubEnv } from '../../emulator/edgehub/settings.js';
import { MessageStore } from '../../emulator/edgehub/store/message-store.js';
import { StoreAndForward } from '../../emulator/edgehub/store-and-forward.js';
import { IotHubIngest } from '../../emulator/iothub/ingest.js';
import { LinkModel } from '../../emulator/iothub/link-model.js';

const child = fileURLToPath(new URL('./store-kill-child.ts', import.meta.url));
const dirs: string[] = [];
const children: ChildProcess[] = [];

afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'edgeperf-store-'));
  dirs.push(dir);
  return dir;
}

describe('persistent store (LMDB)', () => {
  it('keeps every acknowledged message across a SIGKILL of the process', async () => {
    const folder = await tempDir();
    const proc = spawn(process.execPath, ['--import', 'tsx', child, folder], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(proc);
    const acked: number[] = [];
    let buffered = '';
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      proc.once('exit', (_code, signal) => resolve(signal)),
    );
    await new Promise<void>((resolve, reject) => {
      proc.once('exit', () => reject(new Error('child exited early')));
      proc.stdout?.on('data', (chunk: Buffer) => {
        buffered += chunk.toString();
        const lines = buffered.split('\n');
        buffered = lines.pop() ?? '';
        for (const line of lines) if (/^\d+$/.test(line)) acked.push(Number(line));
        // Kill mid-stream, while enqueues are in flight.
        if (acked.length >= 2000 && proc.signalCode === null) {
          proc.kill('SIGKILL');
          resolve();
        }
      });
    });
    expect(await exited).toBe('SIGKILL');

    const store = new MessageStore({ persistent: true, folder });
    await store.start();
    try {
      const upstream = store.peek('iothub', Number.MAX_SAFE_INTEGER);
      const seqs = new Set(upstream.map((e) => Number(store.messageOf(e).properties.seq)));
      const lost = acked.filter((s) => !seqs.has(s));
      expect(lost).toEqual([]);
      expect(store.endpointLength('/modules/b/inputs/in')).toBeGreaterThanOrEqual(acked.length);
      // FIFO order (per writer) survives the restart, and bodies are intact.
      const byWorker = new Map<string, number[]>();
      for (const e of upstream) {
        const p = store.messageOf(e).properties;
        byWorker.set(p.worker ?? '', [...(byWorker.get(p.worker ?? '') ?? []), Number(p.seq)]);
      }
      for (const seqList of byWorker.values()) expect(seqList).toEqual([...seqList].sort((a, b) => a - b));
      const m = store.messageOf(upstream[7] as (typeof upstream)[number]);
      expect(m.body.length).toBe(1024);
      expect(m.body[0]).toBe(Number(m.properties.seq) % 256);
      expect(upstream[0]?.expiresAtMs).toBe(Number.POSITIVE_INFINITY);
      expect(m.system).toMatchObject({ connectionDeviceId: 'edge1', connectionModuleId: 'a' });
    } finally {
      await store.stop();
    }
  });

  // Commits run on the event loop's thread by default, on lmdb-js's writer thread with syncToDisk.
  it.each([false, true])(
    'removes acknowledged messages durably and continues sequence numbers after reopen (syncToDisk %s)',
    async (syncToDisk) => {
      const folder = await tempDir();
      const message = (seq: number) => ({
        id: `m${seq}`,
        body: Buffer.from(`body-${seq}`),
        properties: { seq: String(seq) },
        system: { connectionDeviceId: 'd', receivedAtMs: 1 },
      });
      const first = new MessageStore({ persistent: true, folder, syncToDisk });
      await first.start();
      await first.enqueue(
        Array.from({ length: 10 }, (_, i) => ({
          endpoint: 'iothub',
          priority: 0,
          message: message(i),
          expiresAtMs: 1e15,
        })),
      );
      first.remove(first.peek('iothub', 4));
      await first.stop();

      const second = new MessageStore({ persistent: true, folder, syncToDisk });
      await second.start();
      await second.enqueue([{ endpoint: 'iothub', priority: 0, message: message(10), expiresAtMs: 1e15 }]);
      const seqs = second.peek('iothub', 100).map((e) => Number(second.messageOf(e).properties.seq));
      expect(seqs).toEqual([4, 5, 6, 7, 8, 9, 10]);
      expect(second.messageOf(second.peek('iothub', 1)[0] as never).body.toString()).toBe('body-4');
      await second.stop();
    },
  );

  it('moves messages of a store written before bodies had a database of their own', async () => {
    const folder = await tempDir();
    const legacy = open({ path: join(folder, 'messages.lmdb'), compression: false });
    for (const seq of [3, 4]) {
      await legacy.put(['iothub', 0, seq], {
        i: `m${seq}`,
        b: Buffer.from(`old-${seq}`),
        p: { seq: String(seq) },
        s: { connectionDeviceId: 'd', receivedAtMs: 1 },
        e: 1e15,
      });
    }
    await legacy.close();

    const store = new MessageStore({ persistent: true, folder });
    await store.start();
    await store.enqueue([
      {
        endpoint: 'iothub',
        priority: 0,
        message: {
          id: 'm5',
          body: Buffer.from('new-5'),
          properties: { seq: '5' },
          system: { connectionDeviceId: 'd', receivedAtMs: 1 },
        },
        expiresAtMs: 1e15,
      },
    ]);
    const read = () =>
      store.peek('iothub', 100).map((e) => `${e.seq}:${store.messageOf(e).body.toString()}:${e.sizeBytes}`);
    expect(read()).toEqual(['3:old-3:9', '4:old-4:9', '5:new-5:9']);
    await store.stop();
    // Moved, not copied: a second start finds each message once.
    const again = new MessageStore({ persistent: true, folder, cacheBytes: 0 });
    await again.start();
    expect(again.peek('iothub', 100).map((e) => again.messageOf(e).body.toString())).toEqual([
      'old-3',
      'old-4',
      'new-5',
    ]);
    await again.stop();
  });

  it('keeps the newest bodies in memory up to its cache budget and reads the rest from disk', async () => {
    const folder = await tempDir();
    const message = (seq: number) => ({
      id: `m${seq}`,
      body: Buffer.alloc(1000, 48 + seq),
      properties: { seq: String(seq) },
      system: { connectionDeviceId: 'd', receivedAtMs: 1 },
    });
    const size = 1000 + 'seq'.length + 1;
    const store = new MessageStore({ persistent: true, folder, cacheBytes: 2 * size });
    await store.start();
    const enqueue = (seqs: number[]) =>
      store.enqueue(
        seqs.map((s) => ({ endpoint: 'iothub', priority: 0, message: message(s), expiresAtMs: 1e15 })),
      );
    await enqueue([0, 1, 2]);
    expect(store.cachedSizeBytes).toBe(2 * size);
    const bodies = () => store.peek('iothub', 100).map((e) => store.messageOf(e).body.toString().slice(0, 2));
    expect(bodies()).toEqual(['00', '11', '22']);
    // Removing a cached message frees its room for the next one; the uncached one came from disk.
    store.remove(store.peek('iothub', 1));
    expect(store.cachedSizeBytes).toBe(size);
    await enqueue([3]);
    expect(store.cachedSizeBytes).toBe(2 * size);
    store.remove(store.peek('iothub', 100));
    expect(store.cachedSizeBytes).toBe(0);
    await store.stop();
  });

  it('store and forward: messages queued during an outage are sent after an edgeHub restart', async () => {
    const dir = await tempDir();
    const env = parseEdgeHubEnv({ StorageFolder: dir, UsePersistentStorage: 'true' });
    const desired = {
      schemaVersion: '1.1' as const,
      routes: parseRoutes({ up: 'FROM /messages/* INTO $upstream' }),
    };
    const inputs = { deliver: () => Promise.reject(new Error('not connected')) };
    const message = (seq: number) => ({
      id: `r${seq}`,
      body: Buffer.from(JSON.stringify({ seq })),
      properties: { seq: String(seq) },
      system: { connectionDeviceId: 'edge1', connectionModuleId: 'translator', receivedAtMs: Date.now() },
    });

    const downLink = new LinkModel(new IotHubIngest(), { rttMs: 1, connectTimeoutMs: 5 });
    downLink.startOutage(60_000);
    const first = new StoreAndForward({
      env,
      desired,
      upstream: downLink,
      inputs,
      retryBaseMs: 5,
      retryMaxMs: 10,
    });
    await first.start();
    await Promise.all(Array.from({ length: 50 }, (_, i) => first.accept(message(i))));
    await first.stop();

    const received: number[] = [];
    const ingest = new IotHubIngest({ onEnqueued: (_p, m) => received.push(Number(m.properties.seq)) });
    const second = new StoreAndForward({
      env,
      desired,
      upstream: new LinkModel(ingest, { rttMs: 1 }),
      inputs,
    });
    await second.start();
    try {
      const deadline = Date.now() + 5000;
      while (received.length < 50 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(received).toEqual(Array.from({ length: 50 }, (_, i) => i));
    } finally {
      await second.stop();
    }
  });
});
