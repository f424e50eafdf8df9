/**
 * Inline SVG charts for the HTML report, generated here so the page needs no chart library and
 * no network when viewed (issue 5). Every chart is one `<svg>` string with `data-chart`, and
 * every plotted series a `<path data-series=… data-points=N>` so tests can count what rendered.
 */

/** An axis domain rounded to "nice" numbers and its tick values. */
export interface NiceScale {
  readonly min: number;
  readonly max: number;
  /** Distance between ticks; a 1, 2 or 5 times a power of ten. */
  readonly step: number;
  /** Tick values from `min` to `max` inclusive. */
  readonly ticks: readonly number[];
}

/** Options of {@link niceScale}. */
export interface NiceScaleOptions {
  /** Most ticks wanted, at least 2 (the result may have fewer). Default 6. */
  readonly maxTicks?: number;
  /** Stretch the domain to include 0 (rates, counts, latency). Default false. */
  readonly includeZero?: boolean;
}

/**
 * A nice linear domain covering [lo, hi] with ticks at 1/2/5 × 10^k steps. Non-finite bounds give
 * [0, 1]; an empty range is widened by 10% of its value (or by 1 around zero) so it stays visible.
 */
export function niceScale(lo: number, hi: number, options: NiceScaleOptions = {}): NiceScale {
  const maxTicks = Math.max(2, options.maxTicks ?? 6);
  let a = Number.isFinite(lo) ? lo : 0;
  let b = Number.isFinite(hi) ? hi : Number.isFinite(lo) ? lo : 1;
  if (a > b) [a, b] = [b, a];
  if (options.includeZero) {
    a = Math.min(a, 0);
    b = Math.max(b, 0);
  }
  if (a === b) {
    const d = a === 0 ? 1 : Math.abs(a) * 0.1;
    if (options.includeZero && a === 0) b = 1;
    else if (options.includeZero && a > 0) b += d;
    else if (options.includeZero && a < 0) a -= d;
    else {
      a -= d;
      b += d;
    }
  }
  // The smallest 1/2/5 × 10^k step that needs no more than maxTicks ticks.
  let step = niceStepAtLeast((b - a) / (maxTicks - 1));
  while (Math.ceil(b / step - 1e-9) - Math.floor(a / step + 1e-9) + 1 > maxTicks)
    step = niceStepAtLeast(step * 1.0001);
  const decimals = Math.max(0, -Math.floor(Math.log10(step)));
  const min = Math.floor(a / step + 1e-9) * step;
  const max = Math.ceil(b / step - 1e-9) * step;
  const ticks: number[] = [];
  const n = Math.round((max - min) / step);
  for (let i = 0; i <= n; i++) ticks.push(Number((min + i * step).toFixed(decimals)));
  return { min: ticks[0] ?? min, max: ticks[ticks.length - 1] ?? max, step, ticks };
}

/** The smallest 1, 2 or 5 × 10^k that is ≥ `x` (x > 0). */
function niceStepAtLeast(x: number): number {
  const exponent = Math.floor(Math.log10(x));
  const base = 10 ** exponent;
  for (const m of [1, 2, 5, 10]) {
    if (m * base >= x * (1 - 1e-12)) return m * base;
  }
  return 10 * base;
}

/**
 * Formats a tick value with as many decimals as the step needs; from 100 000 up, with a k/M
 * suffix so the y axis labels stay narrow.
 */
export function formatTick(value: number, step: number): string {
  const abs = Math.abs(value);
  if (abs >= 1e6 && step >= 1e5) return `${trim(value / 1e6, step / 1e6)}M`;
  if (abs >= 1e5 && step >= 1e3) return `${trim(value / 1e3, step / 1e3)}k`;
  return trim(value, step);
}

function trim(value: number, step: number): string {
  const decimals = step > 0 ? Math.min(6, Math.max(0, -Math.floor(Math.log10(step) + 1e-9))) : 0;
  return value.toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
}

