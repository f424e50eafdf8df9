import { isName, type JsonWalkVisitor, skipSpace, startsNumber, walkPlainJson } from './json-walk.js';

const COMMA = 0x2c;
const OPEN_OBJECT = 0x7b;
const PERF = Buffer.from('perf');
const TS = Buffer.from('ts');

/**
 * What {@link scanPlainJsonObject} found in an object it accepted: byte offsets, -1 where absent.
 * One flat shape, no nested objects: it is made once per message on the translator's hot path.
 */
export interface PlainObjectScan {
  /** The top-level `perf` member's value `[perfStart, perfEnd)`, when there is exactly one. */
  readonly perfStart: number;
  readonly perfEnd: number;
  /**
   * The bytes that remove that member with the one comma separating it from its neighbours:
   * `[cutStart, cutEnd)` (the same cut whichever member it is, first, middle or last).
   */
  readonly cutStart: number;
  readonly cutEnd: number;
  /** The last top-level `ts` member's value `[tsStart, tsEnd)` when it is a number (`JSON.parse` keeps the last). */
  readonly tsStart: number;
  readonly tsEnd: number;
}

/** The top object's `perf` and `ts` members, as the walk reports them. */
class TopMembers implements JsonWalkVisitor {
  readonly maxDepth = 0;
  text: Uint8Array = Buffer.alloc(0);
  perfCount = 0;
  perfStart = -1;
  perfEnd = -1;
  cutStart = 0;
  cutEnd = 0;
  tsStart = -1;
  tsEnd = -1;

  reset(text: Uint8Array): void {
    this.text = text;
    this.perfCount = 0;
    this.perfStart = this.perfEnd = this.tsStart = this.tsEnd = -1;
    this.cutStart = this.cutEnd = 0;
  }

  member(
    _depth: number,
    keyStart: number,
    keyEnd: number,
    start: number,
    end: number,
    before: number,
    after: number,
  ) {
    const text = this.text;
    if (isName(text, keyStart, keyEnd, PERF)) {
      this.perfCount++;
      this.perfStart = start;
      this.perfEnd = end;
      // After another member: cut from the comma before it. First: cut through the comma after.
      const afterOther = text[before] === COMMA;
      this.cutStart = afterOther ? before : keyStart - 1;
      this.cutEnd = afterOther || text[after] !== COMMA ? after : after + 1;
    } else if (isName(text, keyStart, keyEnd, TS)) {
      const numeric = startsNumber(text[start]);
      this.tsStart = numeric ? start : -1;
      this.tsEnd = numeric ? end : -1;
    }
  }
}

const top = new TopMembers();

/**
 * Validates a JSON object's UTF-8 text in one pass without building it ({@link walkPlainJson})
 * and finds its top-level `perf` and `ts` members. Undefined when it cannot vouch for the text:
 * not an object at the top, not valid JSON, or `perf` repeated; the caller then uses
 * `JSON.parse`, which decides and words the error.
 *
 * Only for text that holds no backslash and is valid UTF-8 (the caller checks both with fast
 * native scans).
 *
 * Why: `toString` and `JSON.parse` built a string and an object per message only to be thrown
 * away once the payload's own bytes went into the record; that was the largest part of the
 * translator's CPU (decode 25% at 1 KB, 21% at 8 KB, `--cpu-prof` of bench runs).
 */
export function scanPlainJsonObject(text: Uint8Array): PlainObjectScan | undefined {
  if (text[skipSpace(text, 0)] !== OPEN_OBJECT) return undefined;
  top.reset(text);
  const valid = walkPlainJson(text, top);
  // A repeated perf is left to JSON.parse, which keeps the last.
  if (!valid || top.perfCount > 1) return undefined;
  const { perfStart, perfEnd, cutStart, cutEnd, tsStart, tsEnd } = top;
  return { perfStart, perfEnd, cutStart, cutEnd, tsStart, tsEnd };
}
