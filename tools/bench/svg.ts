// A hand-written SVG line chart (pure): throughput by message size, one line per driver and
// one for the raw UDP ceiling. Plain SVG 1.1 that any browser shows; no dependencies.

export interface Point {
  readonly x: number;
  readonly y: number;
}

export interface Series {
  readonly name: string;
  readonly points: readonly Point[];
  /** Drawn dashed (used for the ceiling). */
  readonly dashed?: boolean;
}

export interface ChartOptions {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: readonly Series[];
  /** Logarithmic x axis (message sizes from 100 B to 64 KiB). */
  readonly logX?: boolean;
  readonly width?: number;
  readonly height?: number;
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf'];
const CEILING_COLOR = '#555555';
const MARGIN = { left: 80, right: 200, top: 50, bottom: 60 };

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Round tick values covering [0, max]: steps of 1, 2 or 5 x 10^k, about `count` of them. */
export function niceTicks(max: number, count = 5): number[] {
  if (!(max > 0) || !Number.isFinite(max)) return [0, 1];
  const raw = max / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks: number[] = [];
  for (let v = 0; v <= max + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  if (ticks[ticks.length - 1] < max) ticks.push(Number((ticks[ticks.length - 1] + step).toPrecision(12)));
  return ticks;
}

/** Short tick labels: 1500 -> 1.5k, 65536 -> 64Ki for sizes on a log axis. */
export function tickLabel(v: number, binary = false): string {
  if (binary && v >= 1024 && v % 1024 === 0) return `${v / 1024}Ki`;
  if (Math.abs(v) >= 1e6) return `${Number((v / 1e6).toPrecision(3))}M`;
  if (Math.abs(v) >= 1e4) return `${Number((v / 1e3).toPrecision(3))}k`;
  return String(Number(v.toPrecision(4)));
}

export function lineChart(opts: ChartOptions): string {
  const width = opts.width ?? 820;
  const height = opts.height ?? 460;
  const plotW = width - MARGIN.left - MARGIN.right;
  const plotH = height - MARGIN.top - MARGIN.bottom;
  const all = opts.series.flatMap((s) => s.points).filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  const xs = [...new Set(all.map((p) => p.x))].sort((a, b) => a - b);
  const yTicks = niceTicks(Math.max(0, ...all.map((p) => p.y)));
  const yMax = yTicks[yTicks.length - 1];
  const xMin = xs.length ? xs[0] : 0;
  const xMax = xs.length ? xs[xs.length - 1] : 1;
  const tx = (x: number) => {
    const f = opts.logX ? (Math.log(x) - Math.log(xMin)) / (Math.log(xMax) - Math.log(xMin) || 1) : (x - xMin) / (xMax - xMin || 1);
    return MARGIN.left + f * plotW;
  };
  const ty = (y: number) => MARGIN.top + plotH - (y / yMax) * plotH;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="white"/>`);
  out.push(`<text x="${width / 2}" y="24" text-anchor="middle" font-size="16">${escapeXml(opts.title)}</text>`);
  out.push(...axes({ plotW, plotH, xs, yTicks, tx, ty, logX: opts.logX === true }));
  out.push(`<text x="${MARGIN.left + plotW / 2}" y="${height - 15}" text-anchor="middle">${escapeXml(opts.xLabel)}</text>`);
  out.push(`<text transform="translate(18 ${MARGIN.top + plotH / 2}) rotate(-90)" text-anchor="middle">${escapeXml(opts.yLabel)}</text>`);
  opts.series.forEach((s, i) => out.push(...seriesPath(s, i, tx, ty)));
  out.push(...legend(opts.series, width));
  out.push('</svg>');
  return out.join('\n') + '\n';
}

interface AxesArgs {
  plotW: number; plotH: number; xs: number[]; yTicks: number[];
  tx: (x: number) => number; ty: (y: number) => number; logX: boolean;
}

function axes(a: AxesArgs): string[] {
  const out: string[] = [];
  const x0 = MARGIN.left;
  const y0 = MARGIN.top + a.plotH;
  for (const t of a.yTicks) {
    const y = a.ty(t).toFixed(1);
    out.push(`<line x1="${x0}" y1="${y}" x2="${x0 + a.plotW}" y2="${y}" stroke="#e0e0e0"/>`);
    out.push(`<text x="${x0 - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${tickLabel(t)}</text>`);
  }
  let lastLabelX = -Infinity;
  for (const x of a.xs) {
    const px = a.tx(x);
    out.push(`<line x1="${px.toFixed(1)}" y1="${y0}" x2="${px.toFixed(1)}" y2="${y0 + 5}" stroke="black"/>`);
    if (px - lastLabelX >= 34) {
      out.push(`<text x="${px.toFixed(1)}" y="${y0 + 18}" text-anchor="middle">${tickLabel(x, a.logX)}</text>`);
      lastLabelX = px;
    }
  }
  out.push(`<line x1="${x0}" y1="${y0}" x2="${x0 + a.plotW}" y2="${y0}" stroke="black"/>`);
  out.push(`<line x1="${x0}" y1="${MARGIN.top}" x2="${x0}" y2="${y0}" stroke="black"/>`);
  return out;
}

function seriesColor(s: Series, i: number): string {
  return s.dashed ? CEILING_COLOR : COLORS[i % COLORS.length];
}

function seriesPath(s: Series, i: number, tx: (x: number) => number, ty: (y: number) => number): string[] {
  const pts = s.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y)).sort((a, b) => a.x - b.x);
  if (pts.length === 0) return [];
  const color = seriesColor(s, i);
  const d = pts.map((p, k) => `${k === 0 ? 'M' : 'L'}${tx(p.x).toFixed(1)},${ty(p.y).toFixed(1)}`).join(' ');
  const dash = s.dashed ? ' stroke-dasharray="6 4"' : '';
  const out = [`<g class="series" data-name="${escapeXml(s.name)}">`,
    `<path d="${d}" fill="none" stroke="${color}" stroke-width="2"${dash}/>`];
  for (const p of pts) {
    out.push(`<circle cx="${tx(p.x).toFixed(1)}" cy="${ty(p.y).toFixed(1)}" r="3" fill="${color}"><title>${escapeXml(`${s.name}: ${p.x} -> ${p.y.toPrecision(4)}`)}</title></circle>`);
  }
  out.push('</g>');
  return out;
}

function legend(series: readonly Series[], width: number): string[] {
  const x = width - MARGIN.right + 15;
  return series.flatMap((s, i) => {
    const y = MARGIN.top + 10 + i * 20;
    const dash = s.dashed ? ' stroke-dasharray="6 4"' : '';
    return [`<line x1="${x}" y1="${y}" x2="${x + 24}" y2="${y}" stroke="${seriesColor(s, i)}" stroke-width="2"${dash}/>`,
      `<text x="${x + 30}" y="${y}" dominant-baseline="middle">${escapeXml(s.name)}</text>`];
  });
}
