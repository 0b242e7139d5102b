/**
 * `cqrs-sync verify`: compares the write model (MongoDB's aggregate documents) with the read model
 * (the sink's bookkeeping and the projections' rows) and says, per aggregate, whether and how they
 * differ. The expected rows are what the user's projections make of the aggregate's current state:
 * they run on a snapshot event inside a MySQL transaction that is always rolled back, and the rows
 * they wrote are compared column by column with the committed rows read before in the same
 * transaction. So a row edited by hand at the right version is found too.
 *
 * Both sides are read in batches (`batchSize` ids in `_id` order from MongoDB, then the same ids
 * from MySQL); rows with no aggregate are found by a second pass over each owned table in its key
 * order. Nothing holds a whole table. Aggregates whose events are still on their way (unrelayed
 * outbox entries, a version gap the sink waits on, or a version beyond the sink's while its
 * partition has lag) are in flight, not drift, and are checked again before the run ends.
 */
import { Kafka, Partitioners, logLevel, type Admin } from 'kafkajs';
import { MongoClient, type Collection } from 'mongodb';
import type { Logger } from 'pino';
import { loadRelayConfig, relayCollections } from '../relay/config.js';
import { snapshotEventType, type Catalog } from '../schemas/catalog.js';
import { PipelineError, isPipelineError } from '../schemas/errors.js';
import type { AggregateDocument } from '../schemas/outbox-entry.js';
import { planProjections, projectionHandlers, type ProjectionHandler } from '../sink/apply.js';
import { loadSinkConfig } from '../sink/config.js';
import { SINK_TABLES } from '../sink/migrations.js';
import { MysqlStore } from '../sink/mysql-store.js';
import type { DeliveredEvent, Projection, RowOwnership } from '../sink/projection.js';
import { repairDrift } from './repair.js';
import {
  DRIFT_CLASSES,
  emptyCounts,
  type Drift,
  type DriftClass,
  type TypeReport,
  type VerifyReport,
} from './report.js';
import { recordRun } from './runs.js';

export * from './report.js';

export interface VerifyProgress {
  readonly phase: 'checking' | 'orphans' | 'settling' | 'repairing';
  readonly aggregateType: string;
  readonly done: number;
  readonly total: number;
}

export interface VerifyOptions {
  readonly catalog: Catalog;
  readonly projections: readonly Projection[];
  /** Connection settings as the relay and the sink read them; default `process.env`. */
  readonly env?: Record<string, string | undefined>;
  /** Aggregate types to verify; default all. */
  readonly types?: readonly string[];
  /** Publish a repair event for each drifted aggregate (verify/repair.ts). */
  readonly repair?: boolean;
  /** At most this many aggregates a second (0 or absent: no limit). */
  readonly maxRate?: number;
  /** Ids per batch; default 500. */
  readonly batchSize?: number;
  /** How long in-flight aggregates may take to settle before the run ends; default 10 000 ms. */
  readonly settleMs?: number;
  readonly onProgress?: (p: VerifyProgress) => void;
  readonly logger?: Logger;
  /** Record the run in `cqrs_sink_verify_runs` (default true). */
  readonly record?: boolean;
}

type Doc = Pick<AggregateDocument, '_id' | 'version' | 'deleted' | 'state'> & {
  /** Absent on a document no relay has marked yet. */
  relayedVersion?: number;
  outbox?: { status?: string }[];
};

interface Book {
  readonly version: number;
  readonly deleted: boolean;
  readonly status: string;
}

type Row = Record<string, unknown>;

/** An owned table as verify compares it. */
interface OwnedTable extends RowOwnership {
  /** Columns compared: those the projection declares for the table (never e.g. `updated_at`). */
  readonly columns: readonly string[];
  /** Primary-key columns (row identity among an aggregate's rows). */
  pk: readonly string[];
}

export type Result =
  | { readonly kind: 'clean' }
  | { readonly kind: 'in_flight'; readonly why: string }
  | { readonly kind: 'drift'; readonly drift: Drift };

