import { describe, expect, it } from 'vitest';
import {
  barChartSvg,
  escapeXml,
  formatTick,
  lineChartSvg,
  niceScale,
  pathData,
} from '../../perf-cli/render/html-chart.js';

/** Every `<path data-series>` of an SVG string: name, declared point count and its `d`. */
function paths(svg: string): { name: string; points: number; d: string }[] {
  return [...svg.matchAll(/<path data-series="([^"]*)" data-points="(\d+)" d="([^"]*)"/g)].map((m) => ({
    name: m[1] as string,
    points: Number(m[2]),
    d: m[3] as string,
  }));
}

/** [x, y] of every command in path data. */
function coords(d: string): [number, number][] {
  return [...d.matchAll(/[ML](-?[\d.]+) (-?[\d.]+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
}

function tickLabels(svg: string, axis: 'x' | 'y'): string[] {
  return [...svg.matchAll(new RegExp(`<text class="tick ${axis}"[^>]*>([^<]*)</text>`, 'g'))].map(
    (m) => m[1] as string,
  );
}

describe('niceScale', () => {
  it('rounds the domain out to 1/2/5 steps', () => {
    expect(niceScale(0, 1998.7, { includeZero: true })).toEqual({
      min: 0,
      max: 2000,
      step: 500,
      ticks: [0, 500, 1000, 1500, 2000],
    });
    const s = niceScale(3, 97);
    expect(s.step).toBe(20);
    expect(s.ticks).toEqual([0, 20, 40, 60, 80, 100]);
    expect(niceScale(0, 29, { maxTicks: 8 }).ticks).toEqual([0, 5, 10, 15, 20, 25, 30]);
  });

  it('gives exact decimal ticks without float noise', () => {
    const s = niceScale(0.1, 0.7, { maxTicks: 7 });
    expect(s.ticks).toEqual([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]);
    for (const t of niceScale(0, 0.03).ticks) expect(String(t).length).toBeLessThan(6);
  });

  it('never gives more than maxTicks + 1 ticks and always covers the data', () => {
    for (const [lo, hi] of [
      [0, 1],
      [0, 7],
      [13, 14_987],
      [-5, 5],
      [0.001, 0.0093],
      [1e6, 3.2e7],
    ] as const) {
      for (const maxTicks of [3, 5, 6, 10]) {
        const s = niceScale(lo, hi, { maxTicks });
        expect(s.ticks.length).toBeLessThanOrEqual(maxTicks);
        expect(s.ticks.length).toBeGreaterThanOrEqual(2);
        expect(s.min).toBeLessThanOrEqual(lo);
        expect(s.max).toBeGreaterThanOrEqual(hi);
      }
    }
  });

  it('widens an empty range and falls back to [0, 1] for non-finite bounds', () => {
    expect(niceScale(0, 0, { includeZero: true })).toMatchObject({ min: 0, max: 1 });
    const c = niceScale(1024, 1024);
    expect(c.min).toBeLessThan(1024);
    expect(c.max).toBeGreaterThan(1024);
    expect(niceScale(500, 500, { includeZero: true })).toMatchObject({ min: 0 });
    expect(niceScale(Number.NaN, Number.POSITIVE_INFINITY)).toMatchObject({ min: 0, max: 1 });
    expect(niceScale(Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY)).toMatchObject({ min: 0, max: 1 });
  });
});

describe('formatTick', () => {
  it('uses the decimals the step needs and k/M for big values', () => {
    expect(formatTick(1500, 500)).toBe('1,500');
    expect(formatTick(0.25, 0.05)).toBe('0.25');
    expect(formatTick(0.2, 0.1)).toBe('0.2');
    expect(formatTick(200_000, 50_000)).toBe('200k');
    expect(formatTick(2_500_000, 500_000)).toBe('2.5M');
  });
});

describe('pathData', () => {
  it('breaks the line at gaps and reports isolated points', () => {
    const p = (x: number) => ({ x, y: 10 });
    const r = pathData([p(1), p(2), null, p(4), null, p(6), p(7)]);
    expect(r.d).toBe('M1 10L2 10M4 10M6 10L7 10');
    expect(r.points).toBe(5);
    expect(r.isolated).toEqual([p(4)]);
    expect(pathData([null, null])).toEqual({ d: '', points: 0, isolated: [] });
  });
});

describe('lineChartSvg', () => {
  const base = { id: 'c', title: 'Rate', xLabel: 'time since start (s)', yLabel: 'rate (msg/s)' };

  it('scales points into the plot area: x and y increase the right way', () => {
    const svg = lineChartSvg({
      ...base,
      x: [0, 1, 2, 3],
      series: [{ name: 'up', values: [0, 100, 200, 400] }],
    });
    const [p] = paths(svg);
    expect(p?.points).toBe(4);
    const xy = coords(p?.d ?? '');
    expect(xy).toHaveLength(4);
    for (let i = 1; i < xy.length; i++) {
      expect((xy[i] as [number, number])[0]).toBeGreaterThan((xy[i - 1] as [number, number])[0]);
      expect((xy[i] as [number, number])[1]).toBeLessThan((xy[i - 1] as [number, number])[1]); // SVG y grows down
    }
    // Linear: equal x steps are equal pixel steps; y=200 sits halfway between 0 and 400.
    const [a, b, c, d] = xy as [number, number][];
    expect(b[0] - a[0]).toBeCloseTo(c[0] - b[0], 0);
    expect(c[1]).toBeCloseTo((a[1] + d[1]) / 2, 0);
    expect(tickLabels(svg, 'y')).toEqual(['0', '100', '200', '300', '400']);
    // one decimal throughout, as the step needs
    expect(tickLabels(svg, 'x')).toEqual(['0.0', '0.5', '1.0', '1.5', '2.0', '2.5', '3.0']);
    expect(svg).toContain('>time since start (s)</text>');
    expect(svg).toContain('>rate (msg/s)</text>');
    expect(svg).toContain('<g class="legend">');
    expect(svg).not.toContain('no data');
  });

  it('leaves gaps at null, NaN and missing values and dots isolated points', () => {
    const svg = lineChartSvg({
      ...base,
      x: [0, 1, 2, 3, 4, 5, 6],
      series: [{ name: 'p99', values: [5, Number.NaN, 7, null, 9, 10, undefined] }],
      showPoints: false,
    });
    const [p] = paths(svg);
    expect(p?.points).toBe(4);
    expect(p?.d.match(/M/g)).toHaveLength(3);
    expect(svg.match(/<circle/g)).toHaveLength(2); // x=0 and x=2 stand alone
  });

  it('shows "no data" and no path for empty or all-null series', () => {
    for (const svg of [
      lineChartSvg({ ...base, x: [], series: [{ name: 'a', values: [] }] }),
      lineChartSvg({ ...base, x: [0, 1], series: [{ name: 'a', values: [null, null] }] }),
      lineChartSvg({ ...base, x: [0, 1], series: [] }),
    ]) {
      expect(paths(svg)).toHaveLength(0);
      expect(svg).toContain('no data');
      expect(svg).not.toMatch(/NaN|Infinity/);
    }
  });

  it('handles a constant series and series longer or shorter than x', () => {
    const svg = lineChartSvg({
      ...base,
      x: [0, 1, 2],
      series: [
        { name: 'flat', values: [0, 0, 0, 0, 0] },
        { name: 'short', values: [3] },
      ],
    });
    expect(paths(svg).map((p) => p.points)).toEqual([3, 1]);
    expect(svg).not.toMatch(/NaN|Infinity/);
  });

  it('places categories evenly, draws markers and references, escapes text', () => {
    const svg = lineChartSvg({
      ...base,
      id: 'sweep-<x>',
      x: { categories: ['mqtt', 'amqp', 'raw<mqtt>'] },
      series: [{ name: 'a & b', values: [1, 2, 3] }],
      markers: [{ x: 1, label: 'kill-translator' }],
      references: [{ y: 5, label: 'desired 5' }],
    });
    expect(tickLabels(svg, 'x')).toEqual(['mqtt', 'amqp', 'raw&lt;mqtt&gt;']);
    const xy = coords(paths(svg)[0]?.d ?? '');
    expect((xy[1] as [number, number])[0] - (xy[0] as [number, number])[0]).toBeCloseTo(
      (xy[2] as [number, number])[0] - (xy[1] as [number, number])[0],
      1,
    );
    expect(svg).toContain('kill-translator');
    expect(svg).toContain('desired 5');
    // the reference line stretches the y axis to include it
    expect(tickLabels(svg, 'y').at(-1)).toBe('5');
    expect(svg).toContain('data-series="a &amp; b"');
    expect(svg).toContain('data-chart="sweep-&lt;x&gt;"');
    expect(svg).not.toContain('<x>');
  });

  it('wraps a long legend onto more rows and grows the chart', () => {
    const one = lineChartSvg({ ...base, x: [0], series: [{ name: 'a', values: [1] }] });
    const many = lineChartSvg({
      ...base,
      x: [0],
      series: Array.from({ length: 8 }, (_, i) => ({
        name: `payloadLength=${i}, modules=${i}`,
        values: [i],
      })),
    });
    const height = (svg: string) => Number(/ height="([\d.]+)"/.exec(svg)?.[1]);
    expect(height(many)).toBeGreaterThan(height(one));
  });
});

describe('barChartSvg', () => {
  it('draws one bar per finite value, heights proportional, zero-height for 0', () => {
    const svg = barChartSvg({
      id: 'b',
      title: 'Latency',
      xLabel: 'percentile',
      yLabel: 'latency (ms)',
      categories: ['min', 'p50', 'p99', 'none'],
      values: [0, 50, 100, null],
    });
    const bars = [...svg.matchAll(/<rect class="bar" data-value="([\d.]+)"[^>]* height="([\d.]+)"/g)];
    expect(bars.map((b) => Number(b[1]))).toEqual([0, 50, 100]);
    const h = bars.map((b) => Number(b[2]));
    expect(h[0]).toBe(0);
    expect((h[2] as number) / (h[1] as number)).toBeCloseTo(2, 1);
    expect(tickLabels(svg, 'x')).toEqual(['min', 'p50', 'p99', 'none']);
  });

  it('thins crowded category labels and says "no data" when empty', () => {
    const cats = Array.from({ length: 60 }, (_, i) => `${i * 1000}`);
    const svg = barChartSvg({
      id: 'b',
      title: 't',
      xLabel: 'x',
      yLabel: 'y',
      categories: cats,
      values: cats.map(Number),
    });
    expect(tickLabels(svg, 'x').length).toBeLessThan(60);
    expect(tickLabels(svg, 'x')[0]).toBe('0');
    const empty = barChartSvg({ id: 'e', title: 't', xLabel: 'x', yLabel: 'y', categories: [], values: [] });
    expect(empty).toContain('no data');
    expect(empty).not.toMatch(/NaN|Infinity/);
  });
});

describe('escapeXml', () => {
  it('escapes markup and quotes', () => {
    expect(escapeXml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  });
});
