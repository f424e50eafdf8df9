import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Database, open, type RootDatabase } from 'lmdb';
import { StoreFullError } from '../contracts.js';
import { type EdgeMessage, identityKey, type SystemProperties } from '../message.js';
import { MessageQueue, type QueueEntry } from './queue.js';

/** Options for {@link MessageStore}. */
export interface MessageStoreOptions {
  /**
   * true: an embedded LMDB database under `folder`; everything whose `enqueue()` resolved survives a
   * crash (SIGKILL) of the process. false: in memory. Default true.
   */
  readonly persistent?: boolean;
  /** Storage folder (edgeHub's `StorageFolder` + `edgeHub`); required when persistent or backing up. */
  readonly folder?: string;
  /** In-memory store only: save to `folder` on graceful `stop()` and reload on `start()`. Default false. */
  readonly backupOnStop?: boolean;
  /**
   * Persistent store: fsync every commit, so acknowledged messages also survive power loss.
   * Default false: commits reach the OS (they survive a crash or SIGKILL of the process) without
   * an fsync each, like edgeHub's RocksDB whose write-ahead log is not synced per write; ~10x
   * faster for a sender that awaits each message.
   */
  readonly syncToDisk?: boolean;
  /** In-memory store only (`storeLimits.maxSizeBytes`): enqueue beyond it throws StoreFullError. */
  readonly maxSizeBytes?: number;
  /**
   * Persistent store: bytes of the newest messages also kept in memory, so that the upstream
   * pump sends them without reading them back (edgeHub's RocksDB serves recent writes from its
   * memtable the same way). Default 64 MiB; 0 reads every message from disk.
   *
   * Why: reading each 256 KB batch back from LMDB copied it twice more, and the garbage
   * collections those copies caused cost the runtime 12 ms of CPU per 1,000 batched messages
   * (`npm run bench`, persistent against in-memory store).
   */
  readonly cacheBytes?: number;
}

/** One message to put in one queue. */
export interface EnqueueRequest {
  readonly endpoint: string;
  readonly priority: number;
  readonly message: EdgeMessage;
  /** Unix ms; `Infinity` = never expires. */
  readonly expiresAtMs: number;
}

/** Length of one endpoint+priority queue. */
export interface QueueLength {
  readonly endpoint: string;
  readonly priority: number;
  readonly length: number;
}

/** What one cleanup pass deleted. */
export interface CleanupResult {
  readonly expired: readonly QueueEntry[];
}

/** A message's metadata in the `meta` database; its body is in `bodies` under the same key. */
interface StoredMeta {
  i: string;
  p: Record<string, string>;
  s: SystemProperties;
  e: number;
  /** Body length, bytes (sizes are rebuilt at start without reading bodies). */
  n: number;
}
/** A whole message in the root database, as stores written before the split kept them. */
interface LegacyValue {
  i: string;
  b: Uint8Array;
  p: Record<string, string>;
  s: SystemProperties;
  e: number;
}
type StoreKey = [string, number, number];

/** Size edgeHub-like accounting uses for a message: body + property names and values, bytes. */
export function messageSizeBytes(message: EdgeMessage): number {
  return message.body.length + propertyBytes(message.properties);
}

function propertyBytes(properties: Readonly<Record<string, string>>): number {
  let n = 0;
  for (const [k, v] of Object.entries(properties)) n += Buffer.byteLength(k) + Buffer.byteLength(v);
  return n;
}

function senderKeyOf(system: SystemProperties): string {
  const { connectionDeviceId: deviceId, connectionModuleId: moduleId } = system;
  return identityKey(moduleId === undefined ? { deviceId } : { deviceId, moduleId });
}

function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

const BACKUP_FILE = 'backup.json';

/**
 * edgeHub's message store: one FIFO queue per endpoint and priority (edge-facts §2), persistent
 * (LMDB, durable on commit) or in memory. Queue order and metadata are indexed in memory; the
 * persistent store reads message bodies from disk when the pump asks for them.
 */
export class MessageStore {
  private readonly options: MessageStoreOptions;
  private maxSizeBytes: number | undefined;
  private readonly queues = new Map<string, Map<number, MessageQueue>>();
  private root: RootDatabase | undefined;
  private meta: Database<StoredMeta, StoreKey> | undefined;
  /**
   * Bodies as raw bytes. Why apart from the metadata: msgpack-encoding a 256 KB body allocated a
   * 256 KB buffer per message, and the garbage collections those allocations started were most
   * of the runtime's CPU in `npm run bench`; raw bytes are copied by LMDB without allocating.
   */
  private bodies: Database<Buffer, StoreKey> | undefined;
  private nextSeq = 1;
  private bytes = 0;
  private pendingBytes = 0;
  private cachedBytes = 0;

