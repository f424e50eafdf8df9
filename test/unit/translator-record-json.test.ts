import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createDecoder } from '../../modules/translator/decoders/index.js';
import { plainRecordJson } from '../../modules/translator/record-json.js';

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
