import { describe, expect, it } from 'vitest';
import { IntegrityTracker } from '../../perf-cli/analysis/integrity.js';
import { latencyFigures } from '../../perf-cli/analysis/percentiles.js';

describe('integrity from sequence numbers', () => {
  it('counts delivered, lost, duplicates and out-of-order per burst', () => {
    const t = new IntegrityTracker('s1', 5, 2);
    for (const seq of [0, 1, 3, 2, 2]) t.record('s1', 1, seq, 'dev1');
    for (const seq of [0, 1, 2, 3]) t.record('s1', 2, seq, 'dev1');
    expect(t.record('other', 1, 4)).toBe(false);
    expect(t.record('s1', 3, 0)).toBe(false);
    expect(t.figures(1)).toEqual({
      sent: 10,
      delivered: 8,
      lost: 2,
      duplicates: 1,
      outOfOrder: 2,
      expired: 1,
    });
    expect(t.missingIn(1)).toBe(1);
    expect(t.complete).toBe(false);
    t.record('s1', 1, 4);
    t.record('s1', 2, 4);
    expect(t.complete).toBe(true);
  });

  it('judges order per device, so interleaved devices are not out of order', () => {
    const t = new IntegrityTracker('s', 4, 1);
    t.record('s', 1, 1, 'b');
    t.record('s', 1, 0, 'a');
    t.record('s', 1, 3, 'b');
    t.record('s', 1, 2, 'a');
    expect(t.figures().outOfOrder).toBe(0);
  });
});

describe('latency figures', () => {
  it('uses exact nearest-rank percentiles over every sample', () => {
    const samples = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(latencyFigures(samples)).toEqual({ min: 1, avg: 50.5, p50: 50, p95: 95, p99: 99, max: 100 });
    expect(latencyFigures([])).toEqual({ min: 0, avg: 0, p50: 0, p95: 0, p99: 0, max: 0 });
  });
});