  constructor(options: MessageStoreOptions = {}) {
    this.options = options;
    this.maxSizeBytes = options.maxSizeBytes;
  }

  /** Changes the in-memory limit (`storeLimits.maxSizeBytes`) live; undefined = no limit. */
  setMaxSizeBytes(maxSizeBytes: number | undefined): void {
    this.maxSizeBytes = maxSizeBytes;
  }

  /** True when backed by the embedded database. */
  get persistent(): boolean {
    return this.options.persistent ?? true;
  }

  /** Live messages in all queues (a message routed to two endpoints counts twice). */
  get totalLength(): number {
    let n = 0;
    for (const byPriority of this.queues.values()) for (const q of byPriority.values()) n += q.length;
    return n;
  }

  /** Bytes of persistent messages also held in memory (see `cacheBytes`). */
  get cachedSizeBytes(): number {
    return this.cachedBytes;
  }

  /** Bytes held, as counted against `maxSizeBytes`. */
  get totalSizeBytes(): number {
    return this.bytes;
  }

  /** Opens the database (or reloads an in-memory backup) and rebuilds the queue index. */
  async start(): Promise<void> {
    const folder = this.options.folder;
    if (this.persistent) {
      if (folder === undefined) throw new Error('MessageStore: folder is required when persistent');
      await mkdir(folder, { recursive: true });
      const sync = this.options.syncToDisk === true;
      const root = open({
        path: join(folder, 'messages.lmdb'),
        compression: false,
        ...(sync ? {} : { noSync: true, overlappingSync: false }),
      });
      this.root = root;
      this.meta = root.openDB<StoredMeta, StoreKey>({ name: 'meta', compression: false });
      this.bodies = root.openDB<Buffer, StoreKey>({ name: 'bodies', encoding: 'binary', compression: false });
      await this.migrateLegacy(root, this.meta, this.bodies);
      for (const { key, value } of this.meta.getRange()) {
        this.index({
          seq: key[2],
          endpoint: key[0],
          priority: key[1],
          expiresAtMs: value.e,
          sizeBytes: value.n + propertyBytes(value.p),
          senderKey: senderKeyOf(value.s),
          removed: false,
        });
        this.nextSeq = Math.max(this.nextSeq, key[2] + 1);
      }
    } else if (this.options.backupOnStop === true && folder !== undefined) {
      await this.loadBackup(folder);
    }
  }

  /** Closes the database, or writes the in-memory backup when enabled. */
  async stop(): Promise<void> {
    if (this.root !== undefined) {
      await this.root.close();
      this.root = undefined;
      this.meta = undefined;
      this.bodies = undefined;
    } else if (this.options.backupOnStop === true && this.options.folder !== undefined) {
      await this.saveBackup(this.options.folder);
    }
  }

  /**
   * Stores messages; resolves once they are durable (committed to the database: they survive a
   * crash of the process; with `syncToDisk` also a power loss) or, in memory, at once. Visible to `peek` only after that.
   * @throws StoreFullError when the in-memory store would exceed `maxSizeBytes`.
   */
  async enqueue(requests: readonly EnqueueRequest[]): Promise<void> {
    if (requests.length === 0) return;
    const entries = requests.map((r) => ({
      entry: {
        seq: this.nextSeq++,
        endpoint: r.endpoint,
        priority: r.priority,
        expiresAtMs: r.expiresAtMs,
        sizeBytes: messageSizeBytes(r.message),
        senderKey: senderKeyOf(r.message.system),
        removed: false,
      } satisfies QueueEntry,
      message: r.message,
    }));
    const incoming = entries.reduce((n, e) => n + e.entry.sizeBytes, 0);
    const max = this.maxSizeBytes;
    if (!this.persistent && max !== undefined && this.bytes + this.pendingBytes + incoming > max) {
      throw new StoreFullError(
        `message store is full: ${this.bytes + this.pendingBytes} of ${max} bytes (storeLimits.maxSizeBytes) in use`,
      );
    }
    const meta = this.meta;
    const bodies = this.bodies;
    if (meta === undefined || bodies === undefined) {
      for (const { entry, message } of entries) this.index({ ...entry, message });
      return;
    }
    this.pendingBytes += incoming;
    try {
      await this.write((sync) => {
        for (const { entry, message } of entries) {
          const key: StoreKey = [entry.endpoint, entry.priority, entry.seq];
          const value: StoredMeta = {
            i: message.id,
            p: { ...message.properties },
            s: { ...message.system },
            e: entry.expiresAtMs,
            n: message.body.length,
          };
          if (sync) {
            meta.putSync(key, value);
            bodies.putSync(key, message.body);
          } else {
            void meta.put(key, value);
            void bodies.put(key, message.body);
          }
        }
      });
    } finally {
      this.pendingBytes -= incoming;
    }
    const budget = this.options.cacheBytes ?? 64 * 1024 * 1024;
    for (const { entry, message } of entries) {
      if (this.cachedBytes + entry.sizeBytes > budget) {
        this.index({ ...entry });
      } else {
        this.cachedBytes += entry.sizeBytes;
        this.index({ ...entry, message, cached: true });
      }
    }
  }