/** Open connections and what is resolved once per run. */
export interface VerifyContext {
  readonly catalog: Catalog;
  readonly store: MysqlStore;
  readonly mongo: MongoClient;
  readonly collections: Readonly<Record<string, Collection<Doc>>>;
  readonly admin: Admin;
  readonly kafka: Kafka;
  readonly group: string;
  readonly handlers: readonly ProjectionHandler[];
  readonly owned: ReadonlyMap<string, readonly OwnedTable[]>;
  readonly env: Record<string, string | undefined>;
  readonly schemaRegistryUrl: string;
  readonly logger: Logger | undefined;
  close(): Promise<void>;
}

const q = (name: string): string => `\`${name.replace(/`/g, '``')}\``;

/** A value as compared: dates, buffers and numbers as text, so both reads compare alike. */
export function canon(v: unknown): string {
  if (v === null || v === undefined) return '\u0000null';
  if (v instanceof Date) return v.toISOString();
  if (Buffer.isBuffer(v)) return `0x${v.toString('hex')}`;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

const truthy = (v: unknown): boolean => v !== null && v !== undefined && canon(v) !== '0';

function unavailable(what: string, e: unknown): PipelineError {
  if (isPipelineError(e)) return e;
  return new PipelineError(
    'database_unavailable',
    `${what}: ${e instanceof Error ? e.message : String(e)}`,
    { retriable: true, cause: e },
  );
}

/** Connects to MongoDB, MySQL and Kafka with the relay's and the sink's settings. */
export async function openVerifyContext(o: VerifyOptions): Promise<VerifyContext> {
  const env = o.env ?? process.env;
  const relay = loadRelayConfig(env);
  const sink = loadSinkConfig(env);
  const types =
    o.types && o.types.length > 0 ? [...o.types] : o.catalog.aggregates.map((a) => a.type);
  for (const t of types) {
    if (!o.catalog.findAggregate(t)) {
      throw new PipelineError(
        'config_invalid',
        `--type ${t}: no such aggregate type (the config declares ${o.catalog.aggregates.map((a) => a.type).join(', ')})`,
        { retriable: false },
      );
    }
  }
  const mongo = new MongoClient(relay.mongodbUri, { serverSelectionTimeoutMS: 10_000 });
  const store = new MysqlStore({ connection: sink.mysqlUrl, poolSize: 2 });
  const kafka = new Kafka({
    clientId: 'cqrs-sync-verify',
    brokers: [...sink.kafkaBrokers],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 5000,
    retry: { retries: 5, initialRetryTime: 300, maxRetryTime: 2000 },
  });
  const admin = kafka.admin();
  const close = async (): Promise<void> => {
    await admin.disconnect().catch(() => undefined);
    await store.close().catch(() => undefined);
    await mongo.close().catch(() => undefined);
  };
  try {
    await mongo.connect().catch((e: unknown) => {
      throw unavailable('MongoDB', e);
    });
    await store.ping(5000).catch((e: unknown) => {
      throw unavailable('MySQL', e);
    });
    await admin.connect().catch((e: unknown) => {
      throw new PipelineError(
        'broker_unavailable',
        `Kafka: ${e instanceof Error ? e.message : String(e)}`,
        {
          retriable: true,
          cause: e,
        },
      );
    });
    const names = relayCollections(types, relay);
    const db = mongo.db(relay.database);
    const collections = Object.fromEntries(
      types.map((t) => [t, db.collection<Doc>(names[t] ?? t)]),
    );
    const owned = new Map<string, OwnedTable[]>();
    for (const t of types) owned.set(t, ownedTables(o.projections, t));
    for (const list of owned.values()) {
      for (const table of list) table.pk = await primaryKey(store, table.table);
    }
    return {
      catalog: o.catalog,
      store,
      mongo,
      collections,
      admin,
      kafka,
      group: sink.groupId,
      handlers: projectionHandlers(o.catalog, o.projections),
      owned,
      env,
      schemaRegistryUrl: sink.schemaRegistryUrl,
      logger: o.logger,
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}

/** The tables the projections own for one aggregate type, with the columns they declare. */
function ownedTables(projections: readonly Projection[], aggregateType: string): OwnedTable[] {
  const out = new Map<string, OwnedTable>();
  for (const p of projections) {
    for (const o of p.owns ?? []) {
      if (o.aggregateType !== aggregateType) continue;
      const declared = p.tables.find((t) => t.table === o.table)?.columns ?? [];
      const prior = out.get(o.table);
      out.set(o.table, {
        ...o,
        columns: [...new Set([...(prior?.columns ?? []), ...declared])],
        pk: [],
      });
    }
  }
  return [...out.values()];
}

async function primaryKey(store: MysqlStore, table: string): Promise<string[]> {
  const [rows] = await store.pool.query(
    `SELECT COLUMN_NAME AS c FROM information_schema.STATISTICS
     WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX`,
    [table],
  );
  return (rows as { c: string }[]).map((r) => r.c);
}

/** Unread records per partition of a topic after MySQL's offsets (where the sink stands). */
async function partitionLag(ctx: VerifyContext, topic: string): Promise<Map<number, number>> {
  const stored = await ctx.store.load(ctx.group, topic);
  const out = new Map<number, number>();
  for (const p of await ctx.admin.fetchTopicOffsets(topic)) {
    out.set(p.partition, Number(p.high) - Number(stored.get(p.partition) ?? p.low));
  }
  return out;
}

const partitioner = Partitioners.DefaultPartitioner();

/** The partition the relay's producer (kafkajs's default partitioner) sends a key to. */
function partitionOf(key: string, partitions: number, topic: string): number {
  return partitioner({
    topic,
    partitionMetadata: Array.from({ length: partitions }, (_, i) => ({
      partitionId: i,
      leader: 0,
      replicas: [0],
      isr: [0],
      offlineReplicas: [],
      partitionErrorCode: 0,
    })),
    message: { key, value: null },
  });
}

const DOC_FIELDS = {
  _id: 1,
  version: 1,
  deleted: 1,
  state: 1,
  relayedVersion: 1,
  'outbox.status': 1,
} as const;

/** Documents with these ids (any order). */
export async function docsById(
  ctx: VerifyContext,
  type: string,
  ids: readonly string[],
): Promise<Doc[]> {
  const c = ctx.collections[type];
  if (!c || ids.length === 0) return [];
  return c.find({ _id: { $in: [...ids] } }, { projection: DOC_FIELDS }).toArray();
}

function snapshotOf(type: string, doc: Doc): DeliveredEvent {
  const deleted = doc.deleted || doc.state === null;
  return {
    metadata: {
      eventId: `verify:${doc._id}`,
      eventType: snapshotEventType(type),
      aggregateType: type,
      aggregateId: doc._id,
      version: doc.version,
      schemaId: 0,
      occurredAt: new Date(),
    },
    eventType: snapshotEventType(type),
    payload: {},
    state: deleted ? null : doc.state,
    deletes: deleted,
    source: { topic: '', partition: -1, offset: '-1' },
    repair: true,
  };
}

function groupByKey(rows: readonly Row[], key: string): Map<string, Row[]> {
  const out = new Map<string, Row[]>();
  for (const r of rows) {
    const k = String(r[key]);
    let list = out.get(k);
    if (!list) out.set(k, (list = []));
    list.push(r);
  }
  return out;
}

interface RowDiff {
  readonly missing: string[];
  readonly differing: string[];
  readonly extra: string[];
  /** Live rows (not soft-deleted) per table, for a deleted aggregate. */
  readonly live: string[];
}

/** Compares one aggregate's expected and committed rows of one table. */
function diffRows(
  t: OwnedTable,
  expected: readonly Row[],
  actual: readonly Row[],
  into: RowDiff,
): void {
  const cols = t.columns.length > 0 ? t.columns : Object.keys(expected[0] ?? actual[0] ?? {});
  const idCols = t.pk.length > 0 ? t.pk : cols;
  const id = (r: Row): string => idCols.map((c) => canon(r[c])).join('\u0001');
  const have = new Map(actual.map((r) => [id(r), r]));
  for (const e of expected) {
    const a = have.get(id(e));
    if (!a) {
      if (!into.missing.includes(t.table)) into.missing.push(t.table);
      continue;
    }
    have.delete(id(e));
    for (const c of cols) {
      if (canon(e[c]) !== canon(a[c]) && !into.differing.includes(`${t.table}.${c}`))
        into.differing.push(`${t.table}.${c}`);
    }
  }
  if (have.size > 0 && !into.extra.includes(t.table)) into.extra.push(t.table);
}

async function readOwned(
  query: (sql: string, params?: unknown[]) => Promise<unknown[]>,
  owned: readonly OwnedTable[],
  ids: readonly string[],
): Promise<Map<string, Map<string, Row[]>>> {
  const out = new Map<string, Map<string, Row[]>>();
  for (const t of owned) {
    const rows = (await query(`SELECT * FROM ${q(t.table)} WHERE ${q(t.key)} IN (?)`, [
      [...ids],
    ])) as Row[];
    out.set(t.table, groupByKey(rows, t.key));
  }
  return out;
}

/**
 * Compares one batch of documents of `type` with MySQL. Reads MongoDB first, then the partitions'
 * lag, then MySQL: an event relayed before the MongoDB read is either counted in the lag or already
 * in the rows read after it, so a behind aggregate with no lag is real drift.
 */
export async function checkBatch(
  ctx: VerifyContext,
  type: string,
  docs: readonly Doc[],
): Promise<Map<string, Result>> {
  const results = new Map<string, Result>();
  if (docs.length === 0) return results;
  const topic = ctx.catalog.aggregate(type).topic;
  const lag = await partitionLag(ctx, topic);
  const owned = ctx.owned.get(type) ?? [];
  const ids = docs.map((d) => d._id);
  const handlers = ctx.handlers;
  const { books, committed, expected } = await ctx.store.rolledBack(async (tx, query) => {
    // Locked, so a sink transaction of these aggregates cannot commit between the reads below (it
    // locks the same rows first); released by the rollback.
    const bookRows = (await query(
      `SELECT aggregate_id, version, deleted, status FROM ${q(SINK_TABLES.aggregates)}
       WHERE aggregate_type = ? AND aggregate_id IN (?) FOR UPDATE`,
      [type, ids],
    )) as { aggregate_id: string; version: string | number; deleted: number; status: string }[];
    const books = new Map<string, Book>(
      bookRows.map((r) => [
        r.aggregate_id,
        { version: Number(r.version), deleted: r.deleted === 1, status: r.status },
      ]),
    );
    const committed = await readOwned(query, owned, ids);
    // The projections make the rows again from the current state (a repair event does the same).
    await tx.execute(
      planProjections(
        handlers,
        docs.map((d) => snapshotOf(type, d)),
      ),
    );
    const expected = await readOwned(query, owned, ids);
    return { books, committed, expected };
  });
  const recheck: string[] = [];
  for (const doc of docs) {
    const r = classify(type, doc, books.get(doc._id), owned, committed, expected, (id) => {
      const n = lag.size;
      return n === 0 ? 0 : (lag.get(partitionOf(id, n, topic)) ?? 0);
    });
    results.set(doc._id, r);
    if (r.kind === 'drift' && (r.drift.class === 'ahead' || r.drift.class === 'content'))
      recheck.push(doc._id);
  }
  // MySQL read after MongoDB: a command since then may already be applied. Moved on: in flight.
  if (recheck.length > 0) {
    const now = new Map((await docsById(ctx, type, recheck)).map((d) => [d._id, d.version]));
    const before = new Map(docs.map((d) => [d._id, d.version]));
    for (const id of recheck) {
      if (now.get(id) !== before.get(id))
        results.set(id, { kind: 'in_flight', why: 'changed in MongoDB while verified' });
    }
  }
  return results;
}

/** One aggregate's verdict. Pure. */
export function classify(
  type: string,
  doc: Doc,
  book: Book | undefined,
  owned: readonly OwnedTable[],
  committed: ReadonlyMap<string, ReadonlyMap<string, readonly Row[]>>,
  expected: ReadonlyMap<string, ReadonlyMap<string, readonly Row[]>>,
  lagOf: (id: string) => number,
): Result {
  const id = doc._id;
  const deleted = doc.deleted || doc.state === null;
  const diff: RowDiff = { missing: [], differing: [], extra: [], live: [] };
  for (const t of owned) {
    const actual = committed.get(t.table)?.get(id) ?? [];
    if (deleted) {
      const live = actual.filter((r) => !(t.deletedColumn && truthy(r[t.deletedColumn])));
      if (live.length > 0) diff.live.push(t.table);
    } else {
      diffRows(t, expected.get(t.table)?.get(id) ?? [], actual, diff);
    }
  }
  const rowsOk =
    diff.missing.length === 0 &&
    diff.differing.length === 0 &&
    diff.extra.length === 0 &&
    diff.live.length === 0;
  const bookOk = book ? book.version === doc.version : deleted;
  if (rowsOk && bookOk) return { kind: 'clean' };
  const pending = (doc.outbox ?? []).some((e) => (e.status ?? 'pending') === 'pending');
  if (pending) return { kind: 'in_flight', why: 'unrelayed outbox entries' };
  if (book?.status === 'gap') return { kind: 'in_flight', why: 'the sink waits for a version' };
  const relayed = (doc.relayedVersion ?? 0) >= doc.version;
  const bookVersion = book?.version ?? 0;
  if (bookVersion < doc.version && relayed && lagOf(id) > 0)
    return { kind: 'in_flight', why: 'consumer lag on its partition' };
  const drift = (
    cls: DriftClass,
    tables: readonly string[],
    detail: string,
    columns: readonly string[] = [],
  ): Result => ({
    kind: 'drift',
    drift: {
      aggregateType: type,
      aggregateId: id,
      class: cls,
      mongoVersion: doc.version,
      mysqlVersion: book ? book.version : null,
      tables,
      columns,
      detail,
    },
  });
  const held = (doc.outbox ?? []).some((e) => e.status === 'failed')
    ? '; the relay holds it behind a failed entry (relay release)'
    : book?.status === 'parked'
      ? '; parked behind a dead letter (dlq list)'
      : '';
  if (!book && !deleted)
    return drift(
      'missing',
      [SINK_TABLES.aggregates, ...diff.missing],
      `version ${doc.version} in MongoDB, never applied by the sink${held}`,
    );
  if (bookVersion > doc.version)
    return drift(
      'ahead',
      [SINK_TABLES.aggregates],
      `MySQL at version ${bookVersion}, MongoDB at ${doc.version}`,
    );
  if (bookVersion < doc.version)
    return drift(
      'behind',
      [SINK_TABLES.aggregates],
      `MySQL at version ${bookVersion}, MongoDB at ${doc.version}${held}`,
    );
  if (deleted)
    return drift('deleted_present', diff.live, `deleted in MongoDB at version ${doc.version}`);
  if (diff.missing.length > 0)
    return drift('missing', diff.missing, `rows missing at version ${doc.version}`);
  return drift(
    'content',
    [...new Set([...diff.differing.map((c) => c.split('.')[0] ?? c), ...diff.extra])],
    `rows differ at version ${doc.version}`,
    [...diff.differing, ...diff.extra.map((t) => `${t}.(row)`)],
  );
}

/**
 * Keys in MySQL with no aggregate in MongoDB: each owned table in its key order, and the sink's
 * bookkeeping rows that are not marked deleted (a deleted aggregate's document may be purged).
 */
async function findOrphans(
  ctx: VerifyContext,
  type: string,
  batchSize: number,
  throttle: (n: number) => Promise<void>,
): Promise<Map<string, Drift>> {
  const out = new Map<string, Drift>();
  const sources: { table: string; sql: string; params: (after: string) => unknown[] }[] = [
    ...(ctx.owned.get(type) ?? []).map((t) => ({
      table: t.table,
      sql: `SELECT DISTINCT ${q(t.key)} AS k FROM ${q(t.table)} WHERE ${q(t.key)} > ? ORDER BY ${q(t.key)} LIMIT ${batchSize}`,
      params: (after: string) => [after],
    })),
    {
      table: SINK_TABLES.aggregates,
      sql: `SELECT aggregate_id AS k FROM ${q(SINK_TABLES.aggregates)} WHERE aggregate_type = ? AND aggregate_id > ? AND deleted = 0 ORDER BY aggregate_id LIMIT ${batchSize}`,
      params: (after: string) => [type, after],
    },
  ];
  for (const s of sources) {
    let after = '';
    for (;;) {
      const [rows] = await ctx.store.pool.query(s.sql, s.params(after));
      const keys = (rows as { k: unknown }[]).map((r) => String(r.k));
      if (keys.length === 0) break;
      after = keys[keys.length - 1] ?? after;
      const found = new Set((await docsById(ctx, type, keys)).map((d) => d._id));
      for (const k of keys) {
        if (found.has(k)) continue;
        const prior = out.get(k);
        out.set(k, {
          aggregateType: type,
          aggregateId: k,
          class: 'orphan',
          mongoVersion: null,
          mysqlVersion: prior?.mysqlVersion ?? null,
          tables: [...(prior?.tables ?? []), s.table],
          columns: [],
          detail: `no ${type} ${k} in MongoDB`,
        });
      }
      await throttle(keys.length);
      if (keys.length < batchSize) break;
    }
  }
  if (out.size > 0) {
    const [rows] = await ctx.store.pool.query(
      `SELECT aggregate_id, version FROM ${q(SINK_TABLES.aggregates)} WHERE aggregate_type = ? AND aggregate_id IN (?)`,
      [type, [...out.keys()]],
    );
    for (const r of rows as { aggregate_id: string; version: string | number }[]) {
      const d = out.get(r.aggregate_id);
      if (d) out.set(r.aggregate_id, { ...d, mysqlVersion: Number(r.version) });
    }
  }
  return out;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Keeps the run at `maxRate` aggregates a second (0: no limit). */
function throttler(maxRate: number): (n: number) => Promise<void> {
  const started = Date.now();
  let done = 0;
  return async (n) => {
    done += n;
    if (maxRate <= 0) return;
    const due = started + (done / maxRate) * 1000;
    const wait = due - Date.now();
    if (wait > 0) await sleep(wait);
  };
}

/**
 * Verifies (and with `repair`, repairs) the read model. Rejects only when it could not run
 * (a server unreachable, a bad configuration): drift is in the report.
 */
export async function verify(o: VerifyOptions): Promise<VerifyReport> {
  const started = new Date();
  const ctx = await openVerifyContext(o);
  try {
    const batchSize = o.batchSize ?? 500;
    const throttle = throttler(o.maxRate ?? 0);
    const types = [...ctx.owned.keys()];
    const reports = new Map<string, TypeReport>();
    // Everything not clean, checked again before the run ends.
    const open = new Map<string, Map<string, Result>>();
    for (const type of types) {
      const report: TypeReport = {
        aggregateType: type,
        checked: 0,
        drift: [],
        counts: emptyCounts(),
        inFlight: [],
        repaired: emptyCounts(),
        notRepaired: [],
      };
      reports.set(type, report);
      const c = ctx.collections[type];
      if (!c) continue;
      const total = await c.estimatedDocumentCount();
      const mine = new Map<string, Result>();
      open.set(type, mine);
      o.onProgress?.({ phase: 'checking', aggregateType: type, done: 0, total });
      // One cursor in `_id` order rather than a query per batch: the server walks the index once
      // (a `$gt` + sort + limit query per batch made the stand-in sort again each time).
      const cursor = c.find({}, { projection: DOC_FIELDS }).sort({ _id: 1 }).batchSize(batchSize);
      try {
        for (;;) {
          const docs: Doc[] = [];
          while (docs.length < batchSize) {
            const d = await cursor.next();
            if (!d) break;
            docs.push(d);
          }
          if (docs.length === 0) break;
          for (const [id, r] of await checkBatch(ctx, type, docs))
            if (r.kind !== 'clean') mine.set(id, r);
          report.checked += docs.length;
          o.onProgress?.({
            phase: 'checking',
            aggregateType: type,
            done: report.checked,
            total: Math.max(total, report.checked),
          });
          await throttle(docs.length);
          if (docs.length < batchSize) break;
        }
      } finally {
        await cursor.close().catch(() => undefined);
      }
      o.onProgress?.({ phase: 'orphans', aggregateType: type, done: 0, total: 0 });
      for (const [id, d] of await findOrphans(ctx, type, batchSize, throttle)) {
        if (!mine.has(id)) mine.set(id, { kind: 'drift', drift: d });
      }
    }
    await settle(ctx, open, o.settleMs ?? 10_000, batchSize, o.onProgress);
    for (const [type, results] of open) {
      const report = reports.get(type);
      if (!report) continue;
      for (const [id, r] of [...results].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
        if (r.kind === 'in_flight') report.inFlight.push(id);
        else if (r.kind === 'drift') {
          report.drift.push(r.drift);
          report.counts[r.drift.class]++;
        }
      }
    }
    if (o.repair) {
      const drifted = [...reports.values()].filter((r) => r.drift.length > 0);
      await repairDrift(
        {
          catalog: ctx.catalog,
          kafka: ctx.kafka,
          schemaRegistryUrl: ctx.schemaRegistryUrl,
          logger: o.logger,
          docs: (type, ids) => docsById(ctx, type, ids),
        },
        drifted,
        batchSize,
        (type, done, total) =>
          o.onProgress?.({ phase: 'repairing', aggregateType: type, done, total }),
      );
    }
    const list = [...reports.values()];
    const totals = { ...emptyCounts(), checked: 0, inFlight: 0, repaired: 0 };
    for (const r of list) {
      totals.checked += r.checked;
      totals.inFlight += r.inFlight.length;
      for (const c of DRIFT_CLASSES) {
        totals[c] += r.counts[c];
        totals.repaired += r.repaired[c];
      }
    }
    const report: VerifyReport = {
      startedAt: started.toISOString(),
      finishedAt: new Date().toISOString(),
      clean: list.every((r) => r.drift.length === 0),
      repair: o.repair === true,
      types: list,
      totals,
    };
    if (o.record === false) return report;
    const runId = await recordRun(ctx.store.pool, report).catch((e: unknown) => {
      o.logger?.warn({ err: e }, 'verify run not recorded (run `cqrs-sync sink migrate`?)');
      return undefined;
    });
    return runId === undefined ? report : { ...report, runId };
  } finally {
    await ctx.close();
  }
}

/**
 * Checks every aggregate that was not clean again: at once (drift seen while the sink was mid-way
 * is gone), then every 250 ms while some are in flight, until `settleMs` has passed.
 */
async function settle(
  ctx: VerifyContext,
  open: Map<string, Map<string, Result>>,
  settleMs: number,
  batchSize: number,
  onProgress: VerifyOptions['onProgress'],
): Promise<void> {
  const deadline = Date.now() + settleMs;
  for (let round = 0; ; round++) {
    const inFlight = [...open.values()].some((m) =>
      [...m.values()].some((r) => r.kind === 'in_flight'),
    );
    if (round > 0 && (!inFlight || Date.now() >= deadline)) return;
    if (round > 0) await sleep(250);
    for (const [type, results] of open) {
      const ids = [...results.keys()].filter(
        (id) => round === 0 || results.get(id)?.kind === 'in_flight',
      );
      onProgress?.({ phase: 'settling', aggregateType: type, done: 0, total: ids.length });
      for (let i = 0; i < ids.length; i += batchSize) {
        const part = ids.slice(i, i + batchSize);
        const docs = await docsById(ctx, type, part);
        const checked = await checkBatch(ctx, type, docs);
        const found = new Set(docs.map((d) => d._id));
        for (const id of part) {
          const r = checked.get(id);
          if (r) {
            if (r.kind === 'clean') results.delete(id);
            else results.set(id, r);
          } else if (!found.has(id) && results.get(id)?.kind !== 'drift') {
            // Gone from MongoDB meanwhile and only in flight before: the orphan pass decides.
            results.delete(id);
          }
        }
      }
    }
  }
}
