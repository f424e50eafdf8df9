import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readPerfFields } from '../../modules/common/index.js';
import { PlainPerfReader } from '../../modules/translator/decoders/plain-perf.js';

// The hand reader must give what readPerfFields(JSON.parse(text)) gives, and call text canonical
// only when the record serialiser would write exactly those bytes for the result.

const reader = new PlainPerfReader();

/** Reads `text` placed inside a larger buffer, as the decoder sees a payload's perf member. */
function read(text: string) {
  const bytes = Buffer.from(`{"a":1,"perf":${text},"z":2}`, 'utf8');
  const start = bytes.indexOf('"perf":') + 7;
  const handled = reader.read(bytes, start, start + Buffer.byteLength(text));
  return { handled, perf: reader.perf, canonical: reader.canonical };
}

const key = fc.constantFrom('sid', 'burst', 'seq', 'ts', 'vc', 'dev', 'x', 'se');
const value = fc.oneof(
  fc.string().filter((s) => !JSON.stringify(s).includes('\\')),
  fc.integer(),
  fc.nat({ max: Number.MAX_SAFE_INTEGER }),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(-0, 1e21, 123456789012345, 1234567890123456),
);

const anyOrder = fc.array(fc.tuple(key, value), { maxLength: 8 });
// Keys in readPerfFields' order, each at most once, mostly of the types it takes: canonical or not.
const text = fc.string().filter((s) => !JSON.stringify(s).includes('\\'));
const typed = (right: fc.Arbitrary<unknown>) =>
  fc.oneof({ arbitrary: right, weight: 4 }, { arbitrary: value, weight: 1 });
const inOrder = fc
  .tuple(
    fc.option(typed(text), { freq: 8 }),
    fc.option(typed(fc.integer()), { freq: 8 }),
    fc.option(typed(fc.integer()), { freq: 8 }),
    fc.option(typed(fc.nat({ max: 999_999_999_999_999 })), { freq: 8 }),
    fc.option(typed(fc.integer())),
    fc.option(typed(text)),
  )
  .map((values) =>
    ['sid', 'burst', 'seq', 'ts', 'vc', 'dev'].flatMap((k, i): [string, unknown][] =>
      values[i] === null ? [] : [[k, values[i]]],
    ),
  );

describe('PlainPerfReader', () => {
  it('agrees with readPerfFields(JSON.parse) on generated objects, spaced or not', () => {
    let canonicalSeen = 0;
    fc.assert(
      fc.property(fc.oneof(anyOrder, inOrder), fc.boolean(), (members, spaced) => {
        const parts = members.map(([k, v]) => `"${k}"${spaced ? ' : ' : ':'}${JSON.stringify(v)}`);
        const text = spaced ? `{ ${parts.join(' , ')} }` : `{${parts.join(',')}}`;
        const r = read(text);
        expect(r.handled).toBe(true);
        const expected = readPerfFields({ perf: JSON.parse(text) });
        expect(r.perf).toEqual(expected);
        if (expected !== undefined) expect(Object.keys(r.perf ?? {})).toEqual(Object.keys(expected));
        if (r.canonical) {
          canonicalSeen++;
          expect(text).toBe(JSON.stringify(expected));
        }
      }),
      { numRuns: 5000 },
    );
    expect(canonicalSeen).toBeGreaterThan(0);
  });

  it("calls the simulator's perf objects canonical", () => {
    fc.assert(
      fc.property(
        fc.record(
          {
            sid: fc.string().filter((s) => !JSON.stringify(s).includes('\\')),
            burst: fc.nat({ max: 999_999 }),
            seq: fc.nat({ max: 999_999_999 }),
            ts: fc.nat({ max: 999_999_999_999_999 }),
            vc: fc.nat(),
            dev: fc.string().filter((s) => !JSON.stringify(s).includes('\\')),
          },
          { requiredKeys: ['sid', 'burst', 'seq', 'ts'] },
        ),
        (perf) => {
          const text = JSON.stringify(perf);
          const r = read(text);
          expect(r).toEqual({ handled: true, perf, canonical: true });
        },
      ),
    );
  });

  it('keeps the last of repeated keys, reads any number spelling, and is then not canonical', () => {
    expect(read('{"sid":"a","burst":1,"seq":2,"ts":3,"sid":"b"}')).toEqual({
      handled: true,
      perf: { sid: 'b', burst: 1, seq: 2, ts: 3 },
      canonical: false,
    });
    for (const ts of ['1e3', '1000.0', '-0', '1']) {
      const r = read(`{"sid":"a","burst":1,"seq":2,"ts":${ts}}`);
      expect(r.perf?.ts).toBe(JSON.parse(ts));
      expect(r.canonical).toBe(ts === '1');
    }
    // Space anywhere: the same fields, but not the serialiser's bytes.
    for (const spaced of [
      '{"sid":"a", "burst":1,"seq":2,"ts":3}',
      '{"sid":"a","burst":1,"seq":2,"ts":3 }',
      '{ "sid":"a","burst":1,"seq":2,"ts":3}',
    ])
      expect(read(spaced)).toEqual({
        handled: true,
        perf: { sid: 'a', burst: 1, seq: 2, ts: 3 },
        canonical: false,
      });
    // vc that readPerfFields drops (not an integer) would not be written back.
    expect(read('{"sid":"a","burst":1,"seq":2,"ts":3,"vc":1.5}').canonical).toBe(false);
    expect(read('{"sid":"é😀","burst":1,"seq":2,"ts":3,"dev":"ü"}')).toMatchObject({
      perf: { sid: 'é😀', dev: 'ü' },
      canonical: true,
    });
  });

  it('gives each message its own ids, though it reuses the string while the bytes repeat', () => {
    const sids = ['abc', 'abd', 'abc', 'abc', 'é', 'e1', 'é', 'ab'];
    const devs = ['d-1', 'd-2', 'd-2', 'd-1', 'ü', 'üü', 'x', 'd-1'];
    sids.forEach((sid, i) => {
      const r = read(`{"sid":"${sid}","burst":1,"seq":${i},"ts":3,"dev":"${devs[i]}"}`);
      expect(r.perf).toEqual({ sid, burst: 1, seq: i, ts: 3, dev: devs[i] });
    });
  });

  it('hands objects, arrays, true, false and null back to JSON.parse', () => {
    for (const v of ['{}', '[1]', 'true', 'false', 'null'])
      expect(read(`{"sid":"a","burst":1,"seq":2,"ts":3,"x":${v}}`).handled).toBe(false);
  });
});
