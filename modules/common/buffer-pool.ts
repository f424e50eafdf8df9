/**
 * Buffers of one size to write into again, lent one at a time and taken back once their reader is
 * done with them (for a publish: once it was acknowledged, never after a failed attempt that a
 * client may still resend).
 *
 * Why: every new buffer above Node's small-buffer pool is a new ArrayBuffer, and V8 starts
 * mark-compacts for "external memory pressure" as they add up. The translator's 256 KiB envelope
 * bodies and the simulator's message bodies were each a new one per send (`--trace-gc`).
 *
 * Loans are tracked by ArrayBuffer (weakly), so a buffer comes back only if this pool lent it and
 * only once, and a buffer never given back is still garbage-collected.
 */
export class BufferPool {
  private readonly free: Buffer[] = [];
  private readonly lent = new WeakSet<ArrayBufferLike>();

  /**
   * @param bufferBytes - size of every pooled buffer; `take` serves sizes up to it.
   * @param keep - most free buffers held.
   */
  constructor(
    private readonly bufferBytes: number,
    private readonly keep: number,
  ) {}

  /** A buffer of exactly `size` bytes from the pool; undefined when `size` is above the pool's. */
  take(size: number): Buffer | undefined {
    if (size > this.bufferBytes) return undefined;
    const buffer = this.free.pop() ?? Buffer.allocUnsafeSlow(this.bufferBytes);
    this.lent.add(buffer.buffer);
    return buffer.subarray(0, size);
  }

  /** Takes a buffer from {@link take} back; anything else, or a second return, is ignored. */
  give(buffer: Buffer): void {
    if (!this.lent.delete(buffer.buffer) || this.free.length >= this.keep) return;
    this.free.push(Buffer.from(buffer.buffer, 0, this.bufferBytes));
  }

  /** Free buffers held now. */
  get size(): number {
    return this.free.length;
  }
}
