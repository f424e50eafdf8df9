import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleRun, sampleSweep } from '../unit/report-fixtures.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** Debian's chromium (installed by .ci/run); CHROMIUM overrides. */
const CHROMIUM =
  process.env.CHROMIUM ??
  ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p)) ??
  'chromium';

/**
 * Injected into a copy of the report only (the report itself has no script): after layout,
 * records what Chromium actually drew for every chart, so the test checks rendering, not markup.
 */
const PROBE = `<script>
const out = [...document.querySelectorAll('svg.chart')].map((svg) => {
  const r = svg.getBoundingClientRect();
  return {
    id: svg.dataset.chart,
    width: r.width,
    height: r.height,
    paths: [...svg.querySelectorAll('path[data-series]')].map((p) => {
      const b = p.getBBox();
      return {
        name: p.dataset.series,
        declared: Number(p.dataset.points),
        commands: (p.getAttribute('d').match(/[ML]/g) || []).length,
        length: p.getTotalLength(),
        bboxW: b.width,
        bboxH: b.height,
        stroke: getComputedStyle(p).stroke,
      };
    }),
    bars: [...svg.querySelectorAll('rect.bar')].map((b) => b.getBBox().height),
    ticks: [...svg.querySelectorAll('text.tick')].filter((t) => t.getComputedTextLength() > 0).length,
    labels: [...svg.querySelectorAll('text.axis-label')].map((t) => t.textContent),
    legend: svg.querySelectorAll('.legend-item').length,
  };
});
const pre = document.createElement('pre');
pre.id = 'render-check';
pre.textContent = JSON.stringify(out);
document.body.appendChild(pre);
</script>`;

interface Probe {
  id: string;
  width: number;
  height: number;
  paths: {
    name: string;
    declared: number;
    commands: number;
    length: number;
    bboxW: number;
    bboxH: number;
    stroke: string;
  }[];
  bars: number[];
  ticks: number;
  labels: string[];
  legend: number;
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'edgeperf-report-chromium-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function chromiumArgs(profile: string): string[] {
  return [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--hide-scrollbars',
    `--user-data-dir=${profile}`,
  ];
}

/** `edgeperf report` as a user runs it: a real process, exit code and all. */
async function edgeperfReport(input: unknown, name: string): Promise<string> {
  const json = join(dir, `${name}.json`);
  const html = join(dir, `${name}.html`);
  await writeFile(json, JSON.stringify(input));
  const { stdout } = await run(
    process.execPath,
    ['--import', 'tsx', 'perf-cli/main.ts', 'report', json, '-o', html],
    {
      cwd: ROOT,
      timeout: 20_000,
    },
  );
  expect(stdout).toContain('report written to');
  return html;
}

