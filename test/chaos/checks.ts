/**
 * The checks of the kill -9 tests, computed from MongoDB and MySQL only (never from a process's own
 * log): MongoDB's aggregate documents say which versions exist and, through the command records they
 * keep, which event ids each version has; the sink's test projection `applied_log` says what MySQL
 * applied, in order; the read model's rows are compared with the documents' state.
 */
import { createHash } from 'node:crypto';
import type { MongoClient } from 'mongodb';
import {
  PENDING_MARKER,
  type AggregateDocument,
  type CommandRecord,
} from '../../schemas/outbox-entry.js';
import type { TestDatabase } from '../../sink/testing.js';
import { aggregateCollectionName } from '../../write/outbox.js';

/** The shop's aggregate types (test/support/shop.ts). */
export const SHOP_TYPES = ['Customer', 'Order'] as const;

export interface AggregateView {
  readonly type: string;
  readonly id: string;
  readonly version: number;
  readonly deleted: boolean;
  readonly state: Record<string, unknown> | null;
  readonly commands: readonly CommandRecord[];
}

export async function readAggregates(
  mongo: MongoClient,
  database: string,
  types: readonly string[] = SHOP_TYPES,
): Promise<AggregateView[]> {
  const out: AggregateView[] = [];
  for (const type of types) {
    const docs = await mongo
      .db(database)
      .collection<AggregateDocument>(aggregateCollectionName(type))
      .find({}, { projection: { outbox: 0 } })
      .toArray();
    for (const d of docs) {
      out.push({
        type,
        id: d._id,
        version: d.version,
        deleted: d.deleted,
        state: d.state,
        commands: d.commands,
      });
    }
  }
  return out;
}

/** Outbox entries not relayed yet, by status, over every aggregate document. */
export async function unrelayed(
  mongo: MongoClient,
  database: string,
  types: readonly string[] = SHOP_TYPES,
): Promise<{ pending: number; held: number }> {
  let pending = 0;
  let held = 0;
  for (const type of types) {
    const coll = mongo.db(database).collection<AggregateDocument>(aggregateCollectionName(type));
    for (const d of await coll.find(PENDING_MARKER, { projection: { outbox: 1 } }).toArray()) {
      pending += d.outbox.filter((e) => e.status === 'pending').length;
    }
    for (const d of await coll
      .find({ 'outbox.status': 'failed' }, { projection: { outbox: 1 } })
      .toArray()) {
      held += d.outbox.filter((e) => e.status === 'failed').length;
    }
  }
  return { pending, held };
}

/** Events on the write side: the sum of the aggregates' versions (each event is one version). */
export async function versionSum(
  mongo: MongoClient,
  database: string,
  types: readonly string[] = SHOP_TYPES,
): Promise<number> {
  let n = 0;
  for (const type of types) {
    const docs = await mongo
      .db(database)
      .collection<AggregateDocument>(aggregateCollectionName(type))
      .find({}, { projection: { version: 1 } })
      .toArray();
    for (const d of docs) n += d.version;
  }
  return n;
}

export interface AppliedRow {
  readonly event_id: string;
  readonly aggregate_id: string;
  readonly version: number;
}

/** Every event the sink applied, in the order it applied them. */
export async function readApplied(db: TestDatabase): Promise<AppliedRow[]> {
  return (
    await db.query<Omit<AppliedRow, 'version'> & { version: number | string }>(
      'SELECT event_id, aggregate_id, CAST(version AS SIGNED) AS version FROM applied_log ORDER BY n',
    )
  ).map((r) => ({ ...r, version: Number(r.version) }));
}

export interface Quiet {
  readonly quiet: boolean;
  readonly pending: number;
  readonly held: number;
  /** Events on the write side: the sum of the aggregates' versions (one version per event). */
  readonly events: number;
  readonly applied: number;
}

/**
 * Waits until nothing is pending in MongoDB and MySQL applied as many distinct events as the write
 * side has; `tick` runs each round (to restart a child that exited, say).
 */
export async function waitQuiet(
  mongo: MongoClient,
  database: string,
  db: TestDatabase,
  timeoutMs: number,
  tick: () => void = () => undefined,
): Promise<Quiet> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    tick();
    const { pending, held } = await unrelayed(mongo, database);
    const events = await versionSum(mongo, database);
    const [row] = await db
      .query<{ n: number }>('SELECT COUNT(DISTINCT event_id) AS n FROM applied_log')
      .catch(() => [{ n: -1 }]);
    const applied = Number(row?.n);
    const quiet = pending === 0 && held === 0 && applied === events;
    if (quiet || Date.now() > deadline) return { quiet, pending, held, events, applied };
    await new Promise((r) => setTimeout(r, 500));
  }
}

export interface EventCheck {
  /** Versions on the write side (sum of the aggregates' versions). */
  readonly events: number;
  /** Write-side versions MySQL never applied. */
  readonly lost: number;
  /** Rows beyond the first for one aggregate version (the same event, or two events of one version). */
  readonly duplicated: number;
  /** Rows applied after a later version of their aggregate. */
  readonly reordered: number;
  /** Versions MySQL applied that no aggregate document has. */
  readonly phantom: number;
  /** Versions whose event id differs between a MongoDB command record and MySQL. */
  readonly idMismatches: number;
  readonly mismatches: readonly string[];
}

/** The versions of each command record: a record of version v with k event ids holds v-k+1..v. */
export function recordVersions(r: Pick<CommandRecord, 'version' | 'eventIds'>): number[] {
  return r.eventIds.map((_, i) => r.version - r.eventIds.length + 1 + i);
}