/** Escapes text for XML/HTML content and attribute values. */
export function escapeXml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/**
 * Okabe–Ito colours (distinguishable with colour blindness) without the yellow, which is
 * unreadable on white; dash patterns keep series apart when printed in grey.
 */
export const SERIES_COLORS: readonly string[] = [
  '#0072B2',
  '#D55E00',
  '#009E73',
  '#CC79A7',
  '#E69F00',
  '#56B4E9',
  '#000000',
];
const DASHES: readonly string[] = ['', '6 3', '2 2', '8 3 2 3', '1 3', '10 4'];

/** One line of a {@link lineChartSvg}. */
export interface ChartSeries {
  /** Legend text. */
  readonly name: string;
  /** One y value per x; null, undefined and non-finite values leave a gap in the line. */
  readonly values: readonly (number | null | undefined)[];
  /** Stroke colour; default from {@link SERIES_COLORS} by position. */
  readonly color?: string;
  /** Dash pattern (SVG `stroke-dasharray`); default by position, '' for solid. */
  readonly dash?: string;
}

/** A labelled vertical line at an x value (e.g. when a fault was injected). */
export interface ChartMarker {
  readonly x: number;
  readonly label: string;
}

/** A labelled horizontal line at a y value (e.g. the desired rate). */
export interface ChartReference {
  readonly y: number;
  readonly label: string;
}

/** Options of {@link lineChartSvg}. */
export interface LineChartOptions {
  /** Stable id, written as `data-chart`; also prefixes element ids. */
  readonly id: string;
  /** Accessible title (SVG `<title>`). */
  readonly title: string;
  /** X axis label with its unit, e.g. `time since start (s)`. */
  readonly xLabel: string;
  /** Y axis label with its unit, e.g. `messages/s`. */
  readonly yLabel: string;
  /** Numeric x values, or category names placed evenly (e.g. transports). */
  readonly x: readonly number[] | { readonly categories: readonly string[] };
  readonly series: readonly ChartSeries[];
  /** Start the y axis at zero. Default true (rates, lengths and latencies are ≥ 0). */
  readonly yFromZero?: boolean;
  readonly markers?: readonly ChartMarker[];
  readonly references?: readonly ChartReference[];
  /** Draw a dot on every point. Default: when no series has more than 40 points. */
  readonly showPoints?: boolean;
  /** ViewBox width in px. Default 760. */
  readonly widthPx?: number;
  /** Plot area height in px (legend and axes come on top). Default 220. */
  readonly plotHeightPx?: number;
}

interface Layout {
  readonly width: number;
  readonly height: number;
  readonly left: number;
  readonly right: number;
  readonly top: number;
  readonly bottom: number;
}

const FONT_PX = 12;
/** Rough average glyph width of the system sans-serif at 12 px; only used to wrap the legend. */
const CHAR_PX = 6.6;

/**
 * A line chart as an SVG string: axes with nice ticks and unit labels, a legend, gaps where values
 * are missing, a dot for isolated points, optional markers and reference lines. A chart with no
 * finite value shows "no data" instead of lines.
 */