/** Opens a probed copy of the page in headless Chromium and returns what it measured. */
async function renderInChromium(html: string): Promise<Probe[]> {
  const page = await readFile(html, 'utf8');
  const probed = html.replace(/\.html$/, '.probe.html');
  await writeFile(probed, page.replace('</body>', `${PROBE}</body>`));
  const profile = join(dir, `profile-${Math.random().toString(36).slice(2)}`);
  await mkdir(profile);
  const { stdout } = await run(
    CHROMIUM,
    [...chromiumArgs(profile), '--dump-dom', pathToFileURL(probed).href],
    {
      timeout: 25_000,
      maxBuffer: 64 * 1024 * 1024,
    },
  );
  const m = /<pre id="render-check">([\s\S]*?)<\/pre>/.exec(stdout);
  expect(m, 'the probe ran in Chromium and wrote its results').not.toBeNull();
  return JSON.parse((m?.[1] ?? '[]').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&'));
}

function expectDrawn(c: Probe): void {
  expect(c.width, `${c.id} has a size`).toBeGreaterThan(300);
  expect(c.height).toBeGreaterThan(150);
  expect(c.ticks, `${c.id} has tick labels`).toBeGreaterThanOrEqual(4);
  expect(c.labels).toHaveLength(2);
}

describe('edgeperf report in headless Chromium', () => {
  it('draws every chart of a run with the expected points', async () => {
    const s = sampleRun();
    const charts = await renderInChromium(await edgeperfReport(s, 'run'));
    expect(charts.map((c) => c.id)).toEqual(['run-rate', 'run-queue', 'run-latency', 'run-latency-dist']);
    const byId = new Map(charts.map((c) => [c.id, c]));
    for (const c of charts) expectDrawn(c);
    const expected: Record<string, Record<string, number>> = {
      'run-rate': { 'source ⇒ edgeHub': 30, 'edgeHub ⇒ IoT Hub': 30 },
      'run-queue': { edgehub_queue_length: 30 },
      'run-latency': {
        p50: s.series?.latencyP50.filter((v) => v !== null).length ?? -1,
        p99: s.series?.latencyP99.filter((v) => v !== null).length ?? -1,
      },
    };
    for (const [id, series] of Object.entries(expected)) {
      const c = byId.get(id);
      expect(c?.legend).toBe(Object.keys(series).length);
      expect(Object.fromEntries((c?.paths ?? []).map((p) => [p.name, p.commands]))).toEqual(series);
      for (const p of c?.paths ?? []) {
        expect(p.declared).toBe(p.commands);
        expect(p.length, `${id}/${p.name} has visible length`).toBeGreaterThan(100);
        expect(p.bboxW).toBeGreaterThan(200);
        expect(p.stroke).not.toBe('none');
      }
    }
    // flat upstream rate: a horizontal line (zero-height box), the source rate steps down
    expect(byId.get('run-rate')?.paths[1]?.bboxH).toBe(0);
    expect(byId.get('run-rate')?.paths[0]?.bboxH).toBeGreaterThan(100);
    const dist = byId.get('run-latency-dist');
    expect(dist?.bars.length).toBeGreaterThanOrEqual(5);
    expect(Math.max(...(dist?.bars ?? [0]))).toBeGreaterThan(50);
  }, 30_000);

  it('draws a sweep: rate and p99 against each axis, one line per other-axes combination', async () => {
    const charts = await renderInChromium(await edgeperfReport(sampleSweep(), 'sweep'));
    const sweep = charts.filter((c) => c.id.startsWith('sweep-'));
    expect(sweep.map((c) => c.id)).toEqual([
      'sweep-payloadLength-rate',
      'sweep-payloadLength-p99',
      'sweep-modules-rate',
      'sweep-modules-p99',
    ]);
    for (const c of sweep) {
      expectDrawn(c);
      const perLine = c.id.startsWith('sweep-payloadLength') ? 4 : 2;
      const lines = c.id.startsWith('sweep-payloadLength') ? 2 : 4;
      expect(c.paths).toHaveLength(lines);
      for (const p of c.paths) {
        expect(p.commands).toBe(perLine);
        expect(p.length).toBeGreaterThan(50);
      }
    }
    // every cell's own charts are there too (inside collapsed <details>, laid out on open)
    expect(charts.filter((c) => c.id.startsWith('cell'))).toHaveLength(8 * 4);
  }, 30_000);

  it('takes a non-blank screenshot of the page as shipped (no probe)', async () => {
    const html = await edgeperfReport(sampleRun(), 'shot');
    const png = join(dir, 'shot.png');
    const profile = join(dir, 'profile-shot');
    await mkdir(profile);
    await run(
      CHROMIUM,
      [...chromiumArgs(profile), '--window-size=1100,2600', `--screenshot=${png}`, pathToFileURL(html).href],
      { timeout: 25_000 },
    );
    const head = (await readFile(png)).subarray(0, 8);
    expect(head.toString('hex')).toBe('89504e470d0a1a0a');
    // a blank 1100×2600 page compresses to a few KB; tables and charts make it far larger
    expect((await stat(png)).size).toBeGreaterThan(40_000);
  }, 30_000);
});
