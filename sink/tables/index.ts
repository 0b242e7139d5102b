/**
 * The sink's own tables, one module each (its name and its statements); `MysqlStore` composes them
 * for the sink's transactions, `SinkAdmin` for tools beside it. The tables are created by the
 * sink's migrations (`SINK_MIGRATIONS`, sink/migrations.ts).
 */
import { quoteIdentifier, type Queryable } from '../sql.js';
import { AGGREGATES_TABLE, AggregatesTable, WAITING_TABLE } from './aggregates.js';
import { DECISIONS_GENERATION_TABLE, DECISIONS_TABLE, DecisionsTable } from './decisions.js';
import { HELD_TABLE, HeldTable } from './held.js';
import { OFFSETS_TABLE, OffsetsTable } from './offsets.js';
import { SEEN_EVENTS_TABLE, SeenEventsTable } from './seen-events.js';
import { VERIFY_RUNS_TABLE, VerifyRunsTable } from './verify-runs.js';

/** The sink's own tables, by role. */
export const SINK_TABLES = {
  events: SEEN_EVENTS_TABLE,
  aggregates: AGGREGATES_TABLE,
  /** The aggregates not `ok` (parked, waiting for a gap), indexed by status: see aggregates.ts. */
  waiting: WAITING_TABLE,
  held: HELD_TABLE,
  offsets: OFFSETS_TABLE,
  /** Operators' decisions about dead letters (drop, re-drive), by event id: kept across replays. */
  decisions: DECISIONS_TABLE,
  /** One number, raised by every decision: sinks keep the decisions in memory (decisions.ts). */
  decisionsGeneration: DECISIONS_GENERATION_TABLE,
  /** `cqrs-sync verify` runs and what each found (written by verify, read by status and /metrics). */
  verifyRuns: VERIFY_RUNS_TABLE,
} as const;

/** What a replay keeps, and a shadow sink shares with the live one: the operators' decisions. */
export const KEPT_SINK_TABLES: ReadonlySet<string> = new Set([
  SINK_TABLES.decisions,
  SINK_TABLES.decisionsGeneration,
]);

/** What a replay empties and rebuilds: all the bookkeeping but the operators' decisions. */
export const REBUILT_SINK_TABLES = [
  SINK_TABLES.events,
  SINK_TABLES.aggregates,
  SINK_TABLES.waiting,
  SINK_TABLES.held,
  SINK_TABLES.offsets,
] as const;

export interface SinkTables {
  readonly events: SeenEventsTable;
  readonly aggregates: AggregatesTable;
  readonly held: HeldTable;
  readonly offsets: OffsetsTable;
  readonly decisions: DecisionsTable;
  readonly verifyRuns: VerifyRunsTable;
  /** The quoted physical name of a table (logical name in). */
  readonly nameOf: (logical: string) => string;
}

/** The tables on one pool or connection; `physical` maps logical to physical names (shadow
 * rebuilds add a suffix). */
export function sinkTables(
  db: Queryable,
  physical: (table: string) => string = (t) => t,
): SinkTables {
  const nameOf = (logical: string): string => quoteIdentifier(physical(logical));
  return {
    events: new SeenEventsTable(db, nameOf(SINK_TABLES.events)),
    aggregates: new AggregatesTable(
      db,
      nameOf(SINK_TABLES.aggregates),
      nameOf(SINK_TABLES.waiting),
    ),
    held: new HeldTable(db, nameOf(SINK_TABLES.held)),
    offsets: new OffsetsTable(db, nameOf(SINK_TABLES.offsets)),
    decisions: new DecisionsTable(
      db,
      nameOf(SINK_TABLES.decisions),
      nameOf(SINK_TABLES.decisionsGeneration),
    ),
    verifyRuns: new VerifyRunsTable(db, nameOf(SINK_TABLES.verifyRuns)),
    nameOf,
  };
}

export { DecisionsCache } from './decisions.js';
export { heldFromRow, type HeldRow, type HeldSummary } from './held.js';
export type { AppliedEvent } from './seen-events.js';
export type { VerifyRun } from './verify-runs.js';
