/**
 * The two pictures of `npm run bench`, from its measurements: the end-to-end lag distribution (a CDF
 * with p50 and p99 marked) and events/s over time per stage (commands committed, records published
 * by the relay, events applied by the sink). Pure, like bench/svg.ts.
 */
import { lineChart, type Marker, type Point } from './svg.js';

/** Cumulative counts per stage, read once a second. */
export interface StageSample {
  /** Seconds since the bench started. */
  readonly t: number;
  /** Commands whose handler returned (one event each in this workload). */
  readonly committed: number;
  /** Records on the run's topics (sum of the partitions' high watermarks). */
  readonly published: number;
  /** Sum of the sink's committed next offsets in MySQL (`cqrs_sink_offsets`). */
  readonly applied: number;
}

export const STAGES = ['committed', 'published', 'applied'] as const;
export type Stage = (typeof STAGES)[number];

/** Events/s of one stage between consecutive samples, placed at the end of each interval. */
export function stageRates(samples: readonly StageSample[], stage: Stage): Point[] {
  const out: Point[] = [];
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1];
    const b = samples[i];
    if (!a || !b || b.t <= a.t) continue;
    out.push([b.t, Math.max(0, b[stage] - a[stage]) / (b.t - a.t)]);
  }
  return out;
}

/** (lag, share of events with at most that lag), at most `maxPoints` points (sorted input). */
export function lagCdf(sortedLags: readonly number[], maxPoints = 400): Point[] {
  const n = sortedLags.length;
  if (n === 0) return [];
  const step = Math.max(1, Math.floor(n / maxPoints));
  const out: Point[] = [];
  for (let i = 0; i < n; i += step) out.push([sortedLags[i] ?? NaN, (i + 1) / n]);
  out.push([sortedLags[n - 1] ?? NaN, 1]);
  return out;
}

export function lagChart(o: {
  sortedLags: readonly number[];
  p50: number;
  p99: number;
  caption: string;
}): string {
  // Log x: the body (a few ms) and the tail (hundreds of ms) both stay readable. seen_at has 1 ms
  // resolution, so a lag can read 0 ms; it is drawn at 1 ms.
  const lags = o.sortedLags.map((l) => Math.max(1, l));
  return lineChart({
    title: `End-to-end lag, ${o.sortedLags.length} events (commit to row in MySQL)`,
    xLabel: 'lag (ms, log scale)',
    yLabel: 'share of events with at most this lag',
    xScale: 'log',
    yMax: 1,
    legend: 'left',
    series: [{ name: 'cumulative share (CDF)', points: lagCdf(lags) }],
    markers: [
      { x: Math.max(1, o.p50), label: `p50 ${Math.round(o.p50)} ms` },
      { x: Math.max(1, o.p99), label: `p99 ${Math.round(o.p99)} ms` },
    ],
    caption: o.caption,
  });
}

export function ratesChart(o: {
  samples: readonly StageSample[];
  phases: readonly Marker[];
  caption: string;
}): string {
  const names: Record<Stage, string> = {
    committed: 'write: commands committed',
    published: 'relay: records published',
    applied: 'sink: events applied',
  };
  return lineChart({
    title: 'Events/s per stage over the run',
    xLabel: 'seconds since start',
    yLabel: 'events/s (1 s samples)',
    series: STAGES.map((s) => ({ name: names[s], points: stageRates(o.samples, s) })),
    markers: o.phases,
    caption: o.caption,
  });
}
