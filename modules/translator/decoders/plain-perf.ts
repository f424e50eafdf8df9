import type { PerfFields } from '../../common/index.js';
import { isName, skipSpace } from './json-walk.js';

const QUOTE = 0x22;
const COMMA = 0x2c;
const MINUS = 0x2d;
const ZERO = 0x30;
const NINE = 0x39;
const COLON = 0x3a;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
/** Digits an integer may have to be read exactly here (below 2^53 always). */
const SAFE_DIGITS = 15;
/** readPerfFields' keys, in the order it writes them; a canonical perf object has them so. */
const KEYS = ['sid', 'burst', 'seq', 'ts', 'vc', 'dev'].map((k) => Buffer.from(k));

/**
 * Reads a `perf` object from JSON text that is already known to be valid, backslash-free UTF-8
 * (the translator's walk vouched for the whole payload), giving what
 * `readPerfFields({ perf: JSON.parse(text) })` gives.
 *
 * It also says whether the text is *canonical*: exactly what the record serialiser would write
 * for the result (the keys in readPerfFields' order, no others, no repeats, no whitespace,
 * integers in their shortest form). The simulator writes it so; the serialiser then copies those
 * bytes instead of writing the fields again.
 *
 * Why: `toString` plus `JSON.parse` plus `readPerfFields` cost 1.8 µs per message, about a tenth
 * of the translator's time per 1 KB message together with writing the fields back (--cpu-prof).
 *
 * One instance is reused: `read` sets {@link perf} and {@link canonical}.
 */
export class PlainPerfReader {
  /** What the last {@link read} found: the fields, or undefined when they are missing or invalid. */
  perf: PerfFields | undefined;
  /** Whether the last {@link read}'s text is byte for byte what the serialiser writes for {@link perf}. */
  canonical = false;
  /** The last string values read, by their bytes: a run's session and device ids repeat. */
  private readonly recent = [new RecentString(), new RecentString()];

  /**
   * Reads the object `text[start, end)`.
   * @returns false when a value is neither a string nor a number (an object, array, true, false
   *   or null): the caller parses with `JSON.parse` instead; {@link perf} is then stale.
   */
  read(text: Buffer, start: number, end: number): boolean {
    let canonical = true;
    let order = -1;
    let sid: string | number | undefined;
    let burst: string | number | undefined;
    let seq: string | number | undefined;
    let ts: string | number | undefined;
    let vc: string | number | undefined;
    let dev: string | number | undefined;
    let i = skipSpace(text, start);
    if (i !== start || text[i] !== OPEN_OBJECT) return false;
    i++;
    for (;;) {
      let j = skipSpace(text, i);
      if (j !== i) canonical = false;
      i = j;
      if (text[i] === CLOSE_OBJECT) break;
      const keyStart = i + 1;
      const keyEnd = quoteAt(text, keyStart, end);
      if (text[i] !== QUOTE || keyEnd < 0) return false;
      j = skipSpace(text, keyEnd + 1);
      if (text[j] !== COLON) return false;
      i = skipSpace(text, j + 1);
      if (j !== keyEnd + 1 || i !== j + 1) canonical = false;
      let value: string | number;
      const c = text[i] as number;
      if (c === QUOTE) {
        const stop = quoteAt(text, i + 1, end);
        if (stop < 0) return false;
        // sid and dev (keys 0 and 5) repeat from message to message; other strings are rare.
        value = (this.recent[text[keyStart] === 0x64 ? 1 : 0] as RecentString).of(text, i + 1, stop);
        i = stop + 1;
      } else if (c === MINUS || (c >= ZERO && c <= NINE)) {
        const stop = numberEnd(text, i, end);
        const exact = integerOf(text, i, stop);
        if (Number.isNaN(exact)) {
          // Not a short integer in its shortest form: JS reads JSON numbers as JSON.parse does.
          value = Number(text.toString('latin1', i, stop));
          canonical = false;
        } else value = exact;
        i = stop;
      } else return false;
      const key = keyIndex(text, keyStart, keyEnd);
      if (key <= order) canonical = false;
      else order = key;
      // The last of repeated keys wins, as in JSON.parse.
      if (key === 0) sid = value;
      else if (key === 1) burst = value;
      else if (key === 2) seq = value;
      else if (key === 3) ts = value;
      else if (key === 4) vc = value;
      else if (key === 5) dev = value;
      j = skipSpace(text, i);
      if (j !== i) canonical = false;
      i = j;
      if (text[i] === COMMA) i++;
      else if (text[i] !== CLOSE_OBJECT) return false;
    }
    if (i + 1 !== end) canonical = false;
    if (typeof sid !== 'string' || !isInt(burst) || !isInt(seq) || typeof ts !== 'number') {
      this.perf = undefined;
      this.canonical = false;
      return true;
    }
    const perf: { -readonly [K in keyof PerfFields]: PerfFields[K] } = { sid, burst, seq, ts };
    // Fields readPerfFields leaves out would not be written back: the text is not canonical then.
    if (isInt(vc)) perf.vc = vc;
    else if (vc !== undefined) canonical = false;
    if (typeof dev === 'string') perf.dev = dev;
    else if (dev !== undefined) canonical = false;
    this.perf = perf;
    this.canonical = canonical;
    return true;
  }
}

