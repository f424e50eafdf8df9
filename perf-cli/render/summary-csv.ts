import type { RunSummary } from '../analysis/summary-types.js';

/** CSV columns, stable: config, labels, then figures. One row per burst, plus a `total` row. */
const FIGURE_COLUMNS = [
  'burst',
  'messages',
  'source_rate',
  'upstream_rate',
  'upstream_kbps',
  'hub_messages',
  'lat_min',
  'lat_p50',
  'lat_p95',
  'lat_p99',
  'lat_max',
  'lat_avg',
  'sent',
  'delivered',
  'lost',
  'duplicates',
  'out_of_order',
  'expired',
  'queue_peak',
] as const;

/** Renders a run as CSV with every config column and each `--label`. */
export function renderCsv(s: RunSummary, withHeader = true): string {
  const c = s.config;
  const labels = c.labels ?? {};
  const labelNames = Object.keys(labels).sort();
  const configCols: Record<string, string | number> = {
    run_id: s.runId,
    mode: s.mode,
    transport: c.transport,
    burst_length: c.burstLength,
    bursts: c.bursts,
    target_rate: c.targetRate,
    payload_length: c.payloadLength,
    max_upstream_batch_size: c.maxUpstreamBatchSize,
    app_batch_max_messages: c.appBatch.maxMessages,
    app_batch_max_bytes: c.appBatch.maxBytes,
    app_batch_max_wait_ms: c.appBatch.maxWaitTimeInMs,
    modules: c.modules ?? 1,
  };
  const header = [...Object.keys(configCols), ...labelNames.map((l) => `label_${l}`), ...FIGURE_COLUMNS];
  const prefix = [...Object.values(configCols), ...labelNames.map((l) => labels[l] ?? '')];
  const rows: (string | number)[][] = [];
  for (const b of s.bursts ?? []) {
    rows.push([
      ...prefix,
      b.burst,
      b.messages,
      '',
      b.upstreamRatePerSec,
      '',
      '',
      ...lat(b.latencyMs),
      ...integ(b.integrity),
      '',
    ]);
  }
  rows.push([
    ...prefix,
    'total',
    s.upstream.messages,
    s.source.ratePerSec,
    s.upstream.ratePerSec,
    s.upstream.throughputKBps,
    s.upstream.hubMessages,
    ...lat(s.latencyMs),
    ...integ(s.integrity),
    s.queue.peakLength,
  ]);
  const out = rows.map((r) => r.map(cell).join(','));
  return `${(withHeader ? [header.join(','), ...out] : out).join('\n')}\n`;
}

function lat(l: RunSummary['latencyMs']): number[] {
  return [l.min, l.p50, l.p95, l.p99, l.max, l.avg];
}

function integ(i: RunSummary['integrity']): number[] {
  return [i.sent, i.delivered, i.lost, i.duplicates, i.outOfOrder, i.expired];
}

function cell(v: string | number): string {
  const s = String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}
