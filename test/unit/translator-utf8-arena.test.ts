import { describe, expect, it } from 'vitest';
import { BodyPool, MAX_UPSTREAM_MESSAGE_BYTES, Utf8Arena } from '../../modules/translator/batcher/index.js';

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

describe('Utf8Arena.release', () => {
  // Given back at once, or a few hundred records late as batches in flight are.
  for (const lag of [0, 600]) {
    it(`writes into a chunk again once all its slices are back, never while one is held (lag ${lag})`, () => {
      const arena = new Utf8Arena();
      const held: [Buffer, string][] = [];
      const window: Buffer[] = [];
      // 60,000 records of about 1 KB: some 115 chunks of 512 KiB without reuse.
      for (let i = 0; i < 60_000; i++) {
        const text = `{"seq":${i},"pad":"${'é'.repeat(500)}"}`;
        const slice = arena.encode(text);
        if (i % 5000 === 7) held.push([slice, text]);
        else window.push(slice);
        while (window.length > lag) arena.release(window.shift() as Buffer);
      }
      for (const [slice, text] of held) expect(slice.toString('utf8')).toBe(text);
      // Each held slice keeps its chunk; the others go round a handful of chunks.
      expect(arena.stats.allocated).toBeGreaterThanOrEqual(held.length);
      expect(arena.stats.allocated).toBeLessThan(held.length + 8);
    });
  }

  it('ignores buffers it did not hand out', () => {
    const arena = new Utf8Arena();
    const slice = arena.encode('{"a":1}');
    arena.release(Buffer.from('{"a":1}'));
    arena.release(arena.encode('x'.repeat(100_000)));
    expect(slice.toString()).toBe('{"a":1}');
    expect(arena.stats).toEqual({ allocated: 1, spare: 0 });
  });
});

describe('BodyPool', () => {
  it('lends a body once and takes back only its own bodies, once each', () => {
    const pool = new BodyPool(2);
    const a = pool.take(1000) as Buffer;
    expect(a.length).toBe(1000);
    pool.give(a);
    pool.give(a);
    expect(pool.size).toBe(1);
    const b = pool.take(2000) as Buffer;
    expect(b.buffer).toBe(a.buffer);
    expect(b.length).toBe(2000);
    expect((pool.take(10) as Buffer).buffer).not.toBe(a.buffer);
    pool.give(Buffer.alloc(10));
    expect(pool.size).toBe(0);
    expect(pool.take(MAX_UPSTREAM_MESSAGE_BYTES + 1)).toBeUndefined();
  });

  it('keeps at most the bodies it was told to', () => {
    const pool = new BodyPool(2);
    const lent = [1, 2, 3].map(() => pool.take(100) as Buffer);
    for (const b of lent) pool.give(b);
    expect(pool.size).toBe(2);
  });
});

describe('Utf8Arena.begin and commit', () => {
  it('hold bytes the caller writes, in a chunk or, when large, in a buffer of their own', () => {
    const arena = new Utf8Arena();
    const write = (text: string, worst = text.length) => {
      const out = arena.begin(worst);
      const at = arena.cursor;
      return arena.commit(at + out.write(text, at, 'latin1'));
    };
    const a = write('first');
    const b = write('second', 100);
    const big = write('z'.repeat(100_000));
    expect([a.toString(), b.toString()]).toEqual(['first', 'second']);
    expect(b.buffer).toBe(a.buffer);
    expect(b.byteOffset).toBe(a.byteOffset + a.length);
    expect(big.buffer).not.toBe(a.buffer);
    expect(big.toString()).toBe('z'.repeat(100_000));
    // A large slice is the caller's alone: releasing it leaves the chunk's count alone.
    arena.release(big);
    const c = write('third');
    expect(c.byteOffset).toBe(b.byteOffset + b.length);
    expect([a, b, c].map(String)).toEqual(['first', 'second', 'third']);
  });
});
