/** What `cqrs-sync verify` reports: shared by the comparison, the repair and the run record. */

/** What can be wrong with one aggregate (or one key with no aggregate). */
export const DRIFT_CLASSES = [
  'missing',
  'behind',
  'ahead',
  'deleted_present',
  'content',
  'orphan',
] as const;
export type DriftClass = (typeof DRIFT_CLASSES)[number];

export interface Drift {
  readonly aggregateType: string;
  readonly aggregateId: string;
  readonly class: DriftClass;
  /** MongoDB's version; null when MongoDB has no such aggregate (orphan). */
  readonly mongoVersion: number | null;
  /** The sink's applied version; null without a bookkeeping row. */
  readonly mysqlVersion: number | null;
  /** Tables concerned (`cqrs_sink_aggregates` for the bookkeeping). */
  readonly tables: readonly string[];
  /** For `content`: `table.column` that differ (`table.(row)` for a row too many). */
  readonly columns: readonly string[];
  readonly detail: string;
}

export type Counts = Record<DriftClass, number>;

export interface TypeReport {
  readonly aggregateType: string;
  /** Aggregates of MongoDB compared. */
  checked: number;
  readonly drift: Drift[];
  readonly counts: Counts;
  /** Still in flight when the run ended (not drift). */
  readonly inFlight: string[];
  /** Repair events published, per class (`--repair`). */
  readonly repaired: Counts;
  /** Drift left unrepaired, with why. */
  readonly notRepaired: { readonly aggregateId: string; readonly reason: string }[];
}

export interface VerifyReport {
  readonly startedAt: string;
  readonly finishedAt: string;
  /** No drift (in-flight aggregates are not drift). */
  readonly clean: boolean;
  readonly repair: boolean;
  readonly types: readonly TypeReport[];
  readonly totals: Counts & { checked: number; inFlight: number; repaired: number };
  /** The row id in `cqrs_sink_verify_runs`, when the run was recorded. */
  readonly runId?: number;
}

export const emptyCounts = (): Counts => ({
  missing: 0,
  behind: 0,
  ahead: 0,
  deleted_present: 0,
  content: 0,
  orphan: 0,
});
