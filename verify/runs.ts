/**
 * The record of `cqrs-sync verify` runs in MySQL (`cqrs_sink_verify_runs`, sink migration 4): each
 * run's start, end and counts per aggregate type and class, so `cqrs-sync status` shows the last
 * verify and the sink's /metrics exposes its drift (the verify CLI has no metrics endpoint).
 */
import type mysql from 'mysql2/promise';
import { SINK_TABLES } from '../sink/migrations.js';
import type { VerifyReport } from './report.js';

/** Per aggregate type, per class. */
export type CountsByType = Record<string, Record<string, number>>;

export interface VerifyRun {
  readonly id: number;
  readonly startedAt: Date;
  readonly finishedAt: Date;
  readonly repair: boolean;
  readonly clean: boolean;
  readonly checked: number;
  readonly inFlight: number;
  readonly drift: CountsByType;
  readonly repaired: CountsByType;
}

const T = `\`${SINK_TABLES.verifyRuns}\``;

export async function recordRun(pool: mysql.Pool, r: VerifyReport): Promise<number> {
  const drift: CountsByType = {};
  const repaired: CountsByType = {};
  for (const t of r.types) {
    drift[t.aggregateType] = { ...t.counts };
    repaired[t.aggregateType] = { ...t.repaired };
  }
  const [res] = await pool.query(
    `INSERT INTO ${T} (started_at, finished_at, repair, clean, checked, in_flight, drift_counts, repaired_counts)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    [
      new Date(r.startedAt),
      new Date(r.finishedAt),
      r.repair ? 1 : 0,
      r.clean ? 1 : 0,
      r.totals.checked,
      r.totals.inFlight,
      JSON.stringify(drift),
      JSON.stringify(repaired),
    ],
  );
  return (res as { insertId: number }).insertId;
}

interface RunRow {
  id: number | string;
  started_at: Date;
  finished_at: Date;
  repair: number | string;
  clean: number | string;
  checked: number | string;
  in_flight: number | string;
  drift_counts: string;
  repaired_counts: string;
}

/** The last recorded run; undefined when verify never ran. */
export async function lastRun(pool: mysql.Pool): Promise<VerifyRun | undefined> {
  const [rows] = await pool.query(`SELECT * FROM ${T} ORDER BY id DESC LIMIT 1`);
  const r = (rows as RunRow[])[0];
  if (!r) return undefined;
  return {
    id: Number(r.id),
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    repair: Number(r.repair) === 1,
    clean: Number(r.clean) === 1,
    checked: Number(r.checked),
    inFlight: Number(r.in_flight),
    drift: JSON.parse(r.drift_counts) as CountsByType,
    repaired: JSON.parse(r.repaired_counts) as CountsByType,
  };
}
