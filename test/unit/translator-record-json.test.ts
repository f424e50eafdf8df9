import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { EnvelopeRecord } from '../../modules/common/index.js';
import { Utf8Arena } from '../../modules/translator/batcher/index.js';
import { createDecoder, type RawJson } from '../../modules/translator/decoders/index.js';
import { scanPlainJsonObject } from '../../modules/translator/decoders/plain-json-scan.js';
import { plainRecordJson, RecordWriter } from '../../modules/translator/record-json.js';

// The translator's fast record serialiser must give exactly what JSON.stringify gives, or the
// envelope (and every reader of it) changes. Compared on generated payloads and topics.

const decode = createDecoder({ format: 'json', topicTemplate: 'plant/{site}/{sensor}' });

function records(topic: string, text: string) {
  const result = decode(topic, Buffer.from(text, 'utf8'), 1_795_000_000_000);
  if (!result.ok) throw new Error(result.detail);
  return result;
}

/** The simulator's perf fields, as generated payloads carry them. */
const perf = fc.record(
  {
    sid: fc.string(),
    burst: fc.integer({ min: 1, max: 9 }),
    seq: fc.nat(),
    ts: fc.nat(),
    vc: fc.nat(),
    dev: fc.string(),
  },
  { requiredKeys: ['sid', 'burst', 'seq', 'ts'] },
);

describe('plainRecordJson', () => {
  it('equals JSON.stringify for every backslash-free JSON payload, any topic', () => {
    const payload = fc.oneof(
      fc.jsonValue(),
      fc.tuple(fc.dictionary(fc.string(), fc.jsonValue()), perf, fc.double()).map(([obj, p, ts]) => ({
        ...obj,
        ts,
        perf: p,
      })),
    );
    let checked = 0;
    fc.assert(
      fc.property(payload, fc.string(), fc.string({ unit: 'grapheme' }), (value, site, sensor) => {
        const text = JSON.stringify(value);
        const result = records(`plant/${site}/${sensor}`, text);
        expect(result.plainStrings).toBe(!text.includes('\\'));
        if (!result.plainStrings) return;
        checked++;
        for (const r of result.records) expect(plainRecordJson(r)).toBe(JSON.stringify(r));
      }),
      { numRuns: 3000 },
    );
    expect(checked).toBeGreaterThan(500);
  });

  it('keeps non-ASCII text, numbers and key order as JSON.stringify does', () => {
    const text =
      '{"2":1,"b":"é😀\u2028","a":[1.5e300,-0,true,null,{"x":[]}],"1":{},"ts":17,"perf":{"sid":"s","burst":1,"seq":2,"ts":3}}';
    const result = records('plant/"q"/\u0001', text);
    expect(result.plainStrings).toBe(true);
    const [r] = result.records;
    expect(r).toBeDefined();
    expect(plainRecordJson(r as never)).toBe(JSON.stringify(r));
  });

  it('is not used when the payload has an escape', () => {
    expect(records('plant/a/b', '{"v":"a\\"b"}').plainStrings).toBe(false);
  });
});

describe('records spliced around the payload bytes (rawData)', () => {
  const spliced = (r: { records: EnvelopeRecord[]; rawData?: RawJson }) => {
    const [record] = r.records;
    const raw = r.rawData;
    if (record === undefined || raw === undefined) throw new Error('no rawData');
    return new RecordWriter().write(new Utf8Arena(), record, raw).toString('utf8');
  };

  it('gives exactly JSON.stringify(record) for every canonical backslash-free object payload', () => {
    const payload = fc
      .tuple(
        fc.dictionary(fc.string(), fc.jsonValue()),
        fc.option(perf),
        fc.nat(),
        fc.integer({ min: 0, max: 9 }),
      )
      .map(([obj, p, ts, at]) => {
        // perf anywhere among the members: first, middle or last.
        const entries: [string, unknown][] = Object.entries({ ...obj, ts });
        if (p !== null) entries.splice(Math.min(at, entries.length), 0, ['perf', p]);
        return Object.fromEntries(entries);
      });
    let checked = 0;
    fc.assert(
      fc.property(payload, fc.string(), (value, site) => {
        const text = JSON.stringify(value);
        const result = records(`plant/${site}/s`, text);
        if (result.rawData === undefined) {
          expect(text.includes('\\')).toBe(true);
          return;
        }
        checked++;
        expect(spliced(result)).toBe(JSON.stringify(result.records[0]));
      }),
      { numRuns: 3000 },
    );
    expect(checked).toBeGreaterThan(500);
  });

  it('keeps the payload spelling, which parses to the same record', () => {
    const text =
      ' { "b" : 1.50 ,\n "perf" : { "sid":"s", "burst":1, "seq":2, "ts":3 } , "n": 12345678901234567890 } ';
    const result = records('plant/a/b', text);
    const out = spliced(result);
    expect(out).toContain('"b" : 1.50');
    expect(out).toContain('12345678901234567890');
    expect(JSON.parse(out)).toEqual(JSON.parse(JSON.stringify(result.records[0])));
  });

  it('is not used for invalid UTF-8, arrays, escapes, or a perf member that appears twice', () => {
    const bad = Buffer.concat([Buffer.from('{"a":"'), Buffer.from([0xff]), Buffer.from('"}')]);
    const decode2 = createDecoder({ format: 'json' });
    const noRaw = (payload: Buffer) => {
      const r = decode2('t', payload, 1);
      return r.ok && r.rawData === undefined;
    };
    expect(noRaw(bad)).toBe(true);
    expect(noRaw(Buffer.from('[{"a":1}]'))).toBe(true);
    expect(noRaw(Buffer.from('{"a":"x\\"y"}'))).toBe(true);
    const p = '{"sid":"s","burst":1,"seq":2,"ts":3}';
    expect(noRaw(Buffer.from(`{"perf":${p},"perf":${p}}`))).toBe(true);
  });
});

