import { latencyHistogram } from '../../perf-cli/analysis/latency-histogram.js';
import type { RunSummary } from '../../perf-cli/analysis/summary-types.js';
import type { SweepResult } from '../../perf-cli/analysis/sweep-types.js';

/**
 * A plausible 30 s local run: source at 2000 msg/s for 10 s, upstream capped near 600 msg/s, the
 * queue growing then draining, latency rising with it; seconds 12–13 have no latency (a gap).
 */
export function sampleRun(overrides: Partial<RunSummary> = {}, seconds = 30): RunSummary {
  const t: number[] = [];
  const sourceRate: number[] = [];
  const upstreamRate: number[] = [];
  const queueLength: number[] = [];
  const p50: (number | null)[] = [];
  const p99: (number | null)[] = [];
  let queue = 0;
  const samples: number[] = [];
  for (let i = 0; i < seconds; i++) {
    const src = i < 10 ? 2000 : 0;
    const up = Math.min(600, queue + src);
    queue += src - up;
    t.push(i);
    sourceRate.push(src);
    upstreamRate.push(up);
    queueLength.push(queue);
    const lat = 40 + (queue / 600) * 1000;
    const gap = i === 12 || i === 13;
    p50.push(up > 0 && !gap ? Math.round(lat) : null);
    p99.push(up > 0 && !gap ? Math.round(lat * 1.3 + 20) : null);
    for (let k = 0; k < up / 60; k++) samples.push(lat * (0.7 + (0.6 * k) / 10));
  }
  return {
    mode: 'local',
    runId: 'r-2026-11-22T11-50-00Z',
    config: {
      burstLength: 20000,
      bursts: 1,
      targetRate: 2000,
      payloadLength: 1024,
      maxUpstreamBatchSize: 10,
      appBatch: { maxMessages: 0, maxBytes: 0, maxWaitTimeInMs: 0 },
      transport: 'mqtt',
      labels: { host: 'laptop <&>' },
    },
    source: { messages: 20000, ratePerSec: 1998.7, throughputKBps: 1951.9 },
    upstream: {
      messages: 20000,
      hubMessages: 2000,
      ratePerSec: 601.2,
      throughputKBps: 587.1,
      meteredUnits4KB: 20000,
    },
    latencyMs: { min: 12, avg: 1400.2, p50: 1290, p95: 2900, p99: 3100.5, max: 3400 },
    queue: { peakLength: 14000, samples: seconds },
    integrity: { sent: 20000, delivered: 19990, lost: 10, duplicates: 2, outOfOrder: 0, expired: 0 },
    faults: [{ fault: 'outage', atSecs: 5, detail: 'link down 3 s: queue +1800, p99 +3000 ms' }],
    series: { t, sourceRate, upstreamRate, queueLength, latencyP50: p50, latencyP99: p99 },
    latencyHistogram: latencyHistogram(samples),
    ...overrides,
  };
}

/** A 4 × 2 sweep over payload length and module count, transport fixed (3 axes, one constant). */
export function sampleSweep(): SweepResult {
  const cells: SweepResult['cells'][number][] = [];
  for (const payloadLength of [1024, 4096, 16384, 32768]) {
    for (const modules of [1, 3]) {
      const rate = Math.round((600 * modules * 1024) / Math.max(1024, payloadLength / 4));
      const base = sampleRun({}, 5);
      cells.push({
        params: { payloadLength, modules, transport: 'mqtt' },
        summary: {
          ...base,
          runId: `cell-${payloadLength}-${modules}`,
          config: { ...base.config, payloadLength, modules },
          upstream: { ...base.upstream, ratePerSec: rate },
          latencyMs: { ...base.latencyMs, p99: Math.round(200000 / rate) },
        },
      });
    }
  }
  return { kind: 'sweep', axes: ['payloadLength', 'modules', 'transport'], cells };
}
