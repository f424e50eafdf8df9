import { describe, expect, it } from 'vitest';
import {
  appBatchFor256KiB,
  DEFAULT_OVERHEAD_BYTES_PER_MESSAGE,
  formatBytes,
  GB,
  GIB,
  MAX_MESSAGE_BYTES,
  matchedUpstreamBatchSize,
  sizeQueues,
  upstreamShape,
} from '../../perf-cli/manifest/index.js';

describe('queue sizing (Azure/iotedge#835: rate × size × TTL per queue)', () => {
  it("reproduces the blog's 14.7 GB for 2,000 msg/s × 1 KB × 2 h (payload, decimal GB)", () => {
    const s = sizeQueues({ ratePerSec: 2000, payloadLength: 1024, ttlSecs: 7200 });
    expect(s.payloadBytes / GB).toBeCloseTo(14.75, 2);
    expect(formatBytes(s.payloadBytes)).toBe('14.7 GB (13.7 GiB)');
    // The overhead is stated apart: 256 B per stored message.
    expect(s.overheadBytesPerMessage).toBe(DEFAULT_OVERHEAD_BYTES_PER_MESSAGE);
    expect(s.overheadBytes).toBe(2000 * 256 * 7200);
    expect(s.diskBytes).toBe(s.payloadBytes + s.overheadBytes);
    expect(s.ramBytes).toBe(s.diskBytes);
    expect(s.messagesPerQueue).toBe(14_400_000);
  });

  it('reproduces about 0.7 GB for 100 msg/s', () => {
    const s = sizeQueues({ ratePerSec: 100, payloadLength: 1024, ttlSecs: 7200 });
    expect(s.payloadBytes / GB).toBeCloseTo(0.737, 3);
    expect(s.payloadBytes / GIB).toBeCloseTo(0.687, 3);
    expect(formatBytes(s.payloadBytes)).toBe('0.74 GB (0.69 GiB)');
  });

  it('zero overhead gives exactly the maintainers rule', () => {
    const s = sizeQueues({
      ratePerSec: 2000,
      payloadLength: 1024,
      ttlSecs: 7200,
      overheadBytesPerMessage: 0,
    });
    expect(s.diskBytes).toBe(2000 * 1024 * 7200);
  });

  it('multiplies by queues and divides the overhead by records per message', () => {
    const one = sizeQueues({ ratePerSec: 2000, payloadLength: 1024, ttlSecs: 7200 });
    const two = sizeQueues({ ratePerSec: 2000, payloadLength: 1024, ttlSecs: 7200, queues: 2 });
    expect(two.diskBytes).toBe(2 * one.diskBytes);
    const batched = sizeQueues({
      ratePerSec: 2000,
      payloadLength: 1024,
      ttlSecs: 7200,
      recordsPerMessage: 200,
    });
    expect(batched.payloadBytes).toBe(one.payloadBytes);
    expect(batched.overheadBytes).toBeCloseTo(one.overheadBytes / 200, 0);
  });

  it('finds the longest TTL that fits the usable share of a disk', () => {
    const s = sizeQueues({ ratePerSec: 2000, payloadLength: 1024, ttlSecs: 7200, diskGb: 32 });
    expect(s.fits).toBe(true);
    expect(s.usableDiskBytes).toBe(0.8 * 32 * GB);
    // 25.6e9 / (2000 × 1280 B/s) = 10,000 s.
    expect(s.maxTtlSecs).toBe(10_000);
    const small = sizeQueues({ ratePerSec: 2000, payloadLength: 1024, ttlSecs: 7200, diskGb: 16 });
    expect(small.fits).toBe(false);
    expect(small.maxTtlSecs).toBe(5000);
    const whole = sizeQueues({
      ratePerSec: 2000,
      payloadLength: 1024,
      ttlSecs: 7200,
      diskGb: 16,
      usableDiskFraction: 1,
    });
    expect(whole.maxTtlSecs).toBe(6250);
  });

  it('rejects negative inputs naming the field', () => {
    expect(() => sizeQueues({ ratePerSec: -1, payloadLength: 1024, ttlSecs: 1 })).toThrow(/ratePerSec/);
    expect(() =>
      sizeQueues({ ratePerSec: 1, payloadLength: 1024, ttlSecs: 1, recordsPerMessage: 0 }),
    ).toThrow(/recordsPerMessage/);
  });
});

describe('upstream shapes', () => {
  it('matches MaxUpstreamBatchSize to the message size (256 KiB / size)', () => {
    expect(matchedUpstreamBatchSize(1024)).toBe(256);
    expect(matchedUpstreamBatchSize(MAX_MESSAGE_BYTES)).toBe(1);
    expect(matchedUpstreamBatchSize(300_000)).toBe(1);
  });

  it('fills batches up to 256 KiB, the record limit, or what the linger collects', () => {
    const limits = appBatchFor256KiB(1024);
    expect(limits.maxBytes).toBe(MAX_MESSAGE_BYTES);
    const full = upstreamShape(2000, 1024, { ...limits, maxWaitTimeInMs: 200 });
    expect(full.recordsPerMessage).toBe(limits.maxMessages);
    expect(full.messageBytes).toBeLessThanOrEqual(MAX_MESSAGE_BYTES);
    const lingering = upstreamShape(100, 1024, { ...limits, maxWaitTimeInMs: 200 });
    expect(lingering.recordsPerMessage).toBe(20);
    expect(upstreamShape(2000, 1024)).toEqual({
      recordsPerMessage: 1,
      messageBytes: 1024,
      messagesPerSec: 2000,
    });
  });
});