/** MongoDB's versions against MySQL's applied rows: exactly once, in order, the same event ids. */
export function checkEvents(
  aggregates: readonly AggregateView[],
  applied: readonly AppliedRow[],
): EventCheck {
  const mismatches: string[] = [];
  const byId = new Map(aggregates.map((a) => [a.id, a]));
  const seen = new Map<string, Map<number, string>>();
  let duplicated = 0;
  let reordered = 0;
  let phantom = 0;
  const last = new Map<string, number>();
  for (const row of applied) {
    let versions = seen.get(row.aggregate_id);
    if (!versions) seen.set(row.aggregate_id, (versions = new Map<number, string>()));
    if (versions.has(row.version)) {
      duplicated++;
      mismatches.push(`${row.aggregate_id} v${row.version} applied twice (${row.event_id})`);
      continue;
    }
    versions.set(row.version, row.event_id);
    if ((last.get(row.aggregate_id) ?? 0) > row.version) reordered++;
    last.set(row.aggregate_id, Math.max(last.get(row.aggregate_id) ?? 0, row.version));
    const a = byId.get(row.aggregate_id);
    if (!a || row.version < 1 || row.version > a.version) {
      phantom++;
      mismatches.push(`${row.aggregate_id} v${row.version} applied, not on the write side`);
    }
  }
  let events = 0;
  let lost = 0;
  let idMismatches = 0;
  for (const a of aggregates) {
    events += a.version;
    const versions = seen.get(a.id);
    for (let v = 1; v <= a.version; v++) {
      if (!versions?.has(v)) {
        lost++;
        mismatches.push(`${a.type}/${a.id} v${v} never applied`);
      }
    }
    for (const r of a.commands) {
      recordVersions(r).forEach((v, i) => {
        const got = versions?.get(v);
        if (got !== undefined && got !== r.eventIds[i]) {
          idMismatches++;
          mismatches.push(
            `${a.type}/${a.id} v${v}: command ${r.commandId} recorded event ${String(r.eventIds[i])}, MySQL applied ${got}`,
          );
        }
      });
    }
  }
  return {
    events,
    lost,
    duplicated,
    reordered,
    phantom,
    idMismatches,
    mismatches: mismatches.slice(0, 50),
  };
}

export interface ReadModelCheck {
  readonly same: boolean;
  readonly mismatches: readonly string[];
  readonly summary: string;
}

/** The read model's rows (customers, orders, order lines) against the documents' state. */
export async function compareReadModel(
  aggregates: readonly AggregateView[],
  db: TestDatabase,
): Promise<ReadModelCheck> {
  const mismatches: string[] = [];
  const live = (type: string) => aggregates.filter((a) => a.type === type && !a.deleted);
  const readRows = async (sql: string) =>
    (await db.query(sql)).map((r) => Object.values(r).map(String).join('|')).sort();
  const sum = (rows: readonly string[]): string =>
    createHash('sha256').update(rows.join('\n')).digest('hex');
  const compare = (what: string, write: string[], read: string[]): boolean => {
    const inRead = new Set(read);
    const inWrite = new Set(write);
    for (const x of write) if (!inRead.has(x)) mismatches.push(`${what}: write side only: ${x}`);
    for (const x of read) if (!inWrite.has(x)) mismatches.push(`${what}: read model only: ${x}`);
    return sum(write) === sum(read);
  };
  const s = (a: AggregateView) => a.state ?? {};
  const customersW = live('Customer')
    .map((a) => `${a.id}|${String(s(a).name)}|${String(s(a).email)}|${a.version}`)
    .sort();
  const customersR = await readRows(
    'SELECT id, name, email, CAST(version AS SIGNED) AS v FROM customers',
  );
  const ordersW = live('Order')
    .map(
      (a) =>
        `${a.id}|${String(s(a).customerId)}|${String(s(a).status)}|${String(s(a).totalCents)}|${a.version}`,
    )
    .sort();
  const ordersR = await readRows(
    'SELECT id, customer_id, status, CAST(total_cents AS SIGNED) AS t, CAST(version AS SIGNED) AS v FROM orders',
  );
  const linesW = live('Order')
    .flatMap((a) =>
      ((s(a) as { lines?: Record<string, unknown>[] }).lines ?? []).map(
        (l) =>
          `${a.id}|${String(l.lineId)}|${String(l.sku)}|${String(l.quantity)}|${String(l.unitPriceCents)}`,
      ),
    )
    .sort();
  const linesR = await readRows(
    'SELECT order_id, line_id, sku, CAST(quantity AS SIGNED) AS q, CAST(unit_price_cents AS SIGNED) AS p FROM order_lines',
  );
  const same = [
    compare('customers', customersW, customersR),
    compare('orders', ordersW, ordersR),
    compare('order_lines', linesW, linesR),
  ].every(Boolean);
  return {
    same,
    mismatches: mismatches.slice(0, 20),
    summary: `read model: ${customersR.length} customers, ${ordersR.length} orders, ${linesR.length} lines; write side: ${customersW.length}, ${ordersW.length}, ${linesW.length}`,
  };
}

/** The sink's version of each aggregate (`cqrs_sink_aggregates`), by `Type/id`. */
export async function sinkVersions(db: TestDatabase): Promise<Map<string, number>> {
  const rows = await db.query<{ t: string; id: string; v: number | string }>(
    'SELECT aggregate_type AS t, aggregate_id AS id, CAST(version AS SIGNED) AS v FROM cqrs_sink_aggregates',
  );
  return new Map(rows.map((r) => [`${r.t}/${r.id}`, Number(r.v)]));
}