export function lineChartSvg(o: LineChartOptions): string {
  const width = o.widthPx ?? 760;
  const categories = Array.isArray(o.x) ? undefined : (o.x as { categories: readonly string[] }).categories;
  const xs: readonly number[] = categories ? categories.map((_, i) => i) : (o.x as readonly number[]);
  const legend = legendLayout(
    o.series.map((s) => s.name),
    width - 80,
  );
  const top = 14 + legend.rows * 18;
  const plotHeight = o.plotHeightPx ?? 220;
  const L: Layout = { width, left: 64, right: 18, top, bottom: 46, height: top + plotHeight + 46 };

  let yLo = Number.POSITIVE_INFINITY;
  let yHi = Number.NEGATIVE_INFINITY;
  let finiteCount = 0;
  for (const s of o.series) {
    const n = Math.min(s.values.length, xs.length);
    for (let i = 0; i < n; i++) {
      const v = s.values[i];
      if (isFiniteNumber(v) && Number.isFinite(xs[i])) {
        finiteCount++;
        if (v < yLo) yLo = v;
        if (v > yHi) yHi = v;
      }
    }
  }
  for (const r of o.references ?? []) {
    if (Number.isFinite(r.y) && finiteCount > 0) {
      yLo = Math.min(yLo, r.y);
      yHi = Math.max(yHi, r.y);
    }
  }
  const yScale = niceScale(yLo, yHi, { includeZero: o.yFromZero ?? true, maxTicks: 6 });
  let xLo = Number.POSITIVE_INFINITY;
  let xHi = Number.NEGATIVE_INFINITY;
  for (const v of xs) {
    if (Number.isFinite(v)) {
      xLo = Math.min(xLo, v);
      xHi = Math.max(xHi, v);
    }
  }
  const xScale: NiceScale = categories
    ? { min: -0.5, max: Math.max(0.5, categories.length - 0.5), step: 1, ticks: categories.map((_, i) => i) }
    : niceScale(xLo, xHi, { maxTicks: 8 });
  const px = (v: number) =>
    L.left + ((v - xScale.min) / (xScale.max - xScale.min)) * (width - L.left - L.right);
  const py = (v: number) => L.top + (1 - (v - yScale.min) / (yScale.max - yScale.min)) * plotHeight;

  const parts: string[] = [];
  parts.push(svgOpen(o.id, o.title, width, L.height, 'line'));
  parts.push(gridAndAxes(L, plotHeight, xScale, yScale, px, py, categories));
  parts.push(axisLabels(L, plotHeight, o.xLabel, o.yLabel));

  for (const r of o.references ?? []) {
    if (!Number.isFinite(r.y) || finiteCount === 0) continue;
    const y = fx(py(r.y));
    parts.push(
      `<g class="reference"><line x1="${L.left}" x2="${width - L.right}" y1="${y}" y2="${y}" stroke="#555" stroke-dasharray="4 4" stroke-width="1"/>` +
        `<text x="${width - L.right - 4}" y="${fx(py(r.y) - 4)}" text-anchor="end" font-size="11" fill="#333">${escapeXml(r.label)}</text></g>`,
    );
  }
  for (const m of o.markers ?? []) {
    if (!Number.isFinite(m.x) || m.x < xScale.min || m.x > xScale.max) continue;
    const x = fx(px(m.x));
    parts.push(
      `<g class="marker"><line x1="${x}" x2="${x}" y1="${L.top}" y2="${L.top + plotHeight}" stroke="#B00020" stroke-dasharray="3 3" stroke-width="1.2"/>` +
        `<text x="${fx(px(m.x) + 4)}" y="${L.top + 12}" font-size="11" fill="#B00020">${escapeXml(m.label)}</text></g>`,
    );
  }

  if (finiteCount === 0) {
    parts.push(
      `<text class="no-data" x="${fx((L.left + width - L.right) / 2)}" y="${fx(L.top + plotHeight / 2)}" text-anchor="middle" font-size="14" fill="#666">no data</text>`,
    );
  }
  const maxLen = Math.max(0, ...o.series.map((s) => Math.min(s.values.length, xs.length)));
  const showPoints = o.showPoints ?? maxLen <= 40;
  o.series.forEach((s, si) => {
    const color = s.color ?? seriesColor(si);
    const dash = s.dash ?? DASHES[si % DASHES.length] ?? '';
    const pts: ({ x: number; y: number } | null)[] = [];
    const n = Math.min(s.values.length, xs.length);
    for (let i = 0; i < n; i++) {
      const v = s.values[i];
      const xv = xs[i] as number;
      pts.push(isFiniteNumber(v) && Number.isFinite(xv) ? { x: px(xv), y: py(v) } : null);
    }
    const { d, points, isolated } = pathData(pts);
    if (points === 0) return;
    const dots = (showPoints ? pts.filter((p) => p !== null) : isolated)
      .map((p) => `<circle cx="${fx(p.x)}" cy="${fx(p.y)}" r="2.6" fill="${color}"/>`)
      .join('');
    parts.push(
      `<g class="series"><path data-series="${escapeXml(s.name)}" data-points="${points}" d="${d}" fill="none" stroke="${color}" stroke-width="1.8" stroke-linejoin="round" stroke-linecap="round"${dash ? ` stroke-dasharray="${dash}"` : ''}/>${dots}</g>`,
    );
  });
  parts.push(
    legendSvg(
      legend,
      o.series.map((s, i) => ({
        color: s.color ?? seriesColor(i),
        dash: s.dash ?? DASHES[i % DASHES.length] ?? '',
      })),
      L.left,
    ),
  );
  parts.push('</svg>');
  return parts.join('');
}