describe('scanPlainJsonObject', () => {
  const scan = (text: string) => scanPlainJsonObject(Buffer.from(text, 'utf8'));
  const cut = (text: string) => {
    const r = scan(text);
    if (r === undefined) return 'refused';
    return r.perfStart === -1 ? undefined : text.slice(0, r.cutStart) + text.slice(r.cutEnd);
  };
  const parses = (text: string) => {
    try {
      JSON.parse(text);
      return true;
    } catch {
      return false;
    }
  };

  it('removes the perf member wherever it is, with one comma', () => {
    expect(cut('{"perf":{"a":1},"x":2}')).toBe('{"x":2}');
    expect(cut('{"x":2,"perf":{"a":1}}')).toBe('{"x":2}');
    expect(cut('{"x":2,"perf":[1,{"b":"}"}],"y":3}')).toBe('{"x":2,"y":3}');
    expect(cut('{"perf":7}')).toBe('{}');
    expect(cut(' { "perf" : "}" , "x" : 1 } ')).toBe(' {  "x" : 1 } ');
  });

  it('ignores perf nested deeper, as a value, or inside a string', () => {
    expect(cut('{"x":{"perf":1}}')).toBeUndefined();
    expect(cut('{"x":"perf"}')).toBeUndefined();
    expect(cut('{"x":["perf",{"perf":2}],"perf":3}')).toBe('{"x":["perf",{"perf":2}]}');
  });

  it('refuses a repeated perf, a non-object and invalid JSON', () => {
    for (const text of [
      '{"perf":1,"perf":2}',
      '["perf"]',
      '"perf"',
      '7',
      '',
      '{',
      '{"a":1,}',
      '{"a":1}x',
      '{"a":01}',
      '{"a":1.}',
      '{"a":.5}',
      '{"a":1e}',
      '{"a":-}',
      '{"a":tru}',
      '{"a":nul}',
      '{"a" 1}',
      '{a:1}',
      '{"a":[1,]}',
      '{"a":[1 2]}',
      '{"a":"x\ty"}',
      '{"a":"x	y"}',
      '{"a":{"b":1]}',
      '{"a":[}',
      '{"a":1}}',
      '\ufeff{"a":1}',
    ]) {
      expect(scan(text), text).toBeUndefined();
    }
  });

  it('finds the last numeric ts and the perf value', () => {
    const text = '{"ts":"x","perf":{"sid":"s"},"ts":-1.5e3,"v":[{"ts":9}]}';
    const r = scan(text);
    expect(r && text.slice(r.tsStart, r.tsEnd)).toBe('-1.5e3');
    expect(r && text.slice(r.perfStart, r.perfEnd)).toBe('{"sid":"s"}');
    expect(scan('{"ts":1,"ts":{"a":1}}')?.tsStart).toBe(-1);
    expect(scan('{"ts":1,"ts":null}')?.tsStart).toBe(-1);
    expect(scan('{"a":1}')).toEqual({
      perfStart: -1,
      perfEnd: -1,
      cutStart: 0,
      cutEnd: 0,
      tsStart: -1,
      tsEnd: -1,
    });
  });

  // The scan stands in for JSON.parse: it must never vouch for text JSON.parse refuses, and must
  // accept every backslash-free object JSON.parse accepts (else the fast path is never taken).
  it('accepts exactly the backslash-free UTF-8 objects that JSON.parse accepts', () => {
    const objectText = fc
      .tuple(fc.dictionary(fc.string(), fc.jsonValue()), fc.constantFrom('', ' ', '\n\t', '\r\n '))
      .map(([obj, ws]) => JSON.stringify(obj, null, ws.length > 0 ? ws : undefined));
    let checked = 0;
    fc.assert(
      fc.property(objectText, (text) => {
        if (text.includes('\\')) return;
        checked++;
        expect(scan(text)).toBeDefined();
      }),
      { numRuns: 2000 },
    );
    expect(checked).toBeGreaterThan(300);
    // Mutations of valid text: one byte changed, dropped or doubled, from JSON's own alphabet.
    const alphabet = [...'{}[],:"0123456789-+.eEtruefalsn x\t\n'];
    fc.assert(
      fc.property(
        objectText,
        fc.nat(),
        fc.constantFrom(...alphabet),
        fc.constantFrom('replace', 'drop', 'double', 'insert'),
        (text, at, ch, how) => {
          const k = text.length === 0 ? 0 : at % text.length;
          const mutated =
            how === 'replace'
              ? text.slice(0, k) + ch + text.slice(k + 1)
              : how === 'drop'
                ? text.slice(0, k) + text.slice(k + 1)
                : how === 'double'
                  ? text.slice(0, k + 1) + text.slice(k)
                  : text.slice(0, k) + ch + text.slice(k);
          if (mutated.includes('\\')) return;
          const scanned = scan(mutated);
          // Sound: nothing JSON.parse refuses. Complete: every object without a repeated perf.
          if (scanned !== undefined) expect(parses(mutated), mutated).toBe(true);
          else if (parses(mutated) && /^\s*\{/.test(mutated) && mutated.split('"perf"').length <= 2)
            expect.fail(`refused valid ${mutated}`);
        },
      ),
      { numRuns: 20000 },
    );
  });
});
