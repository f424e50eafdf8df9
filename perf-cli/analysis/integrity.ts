import type { IntegrityFigures } from './summary-types.js';

/**
 * Tracks which sequence numbers of which bursts arrived, in arrival order, to count delivered,
 * lost, duplicated and out-of-order logical messages. Memory: one bit per expected message.
 *
 * Out of order: a message whose sequence number is lower than one already seen in the same burst
 * from the same device (arrival order = IoT Hub enqueue order within a partition, which keeps a
 * device's messages in order).
 */
export class IntegrityTracker {
  private readonly seen = new Map<string, Uint8Array>();
  private readonly highest = new Map<string, number>();
  private delivered = 0;
  private duplicates = 0;
  private outOfOrder = 0;
  private unexpected = 0;

  /**
   * @param burstLength - messages per burst (sequence numbers 0 … burstLength-1).
   * @param bursts - bursts in the session (numbered from 1).
   */
  constructor(
    private readonly sessionId: string,
    private readonly burstLength: number,
    private readonly bursts: number,
  ) {}

  /** Records one arrival. Returns false when it belongs to another session or is out of range. */
  record(sid: string, burst: number, seq: number, device = ''): boolean {
    if (sid !== this.sessionId) return false;
    if (burst < 1 || burst > this.bursts || seq < 0 || seq >= this.burstLength) {
      this.unexpected += 1;
      return false;
    }
    const key = String(burst);
    let bits = this.seen.get(key);
    if (bits === undefined) {
      bits = new Uint8Array(Math.ceil(this.burstLength / 8));
      this.seen.set(key, bits);
    }
    const byte = seq >> 3;
    const mask = 1 << (seq & 7);
    if (((bits[byte] as number) & mask) !== 0) {
      this.duplicates += 1;
    } else {
      bits[byte] = (bits[byte] as number) | mask;
      this.delivered += 1;
    }
    const orderKey = `${burst}/${device}`;
    const high = this.highest.get(orderKey) ?? -1;
    if (seq < high) this.outOfOrder += 1;
    else this.highest.set(orderKey, seq);
    return true;
  }

  /** Distinct logical messages delivered so far. */
  get deliveredCount(): number {
    return this.delivered;
  }

  /** True once every expected message arrived at least once. */
  get complete(): boolean {
    return this.delivered >= this.burstLength * this.bursts;
  }

  /** Messages of a burst not seen yet. */
  missingIn(burst: number): number {
    const bits = this.seen.get(String(burst));
    if (bits === undefined) return this.burstLength;
    let have = 0;
    for (let seq = 0; seq < this.burstLength; seq++)
      if (((bits[seq >> 3] as number) & (1 << (seq & 7))) !== 0) have++;
    return this.burstLength - have;
  }

  /** Figures for the summary; `expired` comes from edgeHub's ttl_expiry drops. */
  figures(expired = 0): IntegrityFigures {
    const sent = this.burstLength * this.bursts;
    return {
      sent,
      delivered: this.delivered,
      lost: sent - this.delivered,
      duplicates: this.duplicates,
      outOfOrder: this.outOfOrder,
      expired,
    };
  }

  /** Arrivals with a sequence or burst number outside the session's range. */
  get unexpectedCount(): number {
    return this.unexpected;
  }
}
