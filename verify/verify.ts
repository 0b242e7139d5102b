/**
 * `cqrs-sync verify`: compares the write model (MongoDB's aggregate documents) with the read model
 * (the sink's bookkeeping and the projections' rows) and says, per aggregate, whether and how they
 * differ. The expected rows are what the user's projections make of the aggregate's current state:
 * they run on a snapshot event inside a MySQL transaction that is always rolled back, and the rows
 * they wrote are compared column by column with the committed rows read before in the same
 * transaction. So a row edited by hand at the right version is found too.
 *
 * Both sides are read once, in key order, and merged: `batchSize` documents in `_id` order from one
 * MongoDB cursor, then MySQL's bookkeeping and owned rows in the same key range (after the previous
 * batch's last id, up to this one's). Keys in a range that no document of the batch has are rows
 * with no aggregate (orphans), found as the merge walks by, with no second pass. A range holds at
 * most a few batches' rows; one with more (many orphans) is walked in pages, so nothing holds a
 * whole table. A key column whose collation does not sort like MongoDB (`_bin` collations and
 * binary types do) cannot be merged by range: its table is read by id and scanned for orphans
 * after the merge. Aggregates whose events are still on their way (unrelayed outbox entries, a
 * version gap the sink waits on, or a version beyond the sink's while its partition has lag) are in
 * flight, not drift, and are checked again before the run ends.
 */
import { Partitioners, type Admin, type Kafka } from 'kafkajs';
import { createKafkaClient, kafkaClientOptions } from '../ops/kafka.js';
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
import { inKeyRange, quoteIdentifier, type KeyRange } from '../sink/sql.js';
import type { AggregateState } from '../sink/tables/aggregates.js';
import { sinkTables, type SinkTables } from '../sink/tables/index.js';
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
import { expectedWithoutMysql } from './expected.js';
import { recordRun } from './runs.js';
import { throttler } from './throttle.js';

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
  /** The key column sorts as MongoDB sorts `_id`, so the table is merged by key range. */
  ordered: boolean;
}

export type { KeyRange };

/** The topics' end offsets, fetched at most once a second (one admin round trip per batch was a
 * fifth of the run at 100k). */
interface EndOffsets {
  readonly at: number;
  /** Per partition: its end (high) and its first offset (low, where a sink that never read it starts). */
  readonly partitions: ReadonlyMap<number, { readonly high: number; readonly low: number }>;
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
  /** The sink's bookkeeping (`cqrs_sink_aggregates`) on the pool: verify reads it through its
   * table module, never with SQL of its own. */
  readonly aggregates: SinkTables['aggregates'];
  /** `cqrs_sink_aggregates.aggregate_id` sorts as MongoDB sorts `_id` (it is `utf8mb4_bin`). */
  readonly booksOrdered: boolean;
  readonly endOffsets: Map<string, EndOffsets>;
  readonly env: Record<string, string | undefined>;
  readonly schemaRegistryUrl: string;
  readonly logger: Logger | undefined;
  close(): Promise<void>;
}

/** A batch's key range is read whole while it holds at most this many rows per id of the batch
 * (several child rows an aggregate, a few orphans); beyond, it is read by id and walked in pages. */
const RANGE_ROWS_PER_ID = 10;

/** The merge may use the topics' end offsets of up to this long ago (partitionLag). */
const OFFSETS_MAX_AGE_MS = 1000;

