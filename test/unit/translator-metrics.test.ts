import { afterEach, describe, expect, it } from 'vitest';
import { metricLabelsFromEnv, TranslatorMetrics } from '../../modules/translator/metrics.js';
import type { PipelineStats } from '../../modules/translator/pipeline.js';

const labels = { iothub: 'hub.local', edge_device: 'dev-1', module: 'translator' };
let metrics: TranslatorMetrics | undefined;
afterEach(async () => {
  await metrics?.stop();
  metrics = undefined;
});

describe('translator metrics', () => {
  it('counts pipeline events with the IoT Edge labels', async () => {
    metrics = new TranslatorMetrics({ labels });
    const h = metrics.hooks;
    h.onReceived?.({ topic: 't', bytes: 10 });
    h.onReceived?.({ topic: 't', bytes: 10 });
    h.onBatchSent?.({
      records: 2,
      jsonBytes: 100,
      messageBytes: 150,
      encoding: 'json',
      trigger: 'linger',
      attempts: 1,
      sendDurationMs: 12,
    });
    h.onDeadLetter?.('malformed-json', 'x');
    h.onDrop?.(3, 300);
    metrics.setStatsSource(
      () => ({ bufferedRecords: 7, bufferedBytes: 700, inFlightBatches: 1 }) as PipelineStats,
    );
    const text = await metrics.text();
    const l = 'iothub="hub.local",edge_device="dev-1",module="translator"';
    expect(text).toContain(`translator_messages_received_total{${l}} 2`);
    expect(text).toContain(`translator_messages_sent_total{${l}} 2`);
    expect(text).toMatch(
      /translator_batches_total\{encoding="json",trigger="linger",iothub="hub.local".*\} 1/,
    );
    expect(text).toContain(`translator_batch_size_bytes_bucket{le="256",${l}} 1`);
    expect(text).toContain(`translator_send_duration_seconds_bucket{le="0.01",${l}} 0`);
    expect(text).toContain(`translator_send_duration_seconds_bucket{le="0.025",${l}} 1`);
    expect(text).toContain(`translator_messages_deadlettered_total{reason="malformed-json",${l}} 1`);
    expect(text).toContain(`translator_messages_deadlettered_total{reason="record-too-large",${l}} 0`);
    expect(text).toContain(`translator_messages_dropped_total{reason="buffer-full",${l}} 3`);
    expect(text).toContain(`translator_buffered_messages{${l}} 7`);
    expect(text).toContain(`translator_buffered_bytes{${l}} 700`);
  });

  it('serves /metrics over HTTP on an ephemeral loopback port', async () => {
    metrics = new TranslatorMetrics({ labels, host: '127.0.0.1', port: 0 });
    const port = await metrics.start();
    expect(port).toBeGreaterThan(0);
    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    expect(await res.text()).toContain('translator_messages_received_total');
    expect((await fetch(`http://127.0.0.1:${port}/other`)).status).toBe(404);
  });

  it('takes labels from edgeAgent variables, else from the connection string', () => {
    expect(
      metricLabelsFromEnv({ IOTEDGE_IOTHUBHOSTNAME: 'h', IOTEDGE_DEVICEID: 'd', IOTEDGE_MODULEID: 'm' }),
    ).toEqual({ iothub: 'h', edge_device: 'd', module: 'm' });
    expect(
      metricLabelsFromEnv({
        EdgeHubConnectionString: 'HostName=x.net;DeviceId=dd;ModuleId=mm;SharedAccessKey=k',
      }),
    ).toEqual({ iothub: 'x.net', edge_device: 'dd', module: 'mm' });
  });
});
