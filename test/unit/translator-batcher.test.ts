import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { decodeEnvelopeBody, ENVELOPE_PROPS } from '../../modules/common/index.js';
import type { BatcherOptions, BatchInfo } from '../../modules/translator/batcher/index.js';
import {
  Batcher,
  ENVELOPE_PREFIX,
  MAX_UPSTREAM_MESSAGE_BYTES,
  METERING_UNIT_BYTES,
  packCutTo4KB,
  upstreamMessageBytes,
} from '../../modules/translator/batcher/index.js';
import type { UpstreamMessage } from '../../modules/translator/upstream-transport.js';

interface Sent {
  output: string;
  message: UpstreamMessage;
  resolve: () => void;
  reject: (e: Error) => void;
}

/** A batcher wired to a transport whose acks the test controls. */
function harness(options: BatcherOptions, autoAck = true) {
  const sent: Sent[] = [];
  const acked: { tokens: number[]; info: BatchInfo }[] = [];
  const errors: Error[] = [];
  const batcher = new Batcher<number>(options, {
    send: (output, message) =>
      new Promise<void>((resolve, reject) => {
        sent.push({ output, message, resolve, reject });
        if (autoAck) resolve();
      }),
    onAcked: (tokens, info) => acked.push({ tokens: [...tokens], info }),
    onSendError: (e) => errors.push(e),
  });
  let next = 0;
  const add = (bytes = 100): boolean => {
    const id = next++;
    const pad = 'x'.repeat(Math.max(0, bytes - 16 - String(id).length));
    const json = JSON.stringify({ id, pad });
    return batcher.add({ json: Buffer.from(json), token: id });
  };
  return { batcher, sent, acked, errors, add };
}

function records(m: UpstreamMessage): unknown[] {
  return decodeEnvelopeBody(m.body, m.properties[ENVELOPE_PROPS.encoding]);
}

