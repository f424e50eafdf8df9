import type { EdgeMessage } from '../message.js';

/** One stored message in one endpoint+priority queue. */
export interface QueueEntry {
  /** Store-wide sequence number; orders a queue (FIFO). */
  readonly seq: number;
  readonly endpoint: string;
  readonly priority: number;
  /** Unix ms after which the message is expired (`Infinity` = never). */
  readonly expiresAtMs: number;
  /** Size counted for batching and store limits: body plus property names and values, bytes. */
  readonly sizeBytes: number;
  /** `device/module` of the sender, the pump's grouping key. */
  readonly senderKey: string;
  /**
   * Held in memory by the in-memory store; the persistent one holds the newest messages' bodies
   * here too, up to its cache budget, and reads the rest from disk on demand.
   */
  message?: EdgeMessage;
  /** The persistent store counts this entry's message against its cache budget. */
  cached?: boolean;
  removed: boolean;
}

/**
 * One FIFO queue (endpoint + priority). Removal marks entries and compacts the head, so removing
 * acknowledged messages in any order stays O(1) amortised.
 */
export class MessageQueue {
  private entries: QueueEntry[] = [];
  private head = 0;
  private readonly bySeq = new Map<number, QueueEntry>();
  private bytes = 0;

  /** Live (not removed) messages. */
  get length(): number {
    return this.bySeq.size;
  }

  /** Sum of live entries' `sizeBytes`. */
  get sizeBytes(): number {
    return this.bytes;
  }

  insert(entry: QueueEntry): void {
    const last = this.entries.at(-1);
    if (last === undefined || last.seq < entry.seq) {
      this.entries.push(entry);
    } else {
      // Rare: commits finishing out of order. Keep FIFO by sequence.
      let i = this.entries.length;
      while (i > this.head && (this.entries[i - 1] as QueueEntry).seq > entry.seq) i--;
      this.entries.splice(i, 0, entry);
    }
    this.bySeq.set(entry.seq, entry);
    this.bytes += entry.sizeBytes;
  }

  /** Up to `limit` live entries from the head, in order. */
  peek(limit: number): QueueEntry[] {
    const out: QueueEntry[] = [];
    for (let i = this.head; i < this.entries.length && out.length < limit; i++) {
      const e = this.entries[i] as QueueEntry;
      if (!e.removed) out.push(e);
    }
    return out;
  }

  /** Removes one entry; false when it was not there (already acked or expired). */
  remove(seq: number): QueueEntry | undefined {
    const e = this.bySeq.get(seq);
    if (e === undefined) return undefined;
    this.bySeq.delete(seq);
    e.removed = true;
    e.message = undefined;
    this.bytes -= e.sizeBytes;
    this.compact();
    return e;
  }

  /**
   * Expired entries to delete: only from the head up to the first unexpired one (`entireQueue`
   * false, edgeHub's default), or anywhere in the queue.
   */
  expired(nowMs: number, entireQueue: boolean): QueueEntry[] {
    const out: QueueEntry[] = [];
    for (let i = this.head; i < this.entries.length; i++) {
      const e = this.entries[i] as QueueEntry;
      if (e.removed) continue;
      if (e.expiresAtMs <= nowMs) out.push(e);
      else if (!entireQueue) break;
    }
    return out;
  }

  private compact(): void {
    while (this.head < this.entries.length && (this.entries[this.head] as QueueEntry).removed) this.head++;
    if (this.head === this.entries.length) {
      this.entries = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }
}
