import { createServer, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { scrape, sumMetric } from '../../perf-cli/measure/prometheus-text.js';

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise<void>((r) => s.close(() => r()));
});

/** A metrics endpoint on an ephemeral loopback port; returns its URL and the connections it saw. */
async function serve(
  handler: Parameters<typeof createServer>[1],
): Promise<{ url: string; connections: () => number }> {
  let connections = 0;
  const server = createServer(handler);
  server.on('connection', () => connections++);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}/metrics`, connections: () => connections };
}

const TEXT = [
  '# TYPE edgehub_queue_length gauge',
  'edgehub_queue_length{endpoint="iothub",priority="0"} 12',
  'edgehub_queue_length{endpoint="other",priority="0"} 3',
  'edgehub_messages_dropped_total{reason="ttl_expiry"} 7',
  'edgehub_messages_dropped_total{reason="other"} 1',
  '',
].join('\n');

describe('scrape', () => {
  it('returns the body and reuses one connection for repeated scrapes', async () => {
    const ep = await serve((_req, res) => res.end(TEXT));
    for (let i = 0; i < 5; i++) expect(await scrape(ep.url)).toBe(TEXT);
    expect(ep.connections()).toBe(1);
  });

  it('is undefined for a non-200 answer, a closed port, a hung endpoint and a bad URL', async () => {
    const failing = await serve((_req, res) => {
      res.statusCode = 503;
      res.end('busy');
    });
    expect(await scrape(failing.url)).toBeUndefined();

    const closed = await serve((_req, res) => res.end(TEXT));
    await new Promise<void>((r) => (servers.pop() as Server).close(() => r()));
    expect(await scrape(closed.url)).toBeUndefined();

    const hung = await serve(() => undefined);
    const t0 = Date.now();
    expect(await scrape(hung.url, 200)).toBeUndefined();
    expect(Date.now() - t0).toBeLessThan(2000);

    expect(await scrape('not a url')).toBeUndefined();
  });
});

describe('sumMetric', () => {
  it('sums every series of a metric, or those whose labels match', () => {
    expect(sumMetric(TEXT, 'edgehub_queue_length')).toBe(15);
    expect(sumMetric(TEXT, 'edgehub_messages_dropped_total', { reason: 'ttl_expiry' })).toBe(7);
    expect(sumMetric(TEXT, 'edgehub_queue')).toBe(0);
  });
});