  /**
   * Up to `limit` messages of an endpoint from the head, priority 0 first, FIFO within a priority.
   * Entries carry their message.
   */
  peek(endpoint: string, limit: number): QueueEntry[] {
    const byPriority = this.queues.get(endpoint);
    if (byPriority === undefined) return [];
    const out: QueueEntry[] = [];
    for (const priority of [...byPriority.keys()].sort((a, b) => a - b)) {
      if (out.length >= limit) break;
      out.push(...(byPriority.get(priority) as MessageQueue).peek(limit - out.length));
    }
    for (const e of out) this.load(e);
    return out;
  }

  /** The message of an entry (read from disk for the persistent store). */
  messageOf(entry: QueueEntry): EdgeMessage {
    return this.load(entry);
  }

  /** Deletes acknowledged entries; entries already gone (expired meanwhile) are skipped. */
  remove(entries: readonly QueueEntry[]): void {
    const gone: StoreKey[] = [];
    for (const e of entries) {
      const removed = this.queues.get(e.endpoint)?.get(e.priority)?.remove(e.seq);
      if (removed === undefined) continue;
      this.bytes -= removed.sizeBytes;
      if (removed.cached === true) this.cachedBytes -= removed.sizeBytes;
      gone.push([e.endpoint, e.priority, e.seq]);
    }
    const { meta, bodies } = this;
    if (meta === undefined || bodies === undefined || gone.length === 0) return;
    // Not awaited: a delete lost in a crash only means the message is sent again (at least once).
    void this.write((sync) => {
      for (const key of gone) {
        if (sync) {
          meta.removeSync(key);
          bodies.removeSync(key);
        } else {
          void meta.remove(key);
          void bodies.remove(key);
        }
      }
    });
  }

  /**
   * Runs `writes` in one LMDB write transaction, committed before the promise resolves.
   *
   * Without `syncToDisk` the transaction runs on this thread (`transactionSync`). Why: lmdb-js
   * commits asynchronous writes on a worker thread, and waking it for every batch on a busy
   * 2-core machine cost the runtime's thread its core (`perf`: `uv_queue_work` →
   * `pthread_cond_signal` → preempted) and the process CPU in handing over; committed here, the
   * runtime needed 12.6 instead of 14.7 ms of CPU per 1,000 1 KB messages (bench, three pairs).
   * With `syncToDisk` each commit waits for an fsync, which must not block the event loop: the
   * writes go to lmdb-js's writer thread, and those of one event turn share its transaction.
   */
  private write(writes: (sync: boolean) => void): Promise<unknown> {
    const root = this.root as RootDatabase;
    if (this.options.syncToDisk !== true) {
      root.transactionSync(() => writes(true));
      return Promise.resolve();
    }
    return root.transaction(() => writes(false));
  }

  /** Endpoints that have (or had) queues. */
  endpoints(): string[] {
    return [...this.queues.keys()];
  }

  /** Live messages queued for an endpoint (all priorities). */
  endpointLength(endpoint: string): number {
    let n = 0;
    for (const q of this.queues.get(endpoint)?.values() ?? []) n += q.length;
    return n;
  }

  /** Length of every queue, for `edgehub_queue_length`. */
  queueLengths(): QueueLength[] {
    const out: QueueLength[] = [];
    for (const [endpoint, byPriority] of this.queues) {
      for (const [priority, q] of byPriority) out.push({ endpoint, priority, length: q.length });
    }
    return out;
  }