describe('batcher triggers (fake timers)', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('lingers maxWaitTimeInMs, then sends what it has in one envelope', async () => {
    const h = harness({ maxMessages: 100, maxWaitTimeInMs: 50 });
    h.batcher.start();
    h.add();
    await vi.advanceTimersByTimeAsync(10);
    h.add();
    h.add();
    await vi.advanceTimersByTimeAsync(30);
    expect(h.sent).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(10);
    expect(h.sent).toHaveLength(1);
    const m = (h.sent[0] as Sent).message;
    expect(m.body.toString().startsWith(ENVELOPE_PREFIX)).toBe(true);
    expect(records(m)).toHaveLength(3);
    expect(m.properties).toEqual({
      'edgeperf-envelope': '1',
      'edgeperf-count': '3',
      'edgeperf-encoding': 'json',
    });
    expect(m.contentType).toBe('application/json');
    expect(m.contentEncoding).toBe('utf-8');
    expect(h.acked[0]?.tokens).toEqual([0, 1, 2]);
    expect(h.acked[0]?.info.trigger).toBe('linger');
    await h.batcher.close();
  });

  it('cuts at maxMessages without waiting for the linger', async () => {
    const h = harness({ maxMessages: 5, maxWaitTimeInMs: 10_000 });
    h.batcher.start();
    for (let i = 0; i < 12; i++) h.add();
    await vi.advanceTimersByTimeAsync(0);
    expect(h.sent.map((s) => s.message.properties['edgeperf-count'])).toEqual(['5', '5']);
    expect(h.acked.map((a) => a.info.trigger)).toEqual(['maxMessages', 'maxMessages']);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(h.sent).toHaveLength(3);
    expect(h.acked.flatMap((a) => a.tokens)).toEqual([...Array(12).keys()]);
    await h.batcher.close();
  });

  it('cuts at maxBytes, counting properties', async () => {
    const h = harness({ maxMessages: 1000, maxBytes: 4096, maxWaitTimeInMs: 10_000 });
    h.batcher.start();
    for (let i = 0; i < 40; i++) h.add(300);
    await vi.advanceTimersByTimeAsync(0);
    expect(h.sent.length).toBeGreaterThanOrEqual(3);
    for (const s of h.sent) expect(upstreamMessageBytes(s.message)).toBeLessThanOrEqual(4096);
    // Full batches are nearly full: the next 300-byte record would not have fitted.
    expect(upstreamMessageBytes((h.sent[0] as Sent).message)).toBeGreaterThan(4096 - 301);
    expect(h.acked[0]?.info.trigger).toBe('maxBytes');
    await h.batcher.close();
  });

  it('never exceeds 256 KiB per message including properties', async () => {
    const h = harness({ maxMessages: 100_000, maxWaitTimeInMs: 10_000 });
    h.batcher.start();
    for (let i = 0; i < 200; i++) h.add(7_000 + (i % 13) * 211);
    await vi.advanceTimersByTimeAsync(10_000);
    const sizes = h.sent.map((s) => upstreamMessageBytes(s.message) + h.batcher.options.reservedBytes);
    for (const size of sizes) expect(size).toBeLessThanOrEqual(MAX_UPSTREAM_MESSAGE_BYTES);
    expect(sizes[0]).toBeGreaterThan(MAX_UPSTREAM_MESSAGE_BYTES - 8_500);
    expect(h.acked.reduce((n, a) => n + a.tokens.length, 0)).toBe(200);
    await h.batcher.close();
  });

  it('a record bigger than maxBytes still goes, alone; maxRecordBytes is the hard limit', async () => {
    const h = harness({ maxMessages: 100, maxBytes: 2048, maxWaitTimeInMs: 5 });
    h.batcher.start();
    h.add(100);
    h.add(10_000);
    h.add(100);
    await vi.advanceTimersByTimeAsync(10);
    expect(h.sent.map((s) => s.message.properties['edgeperf-count'])).toEqual(['1', '1', '1']);
    expect(h.batcher.maxRecordBytes).toBeLessThan(MAX_UPSTREAM_MESSAGE_BYTES - 512);
    expect(h.batcher.maxRecordBytes).toBeGreaterThan(MAX_UPSTREAM_MESSAGE_BYTES - 1024);
    await h.batcher.close();
  });

  it('packTo4KB cuts a full batch just under a 4 KB boundary and keeps the rest within its linger', async () => {
    const plain = harness({ maxMessages: 10, maxWaitTimeInMs: 50 });
    const packed = harness({ maxMessages: 10, maxWaitTimeInMs: 50, packTo4KB: true });
    for (const h of [plain, packed]) {
      h.batcher.start();
      for (let i = 0; i < 10; i++) h.add(1000);
    }
    await vi.advanceTimersByTimeAsync(0);
    const units = (m: UpstreamMessage, reserved: number) =>
      (upstreamMessageBytes(m) + reserved) / METERING_UNIT_BYTES;
    const first = (packed.sent[0] as Sent).message;
    expect(Math.ceil(units((plain.sent[0] as Sent).message, 512))).toBe(3);
    expect(units(first, 512)).toBeLessThanOrEqual(2);
    expect(units(first, 512)).toBeGreaterThan(1.75);
    expect(packed.sent).toHaveLength(1);
    // The remainder is not held longer than its own linger.
    await vi.advanceTimersByTimeAsync(50);
    expect(packed.sent).toHaveLength(2);
    expect(packed.acked.flatMap((a) => a.tokens)).toEqual([...Array(10).keys()]);
    await plain.batcher.close();
    await packed.batcher.close();
  });

  it('batching off (maxMessages 1): one message per record, the record as the body', async () => {
    const h = harness({ maxMessages: 1, maxWaitTimeInMs: 50 });
    h.batcher.start();
    h.add();
    h.add();
    await vi.advanceTimersByTimeAsync(0);
    expect(h.sent).toHaveLength(2);
    const m = (h.sent[0] as Sent).message;
    expect(JSON.parse(m.body.toString())).toMatchObject({ id: 0 });
    expect(m.properties['edgeperf-count']).toBe('1');
    await h.batcher.close();
  });

  it('keeps at most maxInFlightBatches unacknowledged', async () => {
    const h = harness({ maxMessages: 2, maxWaitTimeInMs: 0, maxInFlightBatches: 2 }, false);
    h.batcher.start();
    for (let i = 0; i < 10; i++) h.add();
    await vi.advanceTimersByTimeAsync(0);
    expect(h.sent).toHaveLength(2);
    expect(h.batcher.inFlightBatches).toBe(2);
    h.sent[1]?.resolve();
    await vi.advanceTimersByTimeAsync(0);
    expect(h.sent).toHaveLength(3);
    for (const s of h.sent) s.resolve();
    await vi.advanceTimersByTimeAsync(0);
    for (const s of h.sent) s.resolve();
    await vi.advanceTimersByTimeAsync(0);
    for (const s of h.sent) s.resolve();
    await vi.advanceTimersByTimeAsync(0);
    expect(h.acked.flatMap((a) => a.tokens).sort((a, b) => a - b)).toEqual([...Array(10).keys()]);
    await h.batcher.close();
  });

  it('retries a failed send with backoff and never drops the batch', async () => {
    const h = harness({ maxMessages: 3, maxWaitTimeInMs: 0, retryMinDelayInMs: 100 }, false);
    h.batcher.start();
    h.add();
    h.add();
    h.add();
    await vi.advanceTimersByTimeAsync(0);
    h.sent[0]?.reject(new Error('edgeHub down'));
    await vi.advanceTimersByTimeAsync(99);
    expect(h.sent).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(h.sent).toHaveLength(2);
    h.sent[1]?.reject(new Error('still down'));
    await vi.advanceTimersByTimeAsync(200);
    expect(h.sent).toHaveLength(3);
    expect(h.acked).toHaveLength(0);
    h.sent[2]?.resolve();
    await vi.advanceTimersByTimeAsync(0);
    expect(h.errors.map((e) => e.message)).toEqual(['edgeHub down', 'still down']);
    expect(h.acked).toHaveLength(1);
    expect(h.acked[0]?.info.attempts).toBe(3);
    expect((h.sent[2] as Sent).message.body.equals((h.sent[0] as Sent).message.body)).toBe(true);
    await h.batcher.close();
  });

  it('writes the next body into an acknowledged one, never into one whose first send failed', async () => {
    const encoded: number[] = [];
    const sent: Sent[] = [];
    const batcher = new Batcher<number>(
      { maxMessages: 2, maxWaitTimeInMs: 0, retryMinDelayInMs: 100, maxInFlightBatches: 1 },
      {
        send: (output, message) =>
          new Promise<void>((resolve, reject) => sent.push({ output, message, resolve, reject })),
        onAcked: () => undefined,
        onSendError: () => undefined,
        onEncoded: (json) => encoded.push(json.length),
      },
    );
    const add = (id: number) => batcher.add({ json: Buffer.from(JSON.stringify({ id })), token: id });
    batcher.start();
    const bodyOf = (i: number) => (sent[i] as Sent).message.body;
    // Batch 1 fails once, then goes: its body may still sit in a client's queue, so it is not reused.
    add(1);
    add(2);
    await vi.advanceTimersByTimeAsync(0);
    sent[0]?.reject(new Error('edgeHub down'));
    await vi.advanceTimersByTimeAsync(100);
    sent[1]?.resolve();
    await vi.advanceTimersByTimeAsync(0);
    // Batch 2 goes at once: once acknowledged its body is the pool's.
    add(3);
    add(4);
    await vi.advanceTimersByTimeAsync(0);
    const second = bodyOf(2);
    expect(second.buffer).not.toBe(bodyOf(0).buffer);
    expect(records({ ...(sent[2] as Sent).message })).toEqual([{ id: 3 }, { id: 4 }]);
    sent[2]?.resolve();
    await vi.advanceTimersByTimeAsync(0);
    add(5);
    add(6);
    await vi.advanceTimersByTimeAsync(0);
    expect(bodyOf(3).buffer).toBe(second.buffer);
    expect(bodyOf(3).buffer).not.toBe(bodyOf(0).buffer);
    expect(records((sent[3] as Sent).message)).toEqual([{ id: 5 }, { id: 6 }]);
    // The first batch's body is intact after later batches were written.
    expect(records((sent[1] as Sent).message)).toEqual([{ id: 1 }, { id: 2 }]);
    sent[3]?.resolve();
    await vi.advanceTimersByTimeAsync(0);
    expect(encoded).toEqual([2, 2, 2]);
    await batcher.close();
  });

  it('reports no room at maxBufferedBytes and wakes waiters once acks free it', async () => {
    const h = harness(
      { maxMessages: 5, maxWaitTimeInMs: 0, maxBufferedBytes: 1000, maxInFlightBatches: 1 },
      false,
    );
    h.batcher.start();
    const results: boolean[] = [];
    for (let i = 0; i < 12; i++) results.push(h.add(100));
    expect(results.slice(0, 9).every(Boolean)).toBe(true);
    expect(results[9]).toBe(false);
    let woke = false;
    void h.batcher.whenRoom().then(() => {
      woke = true;
    });
    await vi.advanceTimersByTimeAsync(0);
    expect(woke).toBe(false);
    h.sent[0]?.resolve();
    await vi.advanceTimersByTimeAsync(0);
    expect(woke).toBe(true);
    expect(h.batcher.bufferedBytes).toBeLessThan(1000);
    const closing = h.batcher.close({ flush: false, deadlineMs: 0 });
    await vi.advanceTimersByTimeAsync(1);
    await closing;
  });

  it('dropOldest removes buffered records, oldest first, never in-flight ones', async () => {
    const h = harness({ maxMessages: 2, maxWaitTimeInMs: 0, maxInFlightBatches: 1 }, false);
    h.batcher.start();
    for (let i = 0; i < 5; i++) h.add();
    await vi.advanceTimersByTimeAsync(0);
    for (const t of [2, 3, 4]) expect(h.batcher.dropOldest()?.token).toBe(t);
    expect(h.batcher.dropOldest()).toBeUndefined();
    expect(h.batcher.bufferedRecords).toBe(2);
    const closing = h.batcher.close({ flush: false, deadlineMs: 0 });
    await vi.advanceTimersByTimeAsync(1);
    await closing;
  });

  it('flush() sends before the linger and resolves once acknowledged; close({flush}) drains', async () => {
    const h = harness({ maxMessages: 100, maxWaitTimeInMs: 60_000 });
    h.batcher.start();
    h.add();
    h.add();
    const flushed = h.batcher.flush();
    await vi.advanceTimersByTimeAsync(0);
    await flushed;
    expect(h.acked[0]?.info.trigger).toBe('flush');
    h.add();
    await h.batcher.close({ flush: true });
    expect(h.acked.flatMap((a) => a.tokens)).toEqual([0, 1, 2]);
    expect(h.batcher.state.kind).toBe('closed');
    expect(() => h.add()).toThrow(/closing/);
  });

  it('close without flush leaves buffered records unacknowledged', async () => {
    const h = harness({ maxMessages: 100, maxWaitTimeInMs: 60_000 });
    h.batcher.start();
    h.add();
    await h.batcher.close({ flush: false });
    expect(h.sent).toHaveLength(0);
    expect(h.acked).toHaveLength(0);
  });
});

describe('gzip encoding', () => {
  it('round-trips through decodeEnvelopeBody and is smaller', async () => {
    const h = harness({ maxMessages: 50, maxWaitTimeInMs: 1, encoding: 'gzip' });
    h.batcher.start();
    for (let i = 0; i < 50; i++) h.add(500);
    await h.batcher.flush();
    const m = (h.sent[0] as Sent).message;
    expect(m.contentEncoding).toBe('gzip');
    expect(m.properties['edgeperf-encoding']).toBe('gzip');
    const out = records(m) as { id: number }[];
    expect(out.map((r) => r.id)).toEqual([...Array(50).keys()]);
    expect(m.body.length).toBeLessThan(50 * 500 * 0.2);
    await h.batcher.close();
  });
});

describe('packCutTo4KB', () => {
  it('keeps a cut that already meters well and moves one that wastes a unit', () => {
    const sizes = (per: number, fixed: number) => (k: number) => fixed + k * per;
    expect(packCutTo4KB(4, sizes(1000, 50))).toBe(4);
    expect(packCutTo4KB(10, sizes(1000, 300))).toBe(7);
    expect(packCutTo4KB(1, sizes(9000, 0))).toBe(1);
  });
});
