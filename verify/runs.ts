/**
 * Verify's record of its runs, kept by the sink's table module (`cqrs_sink_verify_runs`,
 * sink/tables/verify-runs.ts): verify turns its report into the row, `status` and the sink's
 * /metrics read the last one.
 */
import { quoteIdentifier, type Queryable } from '../sink/sql.js';
import {
  VERIFY_RUNS_TABLE,
  VerifyRunsTable,
  type CountsByType,
  type VerifyRun,
} from '../sink/tables/verify-runs.js';
import type { VerifyReport } from './report.js';

export type { CountsByType, VerifyRun };

const table = (db: Queryable): VerifyRunsTable =>
  new VerifyRunsTable(db, quoteIdentifier(VERIFY_RUNS_TABLE));

export async function recordRun(db: Queryable, r: VerifyReport): Promise<number> {
  const drift: CountsByType = {};
  const repaired: CountsByType = {};
  for (const t of r.types) {
    drift[t.aggregateType] = { ...t.counts };
    repaired[t.aggregateType] = { ...t.repaired };
  }
  return table(db).record({
    startedAt: new Date(r.startedAt),
    finishedAt: new Date(r.finishedAt),
    repair: r.repair,
    clean: r.clean,
    checked: r.totals.checked,
    inFlight: r.totals.inFlight,
    drift,
    repaired,
  });
}

/** The last recorded run; undefined when verify never ran. */
export const lastRun = (db: Queryable): Promise<VerifyRun | undefined> => table(db).last();
