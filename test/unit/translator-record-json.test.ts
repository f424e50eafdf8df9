import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { EnvelopeRecord } from '../../modules/common/index.js';
import { Utf8Arena } from '../../modules/translator/batcher/index.js';
import { createDecoder, type RawJson } from '../../modules/translator/decoders/index.js';
import { topLevelMemberRange } from '../../modules/translator/decoders/json-member-range.js';
import { plainRecordJson, plainRecordJsonAround } from '../../modules/translator/record-json.js';

// The translator's fast record serialiser must give exactly what JSON.stringify gives, or the
// envelope (and every reader of it) changes. Compared on generated payloads and topics.

const decode = createDecoder({ format: 'json', topicTemplate: 'plant/{site}/{sensor}' });

function records(topic: string, text: string) {
  const result = decode(topic, Buffer.from(text, 'utf8'), 1_795_000_000_000);
  if (!result.ok) throw new Error(result.detail);
  return result;
}

describe('plainRecordJson', () => {
  it('equals JSON.stringify for every backslash-free JSON payload, any topic', () => {
    const perf = fc.record({
      sid: fc.string(),
      burst: fc.integer({ min: 1, max: 9 }),
      seq: fc.nat(),
      ts: fc.nat(),
    });
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
    const [head, tail] = plainRecordJsonAround(record);
    return new Utf8Arena().splice(head, raw.bytes, raw.cutStart, raw.cutEnd, tail).toString('utf8');
  };

  it('gives exactly JSON.stringify(record) for every canonical backslash-free object payload', () => {
    const perf = fc.record({
      sid: fc.string(),
      burst: fc.integer({ min: 1, max: 9 }),
      seq: fc.nat(),
      ts: fc.nat(),
    });
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

describe('topLevelMemberRange', () => {
  const cut = (text: string) => {
    const range = topLevelMemberRange(Buffer.from(text), Buffer.from('perf'));
    return range === undefined ? undefined : text.slice(0, range[0]) + text.slice(range[1]);
  };

  it('removes the member wherever it is, with one comma', () => {
    expect(cut('{"perf":{"a":1},"x":2}')).toBe('{"x":2}');
    expect(cut('{"x":2,"perf":{"a":1}}')).toBe('{"x":2}');
    expect(cut('{"x":2,"perf":[1,{"b":"}"}],"y":3}')).toBe('{"x":2,"y":3}');
    expect(cut('{"perf":7}')).toBe('{}');
    expect(cut(' { "perf" : "}" , "x" : 1 } ')).toBe(' {  "x" : 1 } ');
  });

  it('ignores perf nested deeper, as a value, or inside a string', () => {
    expect(cut('{"x":{"perf":1}}')).toBeUndefined();
    expect(cut('{"x":"perf"}')).toBeUndefined();
    expect(cut('{"x":"{\\"perf\\":1}"}')).toBeUndefined();
    expect(cut('{"x":["perf",{"perf":2}],"perf":3}')).toBe('{"x":["perf",{"perf":2}]}');
  });

  it('cuts the first of repeated members (the decoder then serialises) and nothing from a non-object', () => {
    expect(cut('{"perf":1,"perf":2}')).toBe('{"perf":2}');
    expect(cut('["perf"]')).toBeUndefined();
    expect(cut('"perf"')).toBeUndefined();
  });
});