/** Options of {@link barChartSvg}. */
export interface BarChartOptions {
  /** Stable id, written as `data-chart`. */
  readonly id: string;
  readonly title: string;
  /** X axis label with its unit. */
  readonly xLabel: string;
  /** Y axis label with its unit. */
  readonly yLabel: string;
  /** One label per bar. */
  readonly categories: readonly string[];
  /** One height per bar; non-finite values draw no bar. */
  readonly values: readonly (number | null)[];
  /** Text above each bar (e.g. the value); default none. */
  readonly barLabels?: readonly string[];
  /** Bar colour. Default the first of {@link SERIES_COLORS}. */
  readonly color?: string;
  /** ViewBox width in px. Default 760. */
  readonly widthPx?: number;
  /** Plot area height in px. Default 200. */
  readonly plotHeightPx?: number;
}

/**
 * A bar chart as an SVG string (latency distribution, percentiles): equal-width bars from zero,
 * category labels thinned so they do not overlap, one `<rect class="bar">` per finite value.
 */
export function barChartSvg(o: BarChartOptions): string {
  const width = o.widthPx ?? 760;
  const plotHeight = o.plotHeightPx ?? 200;
  const L: Layout = { width, left: 64, right: 18, top: 22, bottom: 46, height: 22 + plotHeight + 46 };
  const finite = o.values.filter(isFiniteNumber);
  const yScale = niceScale(Math.min(0, ...finite), Math.max(0, ...finite), { includeZero: true });
  const n = o.categories.length;
  const plotW = width - L.left - L.right;
  const band = n > 0 ? plotW / n : plotW;
  const py = (v: number) => L.top + (1 - (v - yScale.min) / (yScale.max - yScale.min)) * plotHeight;
  const parts: string[] = [svgOpen(o.id, o.title, width, L.height, 'bar')];
  // y grid and ticks
  for (const t of yScale.ticks) {
    const y = fx(py(t));
    parts.push(
      `<line class="grid" x1="${L.left}" x2="${width - L.right}" y1="${y}" y2="${y}" stroke="#e3e3e3" stroke-width="1"/>` +
        `<text class="tick y" x="${L.left - 6}" y="${fx(py(t) + 4)}" text-anchor="end" font-size="${FONT_PX - 1}" fill="#333">${formatTick(t, yScale.step)}</text>`,
    );
  }
  const labelEvery = Math.max(1, Math.ceil((n * maxLabelChars(o.categories) * CHAR_PX) / (plotW * 0.9)));
  for (let i = 0; i < n; i++) {
    const v = o.values[i];
    const x0 = L.left + i * band;
    if (isFiniteNumber(v)) {
      const y = py(Math.max(v, 0));
      const y0 = py(0);
      parts.push(
        `<rect class="bar" data-value="${v}" x="${fx(x0 + band * 0.1)}" y="${fx(Math.min(y, y0))}" width="${fx(band * 0.8)}" height="${fx(Math.max(Math.abs(y0 - y), v !== 0 ? 0.5 : 0))}" fill="${o.color ?? seriesColor(0)}"/>`,
      );
      const bl = o.barLabels?.[i];
      if (bl) {
        parts.push(
          `<text class="bar-label" x="${fx(x0 + band / 2)}" y="${fx(Math.min(y, y0) - 3)}" text-anchor="middle" font-size="10" fill="#222">${escapeXml(bl)}</text>`,
        );
      }
    }
    if (i % labelEvery === 0) {
      parts.push(
        `<text class="tick x" x="${fx(x0 + band / 2)}" y="${L.top + plotHeight + 16}" text-anchor="middle" font-size="${FONT_PX - 1}" fill="#333">${escapeXml(o.categories[i] ?? '')}</text>`,
      );
    }
  }
  if (finite.length === 0) {
    parts.push(
      `<text class="no-data" x="${fx(L.left + plotW / 2)}" y="${fx(L.top + plotHeight / 2)}" text-anchor="middle" font-size="14" fill="#666">no data</text>`,
    );
  }
  parts.push(
    `<line class="axis" x1="${L.left}" x2="${width - L.right}" y1="${fx(py(0))}" y2="${fx(py(0))}" stroke="#333" stroke-width="1"/>`,
    `<line class="axis" x1="${L.left}" x2="${L.left}" y1="${L.top}" y2="${L.top + plotHeight}" stroke="#333" stroke-width="1"/>`,
  );
  parts.push(axisLabels(L, plotHeight, o.xLabel, o.yLabel));
  parts.push('</svg>');
  return parts.join('');
}