const q = quoteIdentifier;

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
  const kafka = createKafkaClient({
    ...kafkaClientOptions(sink, 'cqrs-sync-verify'),
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
      for (const table of list) {
        table.pk = await primaryKey(store, table.table);
        table.ordered = await sortsLikeMongo(store, table.table, table.key);
      }
    }
    const aggregates = sinkTables(store.pool).aggregates;
    const idColumn = await aggregates.idColumn();
    const booksOrdered = idColumn ? collatesLikeMongo(idColumn.type, idColumn.collation) : false;
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
      aggregates,
      booksOrdered,
      endOffsets: new Map(),
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
        ordered: false,
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

/**
 * Whether a key column orders strings as MongoDB orders `_id` (by code point, case and accents
 * apart): a `_bin` collation or a binary type. Other collations (`_ci`) order `a` and `B` otherwise,
 * so a key range of MySQL would not hold the ids of a range of MongoDB.
 */
async function sortsLikeMongo(store: MysqlStore, table: string, column: string): Promise<boolean> {
  const [rows] = await store.pool.query(
    `SELECT DATA_TYPE AS t, COLLATION_NAME AS c FROM information_schema.COLUMNS
     WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = ?`,
    [table, column],
  );
  const r = (rows as { t: string; c: string | null }[])[0];
  return r ? collatesLikeMongo(r.t, r.c) : false;
}

/** The rule of `sortsLikeMongo`, for a column's type (`varbinary` or `varbinary(191)`) and
 * collation. */
function collatesLikeMongo(type: string, collation: string | null): boolean {
  return /^(var)?binary\b/i.test(type) || (collation !== null && /_bin$/i.test(collation));
}

/**
 * Unread records per partition of a topic after MySQL's offsets (where the sink stands). The end
 * offsets may be cached, but only from `freshAfter` on: a check must see the end offsets of after its
 * MongoDB read, or an event relayed in between counts as neither lag nor applied. The merge passes a
 * second ago (a behind aggregate it then calls drift is checked again in `settle`, which passes the
 * time of its own read), so the broker is asked at most once a second per topic.
 */
async function partitionLag(
  ctx: VerifyContext,
  topic: string,
  freshAfter: number,
): Promise<Map<number, number>> {
  const stored = await ctx.store.load(ctx.group, topic);
  let end = ctx.endOffsets.get(topic);
  if (!end || end.at <= freshAfter) {
    const at = Date.now();
    const partitions = new Map<number, { high: number; low: number }>();
    for (const p of await ctx.admin.fetchTopicOffsets(topic))
      partitions.set(p.partition, { high: Number(p.high), low: Number(p.low) });
    ctx.endOffsets.set(topic, (end = { at, partitions }));
  }
  const out = new Map<number, number>();
  for (const [partition, p] of end.partitions)
    out.set(partition, p.high - Number(stored.get(partition) ?? p.low));
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

type Query = (sql: string, params?: unknown[]) => Promise<unknown[]>;

/** How one owned table was read for a batch: its batch's key range (orphans included), or by id. */
type ReadMode = 'range' | 'ids';

/**
 * One batch's rows of each owned table, grouped by key. With a range, a table that sorts like
 * MongoDB is read by that range, unless it holds more than `cap` rows there (then by id, and the
 * range is walked for orphans in pages afterwards); `modes` says which, and a second read (after
 * the projections ran) passes the first one's modes.
 */
async function readOwned(
  query: Query,
  owned: readonly OwnedTable[],
  ids: readonly string[],
  range: KeyRange | undefined,
  cap: number,
  modes?: ReadonlyMap<string, ReadMode>,
): Promise<{ rows: Map<string, Map<string, Row[]>>; modes: Map<string, ReadMode> }> {
  const rows = new Map<string, Map<string, Row[]>>();
  const used = new Map<string, ReadMode>();
  for (const t of owned) {
    let got: Row[] | undefined;
    const want = modes?.get(t.table) ?? (range && t.ordered ? 'range' : 'ids');
    if (range && want === 'range') {
      const r = inKeyRange(t.key, range);
      // Bounded by the first read: its rows plus what the projections wrote for the batch.
      const limit = modes ? '' : ` LIMIT ${cap + 1}`;
      got = (await query(
        `SELECT * FROM ${q(t.table)} WHERE ${r.where}${limit}`,
        r.params,
      )) as Row[];
      if (!modes && got.length > cap) got = undefined;
    }
    if (got) used.set(t.table, 'range');
    else {
      used.set(t.table, 'ids');
      got =
        ids.length === 0
          ? []
          : ((await query(`SELECT * FROM ${q(t.table)} WHERE ${q(t.key)} IN (?)`, [
              [...ids],
            ])) as Row[]);
    }
    rows.set(t.table, groupByKey(got, t.key));
  }
  return { rows, modes: used };
}

/** Keys of a batch's key range in MySQL that no document of the batch has: orphans, if MongoDB
 * has no such aggregate either (one created since the cursor passed is not). */
export interface OrphanCandidates {
  /** Key -> the tables it is in (`cqrs_sink_aggregates` for a live bookkeeping row). */
  readonly keys: Map<string, string[]>;
  /** Tables (and the bookkeeping) whose range held too many rows to read: walk it in pages. */
  readonly overflow: string[];
}

/**
 * Compares one batch of documents of `type` with MySQL. Reads MongoDB first, then the partitions'
 * lag, then MySQL: an event relayed before the MongoDB read is either counted in the lag or already
 * in the rows read after it, so a behind aggregate with no lag is real drift. `freshAfter`: the
 * topics' end offsets may be those fetched after this time (partitionLag).
 *
 * With `range` (the merge), MySQL is read by the batch's key range rather than by id, and the keys
 * found there that the batch has no document for come back as orphan candidates.
 */
export async function checkBatch(
  ctx: VerifyContext,
  type: string,
  docs: readonly Doc[],
  freshAfter: number,
  range?: KeyRange,
  inMysql = false,
): Promise<{ results: Map<string, Result>; orphans: OrphanCandidates }> {
  const results = new Map<string, Result>();
  const orphans: OrphanCandidates = { keys: new Map(), overflow: [] };
  if (docs.length === 0) return { results, orphans };
  const topic = ctx.catalog.aggregate(type).topic;
  // Deciding (settle): the lag is read between the MongoDB and the MySQL reads. In the merge it is
  // read only if an aggregate asks (most batches are clean), after MySQL: a verdict it gives may
  // then be too harsh (an event applied after the rows were read), but the merge's verdicts are
  // provisional, as `settle` checks every aggregate that was not clean again.
  const lag = range ? undefined : await partitionLag(ctx, topic, freshAfter);
  const owned = ctx.owned.get(type) ?? [];
  const ids = docs.map((d) => d._id);
  const cap = Math.max(ids.length * RANGE_ROWS_PER_ID, 1000);
  const handlers = ctx.handlers;
  const read = await ctx.store.rolledBack(async (tx, query, tables) => {
    // Locked, so a sink transaction of these aggregates cannot commit between the reads below (it
    // locks the same rows first); released by the rollback.
    let bookRows: AggregateState[] | undefined;
    if (range && ctx.booksOrdered) {
      bookRows = await tables.aggregates.lockRange(type, range, cap + 1);
      if (bookRows.length > cap) {
        orphans.overflow.push(SINK_TABLES.aggregates);
        bookRows = undefined;
      }
    }
    const keys = ids.map((aggregateId) => ({ aggregateType: type, aggregateId }));
    bookRows ??= [...(await tables.aggregates.lock(keys)).values()];
    const books = new Map<string, Book>(
      bookRows.map((r) => [
        r.aggregateId,
        { version: r.version, deleted: r.deleted, status: r.status },
      ]),
    );
    const committed = await readOwned(query, owned, ids, range, cap);
    // The projections make the rows again from the current state (a repair event does the same):
    // worked out here when they only upsert (a deleted aggregate's expected rows are not needed),
    // else run in the transaction and read back.
    const live = docs.filter((d) => !(d.deleted || d.state === null));
    const worked = inMysql
      ? undefined
      : expectedWithoutMysql(
          handlers,
          live.map((d) => snapshotOf(type, d)),
          owned,
          committed.rows,
        );
    if (worked) {
      return {
        books,
        committed,
        expected: { rows: worked, modes: committed.modes },
        quick: true,
      };
    }
    await tx.execute(
      planProjections(
        handlers,
        docs.map((d) => snapshotOf(type, d)),
      ),
    );
    const expected = await readOwned(query, owned, ids, range, cap, committed.modes);
    return { books, committed, expected, quick: false };
  });
  const { books, committed, expected, quick } = read;
  if (range) {
    const mine = new Set(ids);
    const add = (key: string, table: string): void => {
      if (mine.has(key)) return;
      const tables = orphans.keys.get(key);
      if (tables) tables.push(table);
      else orphans.keys.set(key, [table]);
    };
    for (const t of owned) {
      const mode = committed.modes.get(t.table);
      if (mode === 'range')
        for (const key of committed.rows.get(t.table)?.keys() ?? []) add(key, t.table);
      else if (t.ordered) orphans.overflow.push(t.table);
    }
    if (ctx.booksOrdered && !orphans.overflow.includes(SINK_TABLES.aggregates)) {
      for (const [key, b] of books) if (!b.deleted) add(key, SINK_TABLES.aggregates);
    }
  }
  const verdict = (doc: Doc, lagOf: (id: string) => number): Result =>
    classify(type, doc, books.get(doc._id), owned, committed.rows, expected.rows, lagOf);
  const asked: Doc[] = [];
  for (const doc of docs) {
    const ask = { lag: false };
    const r = verdict(doc, (id) => {
      if (!lag) {
        ask.lag = true;
        return 0;
      }
      const n = lag.size;
      return n === 0 ? 0 : (lag.get(partitionOf(id, n, topic)) ?? 0);
    });
    if (ask.lag) asked.push(doc);
    else results.set(doc._id, r);
  }
  // Worked out without MySQL and not clean (an aggregate that asks for the lag is not): MySQL
  // decides, as it may store a value otherwise than the projection gave it.
  if (quick && (asked.length > 0 || [...results.values()].some((r) => r.kind !== 'clean')))
    return checkBatch(ctx, type, docs, freshAfter, range, true);
  if (asked.length > 0) {
    const known = await partitionLag(ctx, topic, freshAfter);
    const n = known.size;
    for (const doc of asked)
      results.set(
        doc._id,
        verdict(doc, (id) => (n === 0 ? 0 : (known.get(partitionOf(id, n, topic)) ?? 0))),
      );
  }
  const recheck: string[] = [];
  for (const [id, r] of results) {
    if (r.kind === 'drift' && (r.drift.class === 'ahead' || r.drift.class === 'content'))
      recheck.push(id);
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
  return { results, orphans };
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

/** Orphans of one aggregate type, by key, as they are found. */
class Orphans {
  readonly found = new Map<string, Drift>();
  private readonly order: string[];

  constructor(
    private readonly ctx: VerifyContext,
    private readonly type: string,
  ) {
    this.order = [...(ctx.owned.get(type) ?? []).map((t) => t.table), SINK_TABLES.aggregates];
  }

  /** Keys seen in MySQL with the tables they are in: those MongoDB has no aggregate for are
   * orphans (asked again, for one created since the cursor passed its key). */
  async consider(keys: ReadonlyMap<string, readonly string[]>): Promise<void> {
    if (keys.size === 0) return;
    const ids = [...keys.keys()];
    const exist = new Set((await docsById(this.ctx, this.type, ids)).map((d) => d._id));
    for (const k of ids) {
      if (exist.has(k)) continue;
      const prior = this.found.get(k);
      const tables = [...new Set([...(prior?.tables ?? []), ...(keys.get(k) ?? [])])].sort(
        (a, b) => this.order.indexOf(a) - this.order.indexOf(b),
      );
      this.found.set(k, {
        aggregateType: this.type,
        aggregateId: k,
        class: 'orphan',
        mongoVersion: null,
        mysqlVersion: null,
        tables,
        columns: [],
        detail: `no ${this.type} ${k} in MongoDB`,
      });
    }
  }

  /**
   * Walks `tables` (owned tables, or `cqrs_sink_aggregates` for its live rows) over a key range in
   * pages of keys, skipping `skip` (the batch's own ids): a range too full to read at once, the
   * range after the last document, or a table that cannot be merged by range (then the whole).
   */
  async scan(
    tables: readonly string[],
    range: KeyRange,
    skip: ReadonlySet<string>,
    pageSize: number,
  ): Promise<void> {
    for (const table of tables) {
      const t = (this.ctx.owned.get(this.type) ?? []).find((o) => o.table === table);
      const books = table === SINK_TABLES.aggregates;
      const key = t ? t.key : 'aggregate_id';
      let after = range.after;
      for (;;) {
        const page = { after, upTo: range.upTo };
        let keys: string[];
        if (books) keys = await this.ctx.aggregates.liveIds(this.type, page, pageSize);
        else {
          const r = inKeyRange(key, page);
          const [rows] = await this.ctx.store.pool.query(
            `SELECT DISTINCT ${q(key)} AS k FROM ${q(table)} WHERE ${r.where} ORDER BY ${q(key)} LIMIT ${pageSize}`,
            r.params,
          );
          keys = (rows as { k: unknown }[]).map((x) => String(x.k));
        }
        if (keys.length === 0) break;
        after = keys[keys.length - 1] ?? after;
        await this.consider(new Map(keys.filter((k) => !skip.has(k)).map((k) => [k, [table]])));
        if (keys.length < pageSize) break;
      }
    }
  }

  /** The orphans found, with the sink's version where it has a bookkeeping row. */
  async drift(pageSize: number): Promise<Map<string, Drift>> {
    const ids = [...this.found.keys()];
    for (let i = 0; i < ids.length; i += pageSize) {
      const versions = await this.ctx.aggregates.versions(this.type, ids.slice(i, i + pageSize));
      for (const [id, version] of versions) {
        const d = this.found.get(id);
        if (d) this.found.set(id, { ...d, mysqlVersion: version });
      }
    }
    return this.found;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

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
      const readBatch = async (): Promise<Doc[]> => {
        const docs: Doc[] = [];
        while (docs.length < batchSize) {
          const d = await cursor.next();
          if (!d) break;
          docs.push(d);
        }
        return docs;
      };
      const orphans = new Orphans(ctx, type);
      const owned = ctx.owned.get(type) ?? [];
      // The merge: each batch's key range runs from the previous batch's last id to its own.
      let after: string | null = null;
      try {
        // The next batch is read from MongoDB while this one is checked in MySQL.
        let next = readBatch();
        for (;;) {
          const docs = await next;
          if (docs.length === 0) break;
          next = docs.length < batchSize ? Promise.resolve([]) : readBatch();
          // Awaited next round; a rejection meanwhile (this batch failed first) is not unhandled.
          next.catch(() => undefined);
          const upTo = docs[docs.length - 1]?._id ?? null;
          const range = { after, upTo };
          const checked = await checkBatch(ctx, type, docs, Date.now() - OFFSETS_MAX_AGE_MS, range);
          for (const [id, r] of checked.results) if (r.kind !== 'clean') mine.set(id, r);
          await orphans.consider(checked.orphans.keys);
          if (checked.orphans.overflow.length > 0)
            await orphans.scan(
              checked.orphans.overflow,
              range,
              new Set(docs.map((d) => d._id)),
              batchSize,
            );
          after = upTo;
          report.checked += docs.length;
          o.onProgress?.({
            phase: 'checking',
            aggregateType: type,
            done: report.checked,
            total: Math.max(total, report.checked),
          });
          await throttle(docs.length);
        }
      } finally {
        await cursor.close().catch(() => undefined);
      }
      // What the merge could not see: keys after the last document, and the tables (if any) whose
      // key column does not sort like MongoDB, whole.
      o.onProgress?.({ phase: 'orphans', aggregateType: type, done: 0, total: 0 });
      const merged = [
        ...owned.filter((t) => t.ordered).map((t) => t.table),
        ...(ctx.booksOrdered ? [SINK_TABLES.aggregates] : []),
      ];
      const unmerged = [
        ...owned.filter((t) => !t.ordered).map((t) => t.table),
        ...(ctx.booksOrdered ? [] : [SINK_TABLES.aggregates]),
      ];
      await orphans.scan(merged, { after, upTo: null }, new Set(), batchSize);
      await orphans.scan(unmerged, { after: null, upTo: null }, new Set(), batchSize);
      for (const [id, d] of await orphans.drift(batchSize)) {
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
        // The end offsets of after this read, never cached ones: this check decides.
        const { results: checked } = await checkBatch(ctx, type, docs, Date.now());
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
