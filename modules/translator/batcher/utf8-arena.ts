/** Bytes of one arena chunk. */
const CHUNK_BYTES = 512 * 1024;
/** Strings whose worst case is above this get a buffer of their own (exact size, no waste). */
const OWN_BUFFER_ABOVE = 64 * 1024;
/** The most UTF-8 bytes one UTF-16 code unit becomes (a lone surrogate: U+FFFD, 3 bytes). */
const MAX_BYTES_PER_UNIT = 3;

/**
 * Encodes record JSON to UTF-8 into large shared chunks, one pass per string, or splices a record
 * around payload bytes that are already its JSON (the JSON decoder's `rawData`).
 *
 * Why: `Buffer.byteLength` (V8's `String::Utf8Length`, which counts character by character) on
 * every record, then `join` and `Buffer.from` of the whole 256 KiB batch, took 14% of the
 * translator's CPU at 1 KB (`perf record` of a 240,000-message bench run: Utf8Length 9.9%,
 * ArrayJoin 3.7%). Encoding once helps only with the splice: V8's UTF-8 writer costs as much as
 * its length count, so a string still pays one pass; bytes spliced from the payload pay a copy.
 *
 * A chunk is never rewritten: each string gets a fresh slice, and a chunk is freed once no slice
 * of it is held. Records leave the batcher roughly in arrival order, so at most about one chunk
 * beyond the records held stays alive.
 */
export class Utf8Arena {
  private chunk = Buffer.allocUnsafeSlow(0);
  private used = 0;

  /** The UTF-8 bytes of `text`, a slice no other call writes to. */
  encode(text: string): Buffer {
    const worst = text.length * MAX_BYTES_PER_UNIT;
    if (worst > OWN_BUFFER_ABOVE) return Buffer.from(text, 'utf8');
    const chunk = this.reserve(worst);
    const start = this.used;
    this.used += chunk.write(text, start, 'utf8');
    return chunk.subarray(start, this.used);
  }

  /** The UTF-8 bytes of \`head\`, then \`middle\` less its bytes \`[cutStart, cutEnd)\`, then \`tail\`. */
  splice(head: string, middle: Buffer, cutStart: number, cutEnd: number, tail: string): Buffer {
    const worst = (head.length + tail.length) * MAX_BYTES_PER_UNIT + middle.length - (cutEnd - cutStart);
    if (worst > OWN_BUFFER_ABOVE) {
      const parts = [
        Buffer.from(head),
        middle.subarray(0, cutStart),
        middle.subarray(cutEnd),
        Buffer.from(tail),
      ];
      return Buffer.concat(parts);
    }
    const chunk = this.reserve(worst);
    const start = this.used;
    let at = start + chunk.write(head, start, 'utf8');
    if (cutStart > 0) at += middle.copy(chunk, at, 0, cutStart);
    at += middle.copy(chunk, at, cutEnd);
    at += chunk.write(tail, at, 'utf8');
    this.used = at;
    return chunk.subarray(start, at);
  }

  /** The chunk where \`bytes\` more fit from \`used\` on: the current one, or a new one. */
  private reserve(bytes: number): Buffer {
    if (this.chunk.length - this.used < bytes) {
      this.chunk = Buffer.allocUnsafeSlow(CHUNK_BYTES);
      this.used = 0;
    }
    return this.chunk;
  }
}