/**
 * SVG path data for points in order; a null breaks the line. Returns the finite point count and
 * the points with no neighbour (a lone `M` draws nothing, so those get a dot).
 */
export function pathData(points: readonly ({ x: number; y: number } | null)[]): {
  d: string;
  points: number;
  isolated: { x: number; y: number }[];
} {
  const out: string[] = [];
  const isolated: { x: number; y: number }[] = [];
  let count = 0;
  let penDown = false;
  for (let i = 0; i < points.length; i++) {
    const p = points[i];
    if (!p) {
      penDown = false;
      continue;
    }
    count++;
    out.push(`${penDown ? 'L' : 'M'}${fx(p.x)} ${fx(p.y)}`);
    if (!penDown && !points[i + 1]) isolated.push(p);
    penDown = true;
  }
  return { d: out.join(''), points: count, isolated };
}

function svgOpen(id: string, title: string, width: number, height: number, kind: string): string {
  const tid = `${escapeXml(id)}-title`;
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="${escapeXml(id)}" data-kind="${kind}" role="img" aria-labelledby="${tid}" ` +
    `viewBox="0 0 ${width} ${fx(height)}" width="${width}" height="${fx(height)}" font-family="system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif">` +
    `<title id="${tid}">${escapeXml(title)}</title>` +
    `<rect x="0" y="0" width="${width}" height="${fx(height)}" fill="#fff"/>`
  );
}

function gridAndAxes(
  L: Layout,
  plotHeight: number,
  xScale: NiceScale,
  yScale: NiceScale,
  px: (v: number) => number,
  py: (v: number) => number,
  categories: readonly string[] | undefined,
): string {
  const parts: string[] = [];
  const bottom = L.top + plotHeight;
  for (const t of yScale.ticks) {
    const y = fx(py(t));
    parts.push(
      `<line class="grid" x1="${L.left}" x2="${L.width - L.right}" y1="${y}" y2="${y}" stroke="#e3e3e3" stroke-width="1"/>` +
        `<text class="tick y" x="${L.left - 6}" y="${fx(py(t) + 4)}" text-anchor="end" font-size="${FONT_PX - 1}" fill="#333">${formatTick(t, yScale.step)}</text>`,
    );
  }
  const plotW = L.width - L.left - L.right;
  const labels = categories ?? xScale.ticks.map((t) => formatTick(t, xScale.step));
  const every = Math.max(1, Math.ceil((labels.length * (maxLabelChars(labels) + 1) * CHAR_PX) / plotW));
  xScale.ticks.forEach((t, i) => {
    const x = fx(px(t));
    const label = labels[i] ?? '';
    parts.push(
      `<line class="grid" x1="${x}" x2="${x}" y1="${L.top}" y2="${bottom}" stroke="#f0f0f0" stroke-width="1"/>` +
        `<line x1="${x}" x2="${x}" y1="${bottom}" y2="${bottom + 4}" stroke="#333" stroke-width="1"/>` +
        (i % every === 0
          ? `<text class="tick x" x="${x}" y="${bottom + 16}" text-anchor="middle" font-size="${FONT_PX - 1}" fill="#333">${escapeXml(label)}</text>`
          : ''),
    );
  });
  parts.push(
    `<line class="axis" x1="${L.left}" x2="${L.width - L.right}" y1="${bottom}" y2="${bottom}" stroke="#333" stroke-width="1"/>`,
    `<line class="axis" x1="${L.left}" x2="${L.left}" y1="${L.top}" y2="${bottom}" stroke="#333" stroke-width="1"/>`,
  );
  return parts.join('');
}

function axisLabels(L: Layout, plotHeight: number, xLabel: string, yLabel: string): string {
  const cx = fx(L.left + (L.width - L.left - L.right) / 2);
  const cy = fx(L.top + plotHeight / 2);
  return (
    `<text class="axis-label x" x="${cx}" y="${fx(L.top + plotHeight + 36)}" text-anchor="middle" font-size="${FONT_PX}" fill="#111">${escapeXml(xLabel)}</text>` +
    `<text class="axis-label y" x="14" y="${cy}" transform="rotate(-90 14 ${cy})" text-anchor="middle" font-size="${FONT_PX}" fill="#111">${escapeXml(yLabel)}</text>`
  );
}

interface LegendLayout {
  readonly rows: number;
  readonly items: readonly { name: string; dx: number; row: number }[];
}

function legendLayout(names: readonly string[], maxWidth: number): LegendLayout {
  const items: { name: string; dx: number; row: number }[] = [];
  let row = 0;
  let dx = 0;
  for (const name of names) {
    const w = 30 + name.length * CHAR_PX + 16;
    if (dx > 0 && dx + w > maxWidth) {
      row++;
      dx = 0;
    }
    items.push({ name, dx, row });
    dx += w;
  }
  return { rows: names.length === 0 ? 0 : row + 1, items };
}

function legendSvg(
  layout: LegendLayout,
  styles: readonly { color: string; dash: string }[],
  left: number,
): string {
  if (layout.items.length === 0) return '';
  const parts = ['<g class="legend">'];
  layout.items.forEach((it, i) => {
    const st = styles[i] ?? { color: seriesColor(i), dash: '' };
    const y = 12 + it.row * 18;
    const x = left + it.dx;
    parts.push(
      `<g class="legend-item"><line x1="${fx(x)}" x2="${fx(x + 24)}" y1="${y}" y2="${y}" stroke="${st.color}" stroke-width="2.4"${st.dash ? ` stroke-dasharray="${st.dash}"` : ''}/>` +
        `<text x="${fx(x + 30)}" y="${y + 4}" font-size="${FONT_PX}" fill="#111">${escapeXml(it.name)}</text></g>`,
    );
  });
  parts.push('</g>');
  return parts.join('');
}

function maxLabelChars(labels: readonly string[]): number {
  return Math.max(1, ...labels.map((l) => l.length));
}

function seriesColor(i: number): string {
  return SERIES_COLORS[i % SERIES_COLORS.length] ?? '#000';
}

function isFiniteNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/** Coordinates with one decimal keep the page small and the SVG exact enough. */
function fx(v: number): string {
  return String(Math.round(v * 10) / 10);
}