/** The string it decoded last, returned again while the bytes are the same. */
class RecentString {
  private value = '';
  /** True when `value` is ASCII: its UTF-16 units are then its bytes, which makes the check cheap. */
  private ascii = false;

  /** `text.toString('utf8', from, to)`, without decoding when the bytes are the last ones. */
  of(text: Buffer, from: number, to: number): string {
    const last = this.value;
    const n = to - from;
    if (this.ascii && last.length === n) {
      let k = 0;
      while (k < n && text[from + k] === last.charCodeAt(k)) k++;
      if (k === n) return last;
    }
    const value = text.toString('utf8', from, to);
    // Valid UTF-8 (the walk checked) has as many bytes as UTF-16 units only when it is all ASCII.
    this.ascii = value.length === n;
    this.value = value;
    return value;
  }
}

function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v);
}

/** The first `"` in `text[from, end)`, or -1. Keys and ids are short: a loop beats a native search's call. */
function quoteAt(text: Uint8Array, from: number, end: number): number {
  for (let i = from; i < end; i++) if (text[i] === QUOTE) return i;
  return -1;
}

/** Index of the key `text[from, to)` in {@link KEYS}, or 6 (after them all) for any other key. */
function keyIndex(text: Uint8Array, from: number, to: number): number {
  // By length first: sid, seq, dev (3); ts, vc (2); burst (5).
  const n = to - from;
  const candidates = n === 3 ? THREE : n === 2 ? TWO : n === 5 ? FIVE : NONE;
  for (const k of candidates) if (isName(text, from, to, KEYS[k] as Buffer)) return k;
  return KEYS.length;
}

const THREE = [0, 2, 5];
const TWO = [3, 4];
const FIVE = [1];
const NONE: number[] = [];

/** End of the JSON number starting at `from` (valid JSON: digits, sign, dot, exponent). */
function numberEnd(text: Uint8Array, from: number, end: number): number {
  let i = from + 1;
  while (i < end) {
    const c = text[i] as number;
    if ((c >= ZERO && c <= NINE) || c === 0x2e || c === 0x65 || c === 0x45 || c === 0x2b || c === MINUS) i++;
    else break;
  }
  return i;
}

/**
 * The integer `text[from, to)` spells when it is written as `String(n)` writes it (optional minus,
 * no leading zero, no `-0`) with at most 15 digits; NaN otherwise.
 */
function integerOf(text: Uint8Array, from: number, to: number): number {
  const negative = text[from] === MINUS;
  const first = negative ? from + 1 : from;
  const digits = to - first;
  if (digits < 1 || digits > SAFE_DIGITS) return Number.NaN;
  if (text[first] === ZERO && (digits > 1 || negative)) return Number.NaN;
  let n = 0;
  for (let i = first; i < to; i++) {
    const c = text[i] as number;
    if (c < ZERO || c > NINE) return Number.NaN;
    n = n * 10 + (c - ZERO);
  }
  return negative ? -n : n;
}
