import sparkplugPayload from 'sparkplug-payload';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../modules/common/index.js';
import { compileTopicTemplate, createDecoder } from '../../modules/translator/decoders/index.js';

const sp = sparkplugPayload.get('spBv1.0');
if (sp === null) throw new Error('no spBv1.0 codec');
const IT = 1_732_000_000_500;

describe('json decoder', () => {
  const decode = createDecoder({ format: 'json', topicTemplate: 'plant/{site}/line/{line}/{sensor}' });

  it('turns an object into one record with ts, ingest time, perf fields and topic fields', () => {
    const body = {
      perf: { sid: 's1', burst: 1, seq: 42, ts: 1_732_000_000_000, vc: 0 },
      ts: 1_732_000_000_001,
      v: 3.5,
    };
    const r = decode('plant/a/line/7/temp', Buffer.from(JSON.stringify(body)), IT);
    // The payload's own bytes, less the perf member, are the record's data as JSON.
    const raw = r.ok ? r.rawData : undefined;
    const data = raw && Buffer.concat([raw.bytes.subarray(0, raw.cutStart), raw.bytes.subarray(raw.cutEnd)]);
    expect(data?.toString()).toBe('{"ts":1732000000001,"v":3.5}');
    // data is that text, parsed only when serialised (RawJson.toJSON).
    expect(r.ok && r.records[0]?.data).toBe(raw);
    expect({ ...r, rawData: undefined, records: JSON.parse(JSON.stringify(r.ok ? r.records : [])) }).toEqual({
      ok: true,
      plainStrings: true,
      records: [
        {
          topic: 'plant/a/line/7/temp',
          it: IT,
          ts: 1_732_000_000_001,
          fields: { site: 'a', line: '7', sensor: 'temp' },
          perf: body.perf,
          data: { ts: 1_732_000_000_001, v: 3.5 },
        },
      ],
    });
  });

  it('turns an array into one record per element; an empty array into none', () => {
    const r = decode('other/topic', Buffer.from('[{"a":1},{"a":2},7]'), IT);
    expect(r.ok && r.records.map((x) => x.data)).toEqual([{ a: 1 }, { a: 2 }, 7]);
    expect(r.ok && r.records[0]?.fields).toBeUndefined();
    const empty = decode('t', Buffer.from('[]'), IT);
    expect(empty).toEqual({ ok: true, records: [], plainStrings: true });
  });

  it('reports malformed JSON as a dead-letter reason instead of throwing', () => {
    const r = decode('t', Buffer.from('{"a":'), IT);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.reason).toBe('malformed-json');
  });
});

describe('raw decoder', () => {
  it('carries the bytes as base64', () => {
    const r = createDecoder({ format: 'raw' })('t', Buffer.from([0, 1, 255]), IT);
    expect(r.ok && r.records[0]?.data).toBe('AAH/');
  });
});

describe('sparkplug decoder', () => {
  const decode = createDecoder({ format: 'sparkplug' });

  it('decodes DDATA metrics with group, node and device fields and the payload timestamp', () => {
    const payload = sp.encodePayload({
      timestamp: 1_732_000_000_123,
      seq: 5,
      metrics: [
        { name: 'temp', type: 'Double', value: 21.5, timestamp: 1_732_000_000_100 },
        { name: 'count', type: 'Int64', value: 12_345_678_901, timestamp: 1_732_000_000_100 },
        { name: 'on', type: 'Boolean', value: true },
      ],
    });
    const r = decode('spBv1.0/plant1/DDATA/edge1/plc7', Buffer.from(payload), IT);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const rec = r.records[0];
    expect(rec?.ts).toBe(1_732_000_000_123);
    expect(rec?.it).toBe(IT);
    expect(rec?.fields).toEqual({ group: 'plant1', type: 'DDATA', node: 'edge1', device: 'plc7' });
    expect(rec?.data).toEqual({
      seq: 5,
      metrics: [
        { name: 'temp', type: 'Double', value: 21.5, timestamp: 1_732_000_000_100 },
        { name: 'count', type: 'Int64', value: 12_345_678_901, timestamp: 1_732_000_000_100 },
        { name: 'on', type: 'Boolean', value: true },
      ],
    });
    // The record must serialise (no Long objects left).
    expect(JSON.parse(JSON.stringify(rec)).data.metrics[1].value).toBe(12_345_678_901);
  });

  it('decodes NBIRTH without a device level', () => {
    const payload = sp.encodePayload({
      timestamp: 1,
      metrics: [{ name: 'bdSeq', type: 'UInt64', value: 0 }],
    });
    const r = decode('spBv1.0/g/NBIRTH/n', Buffer.from(payload), IT);
    expect(r.ok && r.records[0]?.fields).toEqual({ group: 'g', type: 'NBIRTH', node: 'n' });
  });

  it('skips commands and STATE; rejects garbage and foreign topics', () => {
    expect(decode('spBv1.0/g/NCMD/n', Buffer.from('x'), IT)).toEqual({ ok: true, records: [] });
    const bad = decode('spBv1.0/g/DDATA/n/d', Buffer.from('garbage{{{'), IT);
    expect(!bad.ok && bad.reason).toBe('invalid-sparkplug');
    const foreign = decode('plant/a', Buffer.from(sp.encodePayload({ metrics: [] })), IT);
    expect(!foreign.ok && foreign.reason).toBe('invalid-sparkplug');
  });
});

describe('topic template', () => {
  it('lifts named levels, matches literals, and supports a trailing #', () => {
    const f = compileTopicTemplate('plant/{site}/line/{line}/{sensor}');
    expect(f('plant/x/line/2/t')).toEqual({ site: 'x', line: '2', sensor: 't' });
    expect(f('plant/x/belt/2/t')).toBeUndefined();
    expect(f('plant/x/line/2')).toBeUndefined();
    const g = compileTopicTemplate('site/{site}/#');
    expect(g('site/a/b/c')).toEqual({ site: 'a' });
  });

  it('rejects bad templates with every problem named', () => {
    expect(() => compileTopicTemplate('a/{x}/{x}/#/b')).toThrow(ConfigError);
    try {
      compileTopicTemplate('a/{x}/{x}/#/b');
    } catch (err) {
      expect((err as ConfigError).message).toMatch(/twice.*# is allowed only/);
    }
    expect(() => compileTopicTemplate('plain/topic')).toThrow(/at least one \{name\}/);
  });
});
