const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const QUOTE = 0x22;
const COMMA = 0x2c;
const MINUS = 0x2d;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;
const COLON = 0x3a;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const PLUS = 0x2b;
const LOWER_E = 0x65;
const UPPER_E = 0x45;
const TRUE = Buffer.from('true');
const FALSE = Buffer.from('false');
const NULL = Buffer.from('null');

// Walker states: what the next non-space byte must be.
const KEY_OR_END = 0;
const VALUE_OR_END = 1;
const KEY = 2;
const VALUE = 3;
const AFTER_VALUE = 4;

/** Nesting the walk follows; deeper text is refused (the caller falls back to `JSON.parse`). */
const MAX_DEPTH = 512;
/** Depths whose members can be reported. */
const MAX_REPORTED_DEPTH = 7;
// Walk state, reused: a walk is synchronous and a visitor does not start another one.
/** Per open container: 1 object, 0 array. */
const objectAt = new Uint8Array(MAX_DEPTH);
const keyStartAt = new Int32Array(MAX_REPORTED_DEPTH + 1);
const keyEndAt = new Int32Array(MAX_REPORTED_DEPTH + 1);
const valueStartAt = new Int32Array(MAX_REPORTED_DEPTH + 1);
const valueEndAt = new Int32Array(MAX_REPORTED_DEPTH + 1);
const beforeAt = new Int32Array(MAX_REPORTED_DEPTH + 1);
const hasValueAt = new Uint8Array(MAX_REPORTED_DEPTH + 1);

/** Receives the members a {@link walkPlainJson} walk reports. */
export interface JsonWalkVisitor {
  /** Members of containers up to this depth are reported (0: the top container's own), at most 7. */
  readonly maxDepth: number;
  /**
   * One member of an object, or element of an array, inside a container at `depth`, once its
   * value has ended: the key's bytes `[keyStart, keyEnd)` without quotes (-1 in an array), the
   * value `[start, end)`, the `{`, `[` or `,` before the member and the `,` or closer after
   * it. A container's own members are reported before the member that holds it.
   */
  member(
    depth: number,
    keyStart: number,
    keyEnd: number,
    start: number,
    end: number,
    before: number,
    after: number,
  ): void;
}

/**
 * Validates JSON text whose top value is an object or an array, in one pass without building it,
 * and reports the members of its containers down to the visitor's depth. False when the text is
 * not valid JSON, its top value is not a container, or it nests deeper than 512.
 *
 * Only for text that holds no backslash (the caller checks with a native search): then every
 * `"` opens or closes a string, and a string is valid exactly when it holds no control
 * character, so strings are skipped by searching for the closing quote. Bytes of multi-byte UTF-8
 * are all >= 0x80, so they never look like structure; whether they are valid UTF-8 is the caller's
 * business, as with `Buffer.toString`.
 *
 * Why: `JSON.parse` builds every string and object of a message only for the caller to read a
 * few members (the translator reads a payload's `perf` and `ts`, plain-json-scan.ts). The walk
 * gains where strings are long: the simulator's 8 KB payload decoded in 9.6 µs against 13.0, the
 * 1 KB one in 4.1 against 4.2. For `edgeperf`'s 256 KiB envelopes of 1 KB records, reading
 * every record's `perf` this way took 4.0 ms per MB against 3.5 for `JSON.parse`, so edgeperf
 * parses.
 */
export function walkPlainJson(text: Uint8Array, visitor: JsonWalkVisitor): boolean {
  const n = text.length;
  const maxDepth = Math.min(visitor.maxDepth, MAX_REPORTED_DEPTH);
  let i = skipSpace(text, 0);
  const first = text[i];
  if (first !== OPEN_OBJECT && first !== OPEN_ARRAY) return false;
  let depth = 0;
  let inObject = first === OPEN_OBJECT;
  let state = inObject ? KEY_OR_END : VALUE_OR_END;
  beforeAt[0] = i;
  hasValueAt[0] = 0;
  i++;
  for (;;) {
    i = skipSpace(text, i);
    if (i >= n) return false;
    const c = text[i] as number;
    if (state === KEY_OR_END || state === VALUE_OR_END) {
      // An empty container: its closer is handled as after a value, with no member to report.
      if (c === (inObject ? CLOSE_OBJECT : CLOSE_ARRAY)) state = AFTER_VALUE;
      else state = inObject ? KEY : VALUE;
    }
    if (state === KEY) {
      if (c !== QUOTE) return false;
      const close = stringEnd(text, i);
      if (close === -1) return false;
      if (depth <= maxDepth) {
        keyStartAt[depth] = i + 1;
        keyEndAt[depth] = close;
      }
      i = skipSpace(text, close + 1);
      if (text[i] !== COLON) return false;
      i++;
      state = VALUE;
    } else if (state === VALUE) {
      if (depth <= maxDepth) valueStartAt[depth] = i;
      if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
        if (depth + 1 === MAX_DEPTH) return false;
        objectAt[depth] = inObject ? 1 : 0;
        depth++;
        inObject = c === OPEN_OBJECT;
        if (depth <= maxDepth) {
          beforeAt[depth] = i;
          hasValueAt[depth] = 0;
        }
        state = inObject ? KEY_OR_END : VALUE_OR_END;
        i++;
        continue;
      }
      const end = scalarEnd(text, i, c);
      if (end === -1) return false;
      if (depth <= maxDepth) {
        valueEndAt[depth] = end;
        hasValueAt[depth] = 1;
      }
      i = end;
      state = AFTER_VALUE;
    } else {
      // After a value: a comma, or the container's end.
      if (c !== COMMA && c !== (inObject ? CLOSE_OBJECT : CLOSE_ARRAY)) return false;
      if (depth <= maxDepth && hasValueAt[depth] === 1) {
        visitor.member(
          depth,
          inObject ? (keyStartAt[depth] as number) : -1,
          inObject ? (keyEndAt[depth] as number) : -1,
          valueStartAt[depth] as number,
          valueEndAt[depth] as number,
          beforeAt[depth] as number,
          i,
        );
      }
      if (c === COMMA) {
        if (depth <= maxDepth) {
          beforeAt[depth] = i;
          hasValueAt[depth] = 0;
        }
        state = inObject ? KEY : VALUE;
        i++;
        continue;
      }
      // Only whitespace may follow the top container.
      if (depth === 0) return skipSpace(text, i + 1) === n;
      depth--;
      inObject = objectAt[depth] === 1;
      i++;
      if (depth <= maxDepth) {
        valueEndAt[depth] = i;
        hasValueAt[depth] = 1;
      }
      state = AFTER_VALUE;
    }
  }
}

