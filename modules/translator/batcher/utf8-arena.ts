/** Bytes of one arena chunk. */
const CHUNK_BYTES = 512 * 1024;
/** Strings whose worst case is above this get a buffer of their own (exact size, no waste). */
const OWN_BUFFER_ABOVE = 64 * 1024;
/** The most UTF-8 bytes one UTF-16 code unit becomes (a lone surrogate: U+FFFD, 3 bytes). */
const MAX_BYTES_PER_UNIT = 3;
/** Emptied chunks kept for reuse; more than a few would only hold memory. */
const SPARE_CHUNKS = 4;

/** Slices of one chunk still held by their callers. */
interface ChunkUse {
  live: number;
}

/**
 * Encodes record JSON to UTF-8 into large shared chunks, one pass per string, or holds a record
 * its caller writes as bytes ({@link begin}, {@link commit}: RecordWriter, around payload bytes that
 * are already its JSON).
 *
 * Why: `Buffer.byteLength` (V8's `String::Utf8Length`, which counts character by character) on
 * every record, then `join` and `Buffer.from` of the whole 256 KiB batch, took 14% of the
 * translator's CPU at 1 KB (`perf record` of a 240,000-message bench run: Utf8Length 9.9%,
 * ArrayJoin 3.7%). Encoding once helps only with the splice: V8's UTF-8 writer costs as much as
 * its length count, so a string still pays one pass; bytes spliced from the payload pay a copy.
 *
 * A chunk is never rewritten while a slice of it is held. Callers give slices back with
 * {@link release} once nothing reads them (the batcher, once a batch's body is built), and a chunk
 * whose slices are all back is written again instead of allocating a new one. Why: every new chunk
 * is a new ArrayBuffer, and V8 starts a mark-compact for "external memory pressure" after every
 * 64 MB or so of them; at 8 KB messages the translator ran about two a second, with concurrent
 * marking a quarter of its CPU (`perf record`, `--trace-incremental-marking`). A slice never given
 * back only keeps its chunk from being reused: the garbage collector frees it as before.
 */
export class Utf8Arena {
  private chunk: Buffer = Buffer.allocUnsafeSlow(0);
  private use: ChunkUse = { live: 0 };
  private used = 0;
  /** Chunks by their ArrayBuffer, for {@link release}; weak, so unreleased chunks are still freed. */
  private readonly uses = new WeakMap<ArrayBufferLike, ChunkUse>();
  private readonly spare: Buffer[] = [];
  private allocated = 0;
  /** The buffer of its own a {@link begin} above {@link OWN_BUFFER_ABOVE} is writing, until commit. */
  private own: Buffer | undefined;

  /** The UTF-8 bytes of `text`, a slice no other call writes to while it is held. */
  encode(text: string): Buffer {
    const worst = text.length * MAX_BYTES_PER_UNIT;
    if (worst > OWN_BUFFER_ABOVE) return Buffer.from(text, 'utf8');
    const chunk = this.reserve(worst);
    const start = this.used;
    this.used += chunk.write(text, start, 'utf8');
    this.use.live++;
    return chunk.subarray(start, this.used);
  }

  /**
   * Starts a slice of at most `worst` bytes written by the caller: write into the returned buffer
   * from {@link cursor} on, then {@link commit} where the writing ended. Nothing else may use the
   * arena in between.
   */
  begin(worst: number): Buffer {
    if (worst > OWN_BUFFER_ABOVE) {
      this.own = Buffer.allocUnsafe(worst);
      return this.own;
    }
    this.own = undefined;
    return this.reserve(worst);
  }

  /** Where the slice started by {@link begin} starts in the buffer it returned. */
  get cursor(): number {
    return this.own === undefined ? this.used : 0;
  }

  /** Ends the slice started by {@link begin} at `end` (exclusive) and returns it. */
  commit(end: number): Buffer {
    const own = this.own;
    if (own !== undefined) {
      this.own = undefined;
      return own.subarray(0, end);
    }
    const start = this.used;
    this.used = end;
    this.use.live++;
    return this.chunk.subarray(start, end);
  }

  /**
   * Gives back a slice {@link encode} or {@link splice} returned: the caller will not read it
   * again. Call once per slice; anything else (a buffer of its own) is ignored.
   */
  release(slice: Buffer): void {
    const use = this.uses.get(slice.buffer);
    if (use === undefined || use.live <= 0) return;
    use.live--;
    if (use.live === 0 && use !== this.use) this.recycle(slice.buffer);
  }

  /** Chunks allocated so far, and emptied chunks waiting for reuse. */
  get stats(): { readonly allocated: number; readonly spare: number } {
    return { allocated: this.allocated, spare: this.spare.length };
  }

  /** The chunk where `bytes` more fit from `used` on: the current one, or a reused or new one. */
  private reserve(bytes: number): Buffer {
    if (this.chunk.length - this.used < bytes) {
      const old = this.chunk;
      const oldUse = this.use;
      this.chunk = this.spare.pop() ?? this.newChunk();
      this.use = { live: 0 };
      this.uses.set(this.chunk.buffer, this.use);
      this.used = 0;
      if (old.length > 0 && oldUse.live === 0) this.recycle(old.buffer);
    }
    return this.chunk;
  }

  private newChunk(): Buffer {
    this.allocated++;
    return Buffer.allocUnsafeSlow(CHUNK_BYTES);
  }

  private recycle(buffer: ArrayBufferLike): void {
    this.uses.delete(buffer);
    if (this.spare.length < SPARE_CHUNKS) this.spare.push(Buffer.from(buffer, 0, CHUNK_BYTES));
  }
}
