import { describe, expect, it } from 'vitest';
import { Utf8Arena } from '../../modules/translator/batcher/index.js';

describe('Utf8Arena', () => {
  it('encodes exactly what Buffer.from does, for ASCII, multi-byte, astral and lone surrogates', () => {
    const arena = new Utf8Arena();
    for (const text of ['{"a":1}', '', 'é€', '{"t":"😀"}', 'x\ud800y', '\udfff']) {
      const bytes = arena.encode(text);
      expect(bytes.equals(Buffer.from(text, 'utf8'))).toBe(true);
    }
  });

  it('never hands out overlapping bytes: every slice still holds its string after 5,000 more', () => {
    const arena = new Utf8Arena();
    const texts = Array.from({ length: 5000 }, (_, i) => `{"seq":${i},"pad":"${'ü'.repeat(i % 300)}"}`);
    const slices = texts.map((t) => arena.encode(t));
    // 5,000 strings of up to 600 bytes cross several 512 KiB chunks.
    expect(new Set(slices.map((s) => s.buffer)).size).toBeGreaterThan(1);
    for (let i = 0; i < texts.length; i++) expect((slices[i] as Buffer).toString('utf8')).toBe(texts[i]);
  });

  it('gives a string larger than its chunk threshold a buffer of its own', () => {
    const arena = new Utf8Arena();
    const small = arena.encode('a');
    const big = arena.encode('b'.repeat(100_000));
    expect(big.length).toBe(100_000);
    expect(big.buffer).not.toBe(small.buffer);
    expect(arena.encode('c').buffer).toBe(small.buffer);
  });
});

describe('Utf8Arena.splice', () => {
  it('writes head, the middle less its cut, and tail; in a chunk or, when large, on its own', () => {
    const arena = new Utf8Arena();
    const middle = Buffer.from('{"perf":{"seq":1},"a":"é"}');
    const cutEnd = middle.indexOf(',') + 1;
    expect(arena.splice('[ü', middle, 1, cutEnd, ']').toString()).toBe('[ü{"a":"é"}]');
    expect(arena.splice('<', middle, 0, 0, '>').toString()).toBe(`<${middle.toString()}>`);
    const big = Buffer.from(`{"x":"${'z'.repeat(100_000)}"}`);
    expect(arena.splice('h', big, 1, 1, 't').toString()).toBe(`h${big.toString()}t`);
  });
});
