/**
 * Line charts as SVG text, for the pictures `npm run bench` writes (docs/bench/). Pure: no I/O and no
 * dependency, so a chart is a string a unit test can parse. Only what the bench needs: one or more
 * series of (x, y) points, a linear or logarithmic x axis, a linear y axis from 0, vertical markers
 * (a p50, a phase boundary) and a caption line.
 */

export type Point = readonly [x: number, y: number];

export interface Series {
  readonly name: string;
  readonly points: readonly Point[];
}

export interface Marker {
  readonly x: number;
  readonly label: string;
}

export interface LineChart {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: readonly Series[];
  readonly markers?: readonly Marker[];
  /** `log` needs every x > 0 (points at x <= 0 are left out). */
  readonly xScale?: 'linear' | 'log';
  /** Upper end of the y axis; default the largest y (rounded up to a tick). */
  readonly yMax?: number;
  /** Corner of the plot the legend sits in (where the lines are not). Default `right`. */
  readonly legend?: 'left' | 'right';
  /** One line under the chart: command, sizes, machine, date. */
  readonly caption?: string;
  readonly width?: number;
  readonly height?: number;
}

/** Colour-blind-safe (Okabe-Ito), in series order. */
const COLOURS = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9'];

export const escapeXml = (s: string): string =>
  s.replace(
    /[<>&"']/g,
    (c) => `&${{ '<': 'lt', '>': 'gt', '&': 'amp', '"': 'quot', "'": 'apos' }[c]};`,
  );

/** Rounded so the file stays small and diffs stay readable. */
const f = (n: number): string => String(Math.round(n * 10) / 10);

/** 1, 2 or 5 times a power of ten, so that about `count` steps span `max`. */
export function niceStep(max: number, count = 5): number {
  if (!(max > 0)) return 1;
  const raw = max / count;
  const p = 10 ** Math.floor(Math.log10(raw));
  const m = raw / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

/** Tick values of a linear axis from `min` to at least `max`. */
export function linearTicks(min: number, max: number, count = 5): number[] {
  const step = niceStep(max - min, count);
  const ticks: number[] = [];
  for (let v = Math.floor(min / step) * step; v < max + step / 2; v += step) {
    ticks.push(Number(v.toPrecision(12)));
  }
  return ticks;
}

/** 1, 2, 5, 10, 20, 50, … covering [min, max] (both > 0). */
export function logTicks(min: number, max: number): number[] {
  const ticks: number[] = [];
  for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) {
    for (const m of [1, 2, 5]) {
      const v = Number((m * 10 ** e).toPrecision(12));
      if (v >= min / 1.0001 && v <= max * 1.0001) ticks.push(v);
    }
  }
  return ticks;
}

const label = (v: number): string =>
  Math.abs(v) >= 10_000 ? `${f(v / 1000)}k` : Number(v.toPrecision(6)).toString();

export function lineChart(c: LineChart): string {
  const width = c.width ?? 800;
  const height = c.height ?? 420;
  const left = 70;
  const right = 20;
  const top = 40;
  const bottom = c.caption ? 90 : 70;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const log = c.xScale === 'log';

  const series = c.series.map((s) => ({
    name: s.name,
    points: s.points.filter(
      ([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!log || x > 0),
    ),
  }));
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1]));
  let xMin = xs.length ? Math.min(...xs) : log ? 1 : 0;
  let xMax = xs.length ? Math.max(...xs) : xMin + 1;
  if (!log) xMin = Math.min(0, xMin);
  if (xMax <= xMin) xMax = log ? xMin * 10 : xMin + 1;
  const yTicks = linearTicks(0, c.yMax ?? Math.max(1, ...ys));
  const yMax = yTicks[yTicks.length - 1] ?? 1;
  let xTicks: number[];
  if (log) {
    xMin = 10 ** Math.floor(Math.log10(xMin));
    xMax = 10 ** Math.ceil(Math.log10(xMax));
    xTicks = logTicks(xMin, xMax);
  } else {
    xTicks = linearTicks(xMin, xMax, 8);
    xMax = xTicks[xTicks.length - 1] ?? xMax;
  }
  const sx = (x: number): number =>
    left +
    plotW *
      (log
        ? (Math.log10(x) - Math.log10(xMin)) / (Math.log10(xMax) - Math.log10(xMin))
        : (x - xMin) / (xMax - xMin));
  const sy = (y: number): number => top + plotH * (1 - Math.min(y, yMax) / yMax);

  const out: string[] = [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<title>${escapeXml(c.title)}</title>`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text class="title" x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(c.title)}</text>`,
    `<g class="axis x">`,
  ];
  for (const t of xTicks) {
    const x = f(sx(t));
    out.push(
      `<line x1="${x}" y1="${top}" x2="${x}" y2="${top + plotH}" stroke="#e5e5e5"/>`,
      `<text class="tick" x="${x}" y="${top + plotH + 16}" text-anchor="middle">${label(t)}</text>`,
    );
  }
  out.push(
    `<line x1="${left}" y1="${top + plotH}" x2="${left + plotW}" y2="${top + plotH}" stroke="#333333"/>`,
    `<text class="label" x="${left + plotW / 2}" y="${top + plotH + 36}" text-anchor="middle">${escapeXml(c.xLabel)}</text>`,
    `</g>`,
    `<g class="axis y">`,
  );
  for (const t of yTicks) {
    const y = f(sy(t));
    out.push(
      `<line x1="${left}" y1="${y}" x2="${left + plotW}" y2="${y}" stroke="#e5e5e5"/>`,
      `<text class="tick" x="${left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${label(t)}</text>`,
    );
  }
  out.push(
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${top + plotH}" stroke="#333333"/>`,
    `<text class="label" transform="translate(16 ${top + plotH / 2}) rotate(-90)" text-anchor="middle">${escapeXml(c.yLabel)}</text>`,
    `</g>`,
  );
  series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length] ?? '#000000';
    const d = s.points.map(([x, y], k) => `${k ? 'L' : 'M'}${f(sx(x))} ${f(sy(y))}`).join(' ');
    out.push(
      `<path class="series" data-name="${escapeXml(s.name)}" d="${d}" fill="none" stroke="${colour}" stroke-width="1.5"/>`,
    );
  });
  for (const m of c.markers ?? []) {
    if (!Number.isFinite(m.x) || (log && m.x <= 0)) continue;
    const x = f(sx(Math.min(Math.max(m.x, xMin), xMax)));
    out.push(
      `<g class="marker"><line x1="${x}" y1="${top}" x2="${x}" y2="${top + plotH}" stroke="#555555" stroke-dasharray="4 3"/>`,
      `<text x="${x}" y="${top - 4}" text-anchor="middle" font-size="11">${escapeXml(m.label)}</text></g>`,
    );
  }
  // Legend in a top corner, one entry per series.
  const lx = c.legend === 'left' ? left + 10 : left + plotW - 190;
  out.push(`<g class="legend">`);
  series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length] ?? '#000000';
    const y = top + 12 + 16 * i;
    out.push(
      `<line x1="${lx}" y1="${y}" x2="${lx + 20}" y2="${y}" stroke="${colour}" stroke-width="3"/>`,
      `<text x="${lx + 26}" y="${y}" dominant-baseline="middle">${escapeXml(s.name)}</text>`,
    );
  });
  out.push(`</g>`);
  if (c.caption) {
    out.push(
      `<text class="caption" x="${left}" y="${height - 14}" font-size="11" fill="#444444">${escapeXml(c.caption)}</text>`,
    );
  }
  out.push(`</svg>`, '');
  return out.join('\n');
}