  /**
   * Deletes expired messages: each queue's head only up to the first unexpired message
   * (`entireQueue` false, edgeHub's CheckEntireQueueOnCleanup default), or the whole queue.
   */
  cleanup(nowMs: number, entireQueue: boolean): CleanupResult {
    const expired: QueueEntry[] = [];
    for (const byPriority of this.queues.values()) {
      for (const q of byPriority.values()) expired.push(...q.expired(nowMs, entireQueue));
    }
    this.remove(expired);
    return { expired };
  }

  private index(entry: QueueEntry): void {
    let byPriority = this.queues.get(entry.endpoint);
    if (byPriority === undefined) {
      byPriority = new Map();
      this.queues.set(entry.endpoint, byPriority);
    }
    let q = byPriority.get(entry.priority);
    if (q === undefined) {
      q = new MessageQueue();
      byPriority.set(entry.priority, q);
    }
    q.insert(entry);
    this.bytes += entry.sizeBytes;
  }

  private load(entry: QueueEntry): EdgeMessage {
    if (entry.message !== undefined) return entry.message;
    const key: StoreKey = [entry.endpoint, entry.priority, entry.seq];
    const value = this.meta?.get(key);
    const body = this.bodies?.get(key);
    if (value === undefined || body === undefined)
      throw new Error(`message ${entry.seq} missing from the store`);
    // Not cached on read: only enqueue fills the cache (a backlog read after an outage would
    // otherwise pull the whole store into memory).
    return { id: value.i, body: asBuffer(body), properties: value.p, system: value.s };
  }

  /**
   * Moves whole messages that an earlier version kept in the root database into `meta` and
   * `bodies`, in one transaction, so an upgrade loses nothing queued.
   */
  private async migrateLegacy(
    root: RootDatabase,
    meta: Database<StoredMeta, StoreKey>,
    bodies: Database<Buffer, StoreKey>,
  ): Promise<void> {
    // The root database also names the two databases ('meta', 'bodies'): message keys are arrays.
    const legacy = [...root.getKeys()].filter((k): k is StoreKey => Array.isArray(k));
    if (legacy.length === 0) return;
    await root.transaction(() => {
      for (const key of legacy) {
        const v = root.get(key) as LegacyValue | undefined;
        if (v === undefined) continue;
        const body = asBuffer(v.b);
        void meta.put(key, { i: v.i, p: v.p, s: v.s, e: v.e, n: body.length });
        void bodies.put(key, body);
        void root.remove(key);
      }
    });
  }

  private async saveBackup(folder: string): Promise<void> {
    await mkdir(folder, { recursive: true });
    const rows: unknown[] = [];
    for (const byPriority of this.queues.values()) {
      for (const q of byPriority.values()) {
        for (const e of q.peek(Number.POSITIVE_INFINITY)) {
          const m = e.message as EdgeMessage;
          rows.push({
            endpoint: e.endpoint,
            priority: e.priority,
            expiresAtMs: Number.isFinite(e.expiresAtMs) ? e.expiresAtMs : null,
            id: m.id,
            body: m.body.toString('base64'),
            properties: m.properties,
            system: m.system,
          });
        }
      }
    }
    const file = join(folder, BACKUP_FILE);
    await writeFile(`${file}.tmp`, JSON.stringify({ v: 1, rows }));
    await rename(`${file}.tmp`, file);
  }

  private async loadBackup(folder: string): Promise<void> {
    const file = join(folder, BACKUP_FILE);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      return;
    }
    const parsed = JSON.parse(text) as {
      rows: {
        endpoint: string;
        priority: number;
        expiresAtMs: number | null;
        id: string;
        body: string;
        properties: Record<string, string>;
        system: SystemProperties;
      }[];
    };
    for (const r of parsed.rows) {
      const message: EdgeMessage = {
        id: r.id,
        body: Buffer.from(r.body, 'base64'),
        properties: r.properties,
        system: r.system,
      };
      this.index({
        seq: this.nextSeq++,
        endpoint: r.endpoint,
        priority: r.priority,
        expiresAtMs: r.expiresAtMs ?? Number.POSITIVE_INFINITY,
        sizeBytes: messageSizeBytes(message),
        senderKey: senderKeyOf(message.system),
        message,
        removed: false,
      });
    }
    // Like edgeHub, a backup is restored once; a crash later must not replay it twice.
    await rm(file, { force: true });
  }
}
