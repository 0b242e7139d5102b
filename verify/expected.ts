/**
 * The rows verify expects, worked out without MySQL when it can be: when every projection's plan
 * for a batch's snapshot events writes the type's owned tables only with upserts (what
 * `tableProjection` plans), the expected rows are the committed ones with the projections' owned
 * rows cleared (as a repair event clears them) and the upserts' rows put in. Running the plan in a
 * rolled-back transaction and reading the rows back was over half of verify's time. Anything this
 * cannot follow (a statement on an owned table, an upsert onto a row nothing cleared, a key it
 * cannot see) returns undefined, and verify runs the plan in MySQL. Values are compared as the
 * projections give them, before MySQL converts them: a batch that then differs is checked again in
 * MySQL (verify.ts), so a conversion (a boolean stored as 1, a date's precision) is never drift.
 */
import type { ProjectionHandler } from '../sink/apply.js';
import type { DeliveredEvent, Operation } from '../sink/projection.js';

export type Row = Record<string, unknown>;

/** An owned table as this needs it. */
export interface ExpectedTable {
  readonly table: string;
  /** Column holding the aggregate id. */
  readonly key: string;
  /** Primary-key columns (a row's identity among an aggregate's rows). */
  readonly pk: readonly string[];
}

/** Owned table -> aggregate id -> rows. */
export type RowsByTable = ReadonlyMap<string, ReadonlyMap<string, readonly Row[]>>;

/**
 * The rows of `owned` the projections would leave for `events` (snapshot events with a state, one
 * per aggregate) on top of `committed`; undefined when only MySQL can say.
 */
export function expectedWithoutMysql(
  handlers: readonly ProjectionHandler[],
  events: readonly DeliveredEvent[],
  owned: readonly ExpectedTable[],
  committed: RowsByTable,
): Map<string, Map<string, Row[]>> | undefined {
  const byName = new Map(owned.map((t) => [t.table, t]));
  if (owned.some((t) => t.pk.length === 0)) return undefined;
  const out = new Map<string, Map<string, Row[]>>();
  for (const t of owned) {
    const rows = new Map<string, Row[]>();
    for (const [id, list] of committed.get(t.table) ?? []) rows.set(id, [...list]);
    out.set(t.table, rows);
  }
  // Rows an upsert may write: those of aggregates whose rows in that table were cleared.
  const cleared = new Map<string, Set<string>>();
  for (const h of handlers) {
    const mine = events.filter(
      (e) => h.types.has(e.eventType) || h.aggs.has(e.metadata.aggregateType),
    );
    if (mine.length === 0) continue;
    // What planProjections does first for a repair event: clear the handler's owned rows.
    for (const o of h.p.owns ?? []) {
      const rows = out.get(o.table);
      if (!rows) continue;
      if (byName.get(o.table)?.key !== o.key) return undefined;
      let c = cleared.get(o.table);
      if (!c) cleared.set(o.table, (c = new Set()));
      for (const e of mine) {
        if (e.metadata.aggregateType !== o.aggregateType) continue;
        rows.delete(e.metadata.aggregateId);
        c.add(e.metadata.aggregateId);
      }
    }
    let ops: Operation[];
    try {
      ops = h.p.plan(mine);
    } catch {
      return undefined; // MySQL's path reports it as it should
    }
    for (const op of ops) {
      if (op.op === 'statement') {
        const touches = op.statement.fragments.some(
          (f) => typeof f !== 'string' && f.kind === 'table' && byName.has(f.name),
        );
        if (touches) return undefined;
        continue;
      }
      const t = byName.get(op.table);
      if (!t) continue;
      const keyAt = op.columns.indexOf(t.key);
      if (keyAt < 0 || t.pk.some((c) => !op.columns.includes(c))) return undefined;
      const rows = out.get(t.table);
      const c = cleared.get(t.table);
      if (!rows || !c) return undefined;
      for (const values of op.rows) {
        const id = values[keyAt];
        if (typeof id !== 'string' || !c.has(id)) return undefined;
        const row: Row = Object.fromEntries(op.columns.map((col, i) => [col, values[i]]));
        const list = rows.get(id) ?? [];
        const same = (r: Row): boolean => t.pk.every((k) => r[k] === row[k]);
        // A second upsert of one key in a plan: an unversioned one overwrites, a versioned one
        // only from a higher version (as MySQL's ON DUPLICATE KEY UPDATE would).
        const prior = list.find(same);
        if (
          prior &&
          op.versionColumn &&
          !(Number(row[op.versionColumn]) > Number(prior[op.versionColumn]))
        )
          continue;
        rows.set(id, [...list.filter((r) => !same(r)), row]);
      }
    }
  }
  return out;
}
