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
const PERF = Buffer.from('perf');
const TS = Buffer.from('ts');

// Scanner states: where the next non-space byte is read.
const KEY_OR_END = 0;
const VALUE_OR_END = 1;
const KEY = 2;
const VALUE = 3;
const AFTER_VALUE = 4;
// Which top-level key the member being read has.
const OTHER = 0;
const PERF_KEY = 1;
const TS_KEY = 2;

/**
 * What {@link scanPlainJsonObject} found in an object it accepted: byte offsets, -1 where absent.
 * One flat shape, no nested objects: it is made once per message on the translator's hot path.
 */
export interface PlainObjectScan {
  /** The top-level \`perf\` member's value \`[perfStart, perfEnd)\`, when there is exactly one. */
  readonly perfStart: number;
  readonly perfEnd: number;
  /**
   * The bytes that remove that member with the one comma separating it from its neighbours:
   * \`[cutStart, cutEnd)\` (the same cut whichever member it is, first, middle or last).
   */
  readonly cutStart: number;
  readonly cutEnd: number;
  /** The last top-level \`ts\` member's value \`[tsStart, tsEnd)\` when it is a number (\`JSON.parse\` keeps the last). */
  readonly tsStart: number;
  readonly tsEnd: number;
}

/** Nesting the scan follows; deeper text is left to \`JSON.parse\`. */
const MAX_DEPTH = 512;
/** Containers open around the current one: 1 object, 0 array (reused: the scan is synchronous). */
const outer = new Uint8Array(MAX_DEPTH);

/**
 * Validates a JSON object's UTF-8 text in one pass without building it, and finds its top-level
 * `perf` and `ts` members. Undefined when it cannot vouch for the text: not an object at the top,
 * not valid JSON, or `perf` repeated; the caller then uses `JSON.parse`, which decides and words
 * the error.
 *
 * Only for text that holds no backslash and is valid UTF-8 (the caller checks both with fast
 * native scans): then every `"` opens or closes a string and a string is valid exactly when it
 * holds no control character, so strings are skipped with a search for the closing quote.
 *
 * Why: `toString` and `JSON.parse` built a string and an object per message only to be thrown
 * away once the payload's own bytes went into the record; that was the largest part of the
 * translator's CPU (decode 25% at 1 KB, 21% at 8 KB, `--cpu-prof` of bench runs).
 */
export function scanPlainJsonObject(text: Uint8Array): PlainObjectScan | undefined {
  const n = text.length;
  let i = skipSpace(text, 0);
  if (text[i] !== OPEN_OBJECT) return undefined;
  i++;
  let depth = 0;
  let inObject = true;
  let state = KEY_OR_END;
  // The top object's member being read: the \`{\` or \`,\` before it, where its key starts, which
  // key, and its value's range.
  let delimiter = i - 1;
  let keyStart = -1;
  let key = OTHER;
  let valueStart = 0;
  let valueEnd = 0;
  let perfCount = 0;
  let perfStart = -1;
  let perfEnd = -1;
  let cutStart = 0;
  let cutEnd = 0;
  let tsStart = -1;
  let tsEnd = -1;
  for (;;) {
    i = skipSpace(text, i);
    if (i >= n) return undefined;
    const c = text[i] as number;
    if (state === KEY_OR_END || state === VALUE_OR_END) {
      // An empty container: its closer is handled as after a value.
      if (c === (inObject ? CLOSE_OBJECT : CLOSE_ARRAY)) state = AFTER_VALUE;
      else state = inObject ? KEY : VALUE;
    }
    if (state === KEY) {
      if (c !== QUOTE) return undefined;
      const close = stringEnd(text, i);
      if (close === -1) return undefined;
      if (depth === 0) {
        keyStart = i;
        key = isName(text, i + 1, close, PERF) ? PERF_KEY : isName(text, i + 1, close, TS) ? TS_KEY : OTHER;
      }
      i = skipSpace(text, close + 1);
      if (text[i] !== COLON) return undefined;
      i++;
      state = VALUE;
    } else if (state === VALUE) {
      if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
        if (depth === 0) {
          valueStart = i;
          if (key === TS_KEY) tsStart = tsEnd = -1;
        }
        if (depth === MAX_DEPTH) return undefined;
        outer[depth++] = inObject ? 1 : 0;
        inObject = c === OPEN_OBJECT;
        state = inObject ? KEY_OR_END : VALUE_OR_END;
        i++;
        continue;
      }
      const end = scalarEnd(text, i, c);
      if (end === -1) return undefined;
      if (depth === 0) {
        valueStart = i;
        valueEnd = end;
        if (key === TS_KEY) {
          const numeric = c === MINUS || (c >= ZERO && c <= NINE);
          tsStart = numeric ? i : -1;
          tsEnd = numeric ? end : -1;
        }
      }
      i = end;
      state = AFTER_VALUE;
    } else if (depth > 0) {
      // After a nested value: a comma, or the end of its container.
      if (c === COMMA) {
        state = inObject ? KEY : VALUE;
        i++;
        continue;
      }
      if (c !== (inObject ? CLOSE_OBJECT : CLOSE_ARRAY)) return undefined;
      inObject = outer[--depth] === 1;
      i++;
      if (depth === 0) valueEnd = i;
    } else {
      // After a member of the top object: a comma, or its end.
      if (c !== COMMA && c !== CLOSE_OBJECT) return undefined;
      if (key === PERF_KEY) {
        perfCount++;
        perfStart = valueStart;
        perfEnd = valueEnd;
        // After another member: cut from the comma before it. First: cut through the comma after.
        const afterOther = text[delimiter] === COMMA;
        cutStart = afterOther ? delimiter : keyStart;
        cutEnd = afterOther || c !== COMMA ? i : i + 1;
      }
      if (c === COMMA) {
        delimiter = i;
        key = OTHER;
        state = KEY;
        i++;
        continue;
      }
      // Only whitespace may follow the top object; a repeated perf is left to JSON.parse.
      if (skipSpace(text, i + 1) !== n || perfCount > 1) return undefined;
      return { perfStart, perfEnd, cutStart, cutEnd, tsStart, tsEnd };
    }
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

function skipSpace(text: Uint8Array, from: number): number {
  let i = from;
  for (;;) {
    const c = text[i];
    if (c !== SPACE && c !== LF && c !== CR && c !== TAB) return i;
    i++;
  }
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

function isName(text: Uint8Array, from: number, to: number, name: Uint8Array): boolean {
  if (to - from !== name.length) return false;
  for (let k = 0; k < name.length; k++) if (text[from + k] !== name[k]) return false;
  return true;
}
