/**
 * `cqrs_sink_verify_runs`: one row per `cqrs-sync verify` run (sink migration 4), its start, end and
 * counts per aggregate type and class, so `cqrs-sync status` shows the last verify and the sink's
 * /metrics exposes its drift (the verify CLI has no metrics endpoint of its own).
 */
import { num, rowsOf, text, type Queryable } from '../sql.js';

export const VERIFY_RUNS_TABLE = 'cqrs_sink_verify_runs';

/** Per aggregate type, per class. */
export type CountsByType = Record<string, Record<string, number>>;

/** A run as verify records it. */
export interface NewVerifyRun {
  readonly startedAt: Date;
  readonly finishedAt: Date;
  readonly repair: boolean;
  readonly clean: boolean;
  readonly checked: number;
  readonly inFlight: number;
  readonly drift: CountsByType;
  readonly repaired: CountsByType;
}

export interface VerifyRun extends NewVerifyRun {
  readonly id: number;
}

interface RunRow {
  id: number | string;
  started_at: Date;
  finished_at: Date;
  repair: number | string;
  clean: number | string;
  checked: number | string;
  in_flight: number | string;
  drift_counts: unknown;
  repaired_counts: unknown;
}

export class VerifyRunsTable {
  /** `name`: the quoted physical name. */
  constructor(
    private readonly db: Queryable,
    private readonly name: string,
  ) {}

  /** Records a run; returns its id. */
  async record(r: NewVerifyRun): Promise<number> {
    const [res] = await this.db.query(
      `INSERT INTO ${this.name} (started_at, finished_at, repair, clean, checked, in_flight, drift_counts, repaired_counts)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      [
        r.startedAt,
        r.finishedAt,
        r.repair ? 1 : 0,
        r.clean ? 1 : 0,
        r.checked,
        r.inFlight,
        JSON.stringify(r.drift),
        JSON.stringify(r.repaired),
      ],
    );
    return (res as { insertId: number }).insertId;
  }

  /** The last recorded run; undefined when verify never ran. */
  async last(): Promise<VerifyRun | undefined> {
    const [r] = await rowsOf<RunRow>(
      this.db,
      `SELECT * FROM ${this.name} ORDER BY id DESC LIMIT 1`,
    );
    if (!r) return undefined;
    return {
      id: num(r.id),
      startedAt: r.started_at,
      finishedAt: r.finished_at,
      repair: num(r.repair) === 1,
      clean: num(r.clean) === 1,
      checked: num(r.checked),
      inFlight: num(r.in_flight),
      drift: JSON.parse(text(r.drift_counts)) as CountsByType,
      repaired: JSON.parse(text(r.repaired_counts)) as CountsByType,
    };
  }
}
