import { readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Registry } from 'prom-client';
import { beforeAll, describe, expect, it } from 'vitest';
import { EdgeHubMetrics } from '../../emulator/edgehub/metrics.js';
import { TranslatorMetrics } from '../../modules/translator/index.js';

// The workbook and the KQL files may only name metrics that edgeHub (the local runtime's model of
// it) and the translator really export, read from their prom-client registries, and only labels
// those metrics carry. The metrics collector stores one row per Prometheus sample: a histogram
// arrives as <name>_bucket/_sum/_count, a summary as <name> (quantile tag) and <name>_sum/_count.
const repo = resolve(import.meta.dirname, '../..');
const dashboards = join(repo, 'dashboards');
const kqlDir = join(dashboards, 'kql');

interface Exported {
  /** Sample name → label names the collector puts in Tags. */
  readonly series: Map<string, Set<string>>;
  /** Metric (family) names as registered: what comments may call a histogram or summary. */
  readonly families: Set<string>;
}

// Labels every series carries: the registries' default labels (edge-facts §5), plus the ones a
// histogram or summary sample adds.
const EDGEHUB_DEFAULT_LABELS = ['iothub', 'edge_device', 'instance_number'];
const TRANSLATOR_DEFAULT_LABELS = ['iothub', 'edge_device', 'module'];

async function exportedSeries(
  registry: Registry,
  defaults: readonly string[],
  into: Exported,
): Promise<void> {
  for (const m of await registry.getMetricsAsJSON()) {
    // prom-client keeps each metric's label names on the object but does not declare them in its types.
    const own =
      (registry.getSingleMetric(m.name) as unknown as { labelNames?: readonly string[] }).labelNames ?? [];
    const labels = [...defaults, ...own];
    into.families.add(m.name);
    const add = (name: string, extra: string[] = []) => into.series.set(name, new Set([...labels, ...extra]));
    switch (String(m.type)) {
      case 'histogram':
        add(`${m.name}_bucket`, ['le']);
        add(`${m.name}_sum`);
        add(`${m.name}_count`);
        break;
      case 'summary':
        add(m.name, ['quantile']);
        add(`${m.name}_sum`);
        add(`${m.name}_count`);
        break;
      default:
        add(m.name);
    }
  }
}

const METRIC_WORD = /\b(?:edgehub|edgeAgent|edgeagent|translator)_[A-Za-z0-9_]+/g;

/** KQL without its `//` comments (no query here has `//` inside a string). */
function code(query: string): string {
  return query.replace(/\/\/.*$/gm, '');
}

/** Metric-looking words in a query's comments. */
function commentMetricNames(query: string): Set<string> {
  return new Set(
    [...query.matchAll(/\/\/.*$/gm)].flatMap((c) => [...c[0].matchAll(METRIC_WORD)].map((m) => m[0])),
  );
}

/** Metric names a query selects on: `Name == "x"`, `Name in ("x", …)`, and any edgeHub/agent/translator-looking word. */
function metricNames(kqlText: string): Set<string> {
  const query = code(kqlText);
  const names = new Set<string>();
  for (const m of query.matchAll(/\bName\s*==\s*"([^"]+)"/g)) names.add(m[1] ?? '');
  for (const m of query.matchAll(/\bName\s+in\s*\(([^)]*)\)/g)) {
    for (const s of (m[1] ?? '').matchAll(/"([^"]+)"/g)) names.add(s[1] ?? '');
  }
  for (const m of query.matchAll(METRIC_WORD)) names.add(m[0]);
  return names;
}

