import Table from 'cli-table3';
import type { RunSummary } from '../analysis/summary-types.js';

/**
 * The human summary, in the spirit of IotEdgePerf's "desired / SOURCE ==> IoT HUB" table, plus
 * latency percentiles, queue peak and integrity. Plain text (no colours) so it pastes into issues.
 */
export function renderSummary(s: RunSummary): string {
  const c = s.config;
  const durationS = (m: number, r: number) => (r > 0 ? (m / r).toFixed(1) : '-');
  const rates = new Table({
    head: ['', 'desired', 'SOURCE ==> edgeHub', 'edgeHub ==> IoT HUB'],
    style: { head: [], border: [] },
  });
  rates.push(
    [
      'rate (msg/s)',
      c.targetRate > 0 ? fmt(c.targetRate) : 'unpaced',
      fmt(s.source.ratePerSec),
      fmt(s.upstream.ratePerSec),
    ],
    [
      'throughput (KB/s)',
      c.targetRate > 0 ? fmt((c.targetRate * c.payloadLength) / 1024) : '-',
      fmt(s.source.throughputKBps),
      fmt(s.upstream.throughputKBps),
    ],
    ['messages', fmt(c.burstLength * c.bursts), fmt(s.source.messages), fmt(s.upstream.messages)],
    [
      'duration (s)',
      c.targetRate > 0 ? ((c.burstLength * c.bursts) / c.targetRate).toFixed(1) : '-',
      durationS(s.source.messages, s.source.ratePerSec),
      durationS(s.upstream.messages, s.upstream.ratePerSec),
    ],
    [
      'IoT Hub messages',
      '',
      '',
      `${fmt(s.upstream.hubMessages)} (${fmt(s.upstream.meteredUnits4KB)} x 4 KB units)`,
    ],
  );
  const lat = new Table({
    head: ['latency (ms)', 'min', 'p50', 'p95', 'p99', 'max', 'avg'],
    style: { head: [], border: [] },
  });
  const l = s.latencyMs;
  lat.push(['source ==> IoT Hub', fmt(l.min), fmt(l.p50), fmt(l.p95), fmt(l.p99), fmt(l.max), fmt(l.avg)]);
  const i = s.integrity;
  const integ = new Table({
    head: ['sent', 'delivered', 'lost', 'duplicates', 'out of order', 'expired', 'queue peak'],
    style: { head: [], border: [] },
  });
  integ.push([
    fmt(i.sent),
    fmt(i.delivered),
    fmt(i.lost),
    fmt(i.duplicates),
    fmt(i.outOfOrder),
    fmt(i.expired),
    fmt(s.queue.peakLength),
  ]);
  const lines = [
    `run ${s.runId} (${s.mode}) — ${c.transport}, ${c.payloadLength} B messages, MaxUpstreamBatchSize ${c.maxUpstreamBatchSize}, ` +
      (c.appBatch.maxMessages > 1
        ? `app batch ≤${c.appBatch.maxMessages} msgs/${c.appBatch.maxBytes} B/${c.appBatch.maxWaitTimeInMs} ms`
        : 'no app batching'),
    rates.toString(),
    lat.toString(),
    integ.toString(),
  ];
  if (s.faults && s.faults.length > 0) {
    lines.push(...s.faults.map((f) => `fault ${f.fault} at ${f.atSecs}s: ${f.detail}`));
  }
  if (s.partial) lines.push('PARTIAL: the run ended before every message was accounted for.');
  return `${lines.join('\n')}\n`;
}

function fmt(n: number): string {
  if (!Number.isFinite(n)) return '-';
  return Number.isInteger(n)
    ? n.toLocaleString('en-US')
    : n.toLocaleString('en-US', { maximumFractionDigits: 1 });
}