/** True when the bytes `[from, to)` of `text` are `name`. */
export function isName(text: Uint8Array, from: number, to: number, name: Uint8Array): boolean {
  if (to - from !== name.length) return false;
  for (let k = 0; k < name.length; k++) if (text[from + k] !== name[k]) return false;
  return true;
}

/** True when the JSON value starting with byte `c` is a number. */
export function startsNumber(c: number | undefined): boolean {
  return c !== undefined && (c === MINUS || (c >= ZERO && c <= NINE));
}

/** The index of the first byte at or after `from` that is not JSON whitespace. */
export function skipSpace(text: Uint8Array, from: number): number {
  let i = from;
  for (;;) {
    const c = text[i];
    if (c !== SPACE && c !== LF && c !== CR && c !== TAB) return i;
    i++;
  }
}

/** The index after the string, number or literal that starts at `from` with `c`; -1 when invalid. */
function scalarEnd(text: Uint8Array, from: number, c: number): number {
  if (c === QUOTE) {
    const close = stringEnd(text, from);
    return close === -1 ? -1 : close + 1;
  }
  if (c === MINUS || (c >= ZERO && c <= NINE)) return numberEnd(text, from);
  const literal = c === 0x74 ? TRUE : c === 0x66 ? FALSE : c === 0x6e ? NULL : undefined;
  if (literal === undefined || !isName(text, from, from + literal.length, literal)) return -1;
  return from + literal.length;
}

/** The index of the quote closing the string that opens at `open`; -1 when invalid or unclosed. */
function stringEnd(text: Uint8Array, open: number): number {
  // Keys and short values: one byte loop finds the quote and checks the bytes before it. Longer
  // strings: a native search for the quote (a call into Buffer.indexOf costs as much as reading
  // ~100 bytes in JavaScript), then the check four bytes at a time.
  let k = open + 1;
  const shortEnd = Math.min(text.length, k + SHORT_STRING);
  for (; k < shortEnd; k++) {
    const c = text[k] as number;
    if (c === QUOTE) return k;
    // A raw control character is invalid in a JSON string; bytes of multi-byte UTF-8 are >= 0x80.
    if (c < SPACE) return -1;
  }
  const close = text.indexOf(QUOTE, k);
  if (close === -1) return -1;
  return hasControlByte(text, k, close) ? -1 : close;
}

/** Bytes of a string read one by one before searching for its end natively. */
const SHORT_STRING = 64;

/** Strings shorter than this are checked byte by byte. */
const WORDWISE_FROM = 32;

/**
 * True when a byte in `[from, to)` is below 0x20. Long strings are read four bytes at a time:
 * `(w - 0x20202020) & ~w & 0x80808080` is non-zero exactly when a byte of `w` is below 0x20
 * (a borrow starts only at such a byte; bytes >= 0x80 are masked out by `~w`). Why: the byte
 * loop ran at 1.4 ns a byte, words at 0.5, and the simulator's padding is most of an 8 KB payload.
 */
function hasControlByte(text: Uint8Array, from: number, to: number): boolean {
  let k = from;
  if (to - from >= WORDWISE_FROM) {
    for (; ((text.byteOffset + k) & 3) !== 0; k++) if ((text[k] as number) < SPACE) return true;
    const words = new Uint32Array(text.buffer, text.byteOffset + k, (to - k) >>> 2);
    for (let w = 0; w < words.length; w++) {
      const x = words[w] as number;
      if (((x - 0x20202020) & ~x & 0x80808080) !== 0) return true;
    }
    k += words.length * 4;
  }
  for (; k < to; k++) if ((text[k] as number) < SPACE) return true;
  return false;
}

/** The index after the number that starts at `from` (JSON's grammar); -1 when invalid. */
function numberEnd(text: Uint8Array, from: number): number {
  let i = from;
  if (text[i] === MINUS) i++;
  if (text[i] === ZERO) i++;
  else {
    const d = digitsEnd(text, i);
    if (d === i) return -1;
    i = d;
  }
  if (text[i] === DOT) {
    const d = digitsEnd(text, i + 1);
    if (d === i + 1) return -1;
    i = d;
  }
  if (text[i] === LOWER_E || text[i] === UPPER_E) {
    i++;
    if (text[i] === PLUS || text[i] === MINUS) i++;
    const d = digitsEnd(text, i);
    if (d === i) return -1;
    i = d;
  }
  return i;
}

function digitsEnd(text: Uint8Array, from: number): number {
  let i = from;
  for (;;) {
    const c = text[i];
    if (c === undefined || c < ZERO || c > NINE) return i;
    i++;
  }
}