/** Tag (label) names a query reads: `tags.x` and `tags["x"]`. */
function tagNames(kqlText: string): Set<string> {
  const query = code(kqlText);
  const names = new Set<string>();
  for (const m of query.matchAll(/\btags\.([A-Za-z_][A-Za-z0-9_]*)/g)) names.add(m[1] ?? '');
  for (const m of query.matchAll(/\btags\["([^"]+)"\]/g)) names.add(m[1] ?? '');
  return names;
}

/** Every `query` string anywhere in the workbook (items, groups, parameters), with its item name. */
function workbookQueries(node: unknown, path = ''): Array<{ where: string; query: string }> {
  if (Array.isArray(node)) return node.flatMap((n, i) => workbookQueries(n, `${path}[${i}]`));
  if (node === null || typeof node !== 'object') return [];
  const obj = node as Record<string, unknown>;
  const here = typeof obj.name === 'string' ? `${path}/${obj.name}` : path;
  const own = typeof obj.query === 'string' ? [{ where: here, query: obj.query }] : [];
  return [...own, ...Object.entries(obj).flatMap(([k, v]) => workbookQueries(v, `${here}.${k}`))];
}

const exported: Exported = { series: new Map(), families: new Set() };
const kqlFiles = readdirSync(kqlDir)
  .filter((f) => f.endsWith('.kql'))
  .sort();
const kql = new Map(kqlFiles.map((f) => [f, readFileSync(join(kqlDir, f), 'utf8')]));
const workbook = JSON.parse(readFileSync(join(dashboards, 'edgeperf-workbook.json'), 'utf8')) as {
  version: string;
  items: unknown[];
};
const queries = [
  ...workbookQueries(workbook).map((q) => ({ where: `edgeperf-workbook.json${q.where}`, query: q.query })),
  ...[...kql].map(([f, query]) => ({ where: `kql/${f}`, query })),
];

beforeAll(async () => {
  const edgeHub = new EdgeHubMetrics({ iothub: 'hub', edgeDevice: 'dev', storageFolder: tmpdir() });
  const translator = new TranslatorMetrics({
    labels: { iothub: 'hub', edge_device: 'dev', module: 'translator' },
  });
  await exportedSeries(edgeHub.registry, EDGEHUB_DEFAULT_LABELS, exported);
  await exportedSeries(translator.registry, TRANSLATOR_DEFAULT_LABELS, exported);
});

describe('dashboards name only exported metrics', () => {
  it('reads a plausible set of metrics from the registries', () => {
    expect(exported.series.get('edgehub_queue_length')).toEqual(
      new Set(['iothub', 'edge_device', 'instance_number', 'endpoint', 'priority']),
    );
    expect(exported.series.has('translator_batch_size_messages_sum')).toBe(true);
    expect(exported.series.has('translator_batch_size_messages')).toBe(false);
  });

  it('finds queries in the workbook and in every KQL file', () => {
    expect(kqlFiles.length).toBeGreaterThanOrEqual(8);
    expect(queries.length).toBeGreaterThanOrEqual(2 * kqlFiles.length);
  });

  it('each query names at least one metric, and only exported ones', () => {
    for (const { where, query } of queries) {
      const names = metricNames(query);
      expect(names.size, `${where} names no metric`).toBeGreaterThan(0);
      const unknown = [...names].filter((n) => !exported.series.has(n));
      expect(unknown, `${where} names metrics nobody exports`).toEqual([]);
    }
  });

  it('comments name only exported metrics (a histogram by its family name)', () => {
    for (const { where, query } of queries) {
      const unknown = [...commentMetricNames(query)].filter(
        (n) => !exported.series.has(n) && !exported.families.has(n),
      );
      expect(unknown, `${where} mentions metrics nobody exports`).toEqual([]);
    }
  });

  it('each query reads only tags its metrics carry', () => {
    for (const { where, query } of queries) {
      const labels = new Set([...metricNames(query)].flatMap((n) => [...(exported.series.get(n) ?? [])]));
      const unknown = [...tagNames(query)].filter((t) => !labels.has(t));
      expect(unknown, `${where} reads tags its metrics lack`).toEqual([]);
    }
  });

  it('would catch a misspelt metric or tag', () => {
    const bad = 'InsightsMetrics | where Name == "edgehub_queue_depth" | extend e = tostring(tags.endpiont)';
    expect([...metricNames(bad)].filter((n) => !exported.series.has(n))).toEqual(['edgehub_queue_depth']);
    expect([...tagNames(bad)]).toEqual(['endpiont']);
  });

  it('covers queue length, messages received/sent/dropped, disk, batch size, send duration and dead letters', () => {
    const named = new Set(queries.flatMap((q) => [...metricNames(q.query)]));
    for (const m of [
      'edgehub_queue_length',
      'edgehub_messages_received_total',
      'edgehub_messages_sent_total',
      'edgehub_messages_dropped_total',
      'edgeAgent_available_disk_space_bytes',
      'translator_batch_size_messages_sum',
      'translator_batch_size_bytes_sum',
      'translator_send_duration_seconds_sum',
      'translator_messages_deadlettered_total',
    ]) {
      expect(named.has(m), m).toBe(true);
    }
  });
});

describe('workbook', () => {
  it('is a gallery template, version Notebook/1.0', () => {
    expect(workbook.version).toBe('Notebook/1.0');
    expect(Array.isArray(workbook.items)).toBe(true);
  });

  it('holds every KQL file as one query item, with the device parameter and the time range', () => {
    const items = workbook.items as Array<{
      type: number;
      name: string;
      content: {
        query?: string;
        timeContextFromParameter?: string;
        crossComponentResources?: string[];
        version?: string;
      };
    }>;
    const queryItems = items.filter((i) => i.type === 3);
    expect(queryItems.map((i) => `${i.name}.kql`).sort()).toEqual(kqlFiles);
    for (const item of queryItems) {
      const source = kql.get(`${item.name}.kql`) ?? '';
      expect(source).toContain('let device = "";');
      // The workbook's copy differs from the file only by the Device parameter.
      expect(item.content.query).toBe(source.replace('let device = "";', 'let device = "{Device}";'));
      expect(item.content.version).toBe('KqlItem/1.0');
      expect(item.content.timeContextFromParameter).toBe('TimeRange');
      expect(item.content.crossComponentResources).toEqual(['{Workspace}']);
    }
    const params = items.find((i) => i.type === 9)?.content as { parameters?: Array<{ name: string }> };
    expect(params.parameters?.map((p) => p.name)).toEqual(['Workspace', 'TimeRange', 'Device']);
  });
});
