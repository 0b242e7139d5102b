/**
 * `npm run bench:verify [-- <n>]`: `verify` over N (default 100 000) aggregates of one type that
 * agree on both sides, against the ceiling measured in the same run: a bare read of both sides in
 * key order (MongoDB `find` sorted by `_id` with a cursor; MySQL keyset pages of the bookkeeping
 * and projection rows, of verify's batch size) merged by id with no comparison work.
 *
 * The data is seeded directly, no pipeline: aggregate documents as the write store writes them
 * (outbox empty, relayedVersion = version) and the MySQL side as the sink leaves it (bookkeeping
 * rows and one `tableProjection` row per aggregate). Peak RSS is sampled during each phase: verify
 * streams in batches, so it should not grow with N.
 *
 * Last line: `bench-verify: aggregates_per_s=<n> raw_per_s=<n> ratio=<verify/raw>`.
 */
import { MongoClient } from 'mongodb';
import mysql from 'mysql2/promise';
import { startStack } from '../infra/local/stack.js';
import { createKafkaClient } from '../ops/kafka.js';
import { verify } from '../verify/verify.js';
import { buildCatalog, defineAggregate } from '../schemas/catalog.js';
import type { AggregateDocument } from '../schemas/outbox-entry.js';
import { SINK_MIGRATIONS, SINK_TABLES, runMigrations } from '../sink/migrations.js';
import type { AggregateRecord } from '../sink/ports.js';
import { tableProjection } from '../sink/projection.js';
import { sinkTables } from '../sink/tables/index.js';
import { createTopics, withDatabase } from '../sink/testing.js';
import { mongoKind } from '../write/mongo-server.js';
import { aggregateCollectionName } from '../write/outbox.js';

const N = Number(process.argv[2] ?? 100_000);
if (!Number.isSafeInteger(N) || N < 1) throw new Error('usage: bench:verify [-- <n>] (n >= 1)');
const BATCH = 500; // verify's default batch size
const SEED_CHUNK = 2000;
const TYPE = 'BenchItem';
const TABLE = 'bench_items';
const say = (line: string): void => void process.stdout.write(`${line}\n`);

const Item = defineAggregate({
  type: TYPE,
  state: {
    fields: [
      { name: 'id', type: 'string' },
      { name: 'name', type: 'string' },
      { name: 'email', type: 'string' },
    ],
  },
  events: {
    BenchItemCreated: {
      fields: [
        { name: 'name', type: 'string' },
        { name: 'email', type: 'string' },
      ],
    },
  },
});
const projection = tableProjection({
  aggregateType: TYPE,
  table: TABLE,
  columns: { name: 'state.name', email: 'state.email' },
});

// Zero-padded, so MongoDB's `_id` order and MySQL's binary key order agree.
const idOf = (i: number): string => `i${String(i).padStart(8, '0')}`;
const versionOf = (i: number): number => 1 + (i % 5);

/** Highest RSS seen while `fn` ran (sampled every 20 ms), in MiB. */
async function peakRss<T>(
  fn: () => Promise<T>,
): Promise<{ value: T; ms: number; peakMiB: number }> {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 20);
  const t0 = performance.now();
  try {
    const value = await fn();
    const ms = performance.now() - t0;
    peak = Math.max(peak, process.memoryUsage().rss);
    return { value, ms, peakMiB: Math.round(peak / 2 ** 20) };
  } finally {
    clearInterval(timer);
  }
}

const stack = await startStack({ only: ['kafka', 'mysql', 'mongodb'], log: say });
const tag = `benchverify${Date.now().toString(36)}`;
const mongo = new MongoClient(stack.env.MONGODB_URI ?? '');
let mysqlAdmin: mysql.Connection | undefined;
try {
  for (const line of stack.lines()) say(line);
  await mongo.connect();
  const mdb = mongo.db(tag);
  say(
    (await mongoKind(mdb)) === 'stand-in'
      ? "NOTE: MongoDB is the mongo-java-server stand-in: the figures are the stand-in's, not MongoDB's."
      : 'MongoDB: a real server (buildInfo has a gitVersion).',
  );
  const catalog = buildCatalog([Item], { topicPrefix: `${tag}.` });
  const kafka = createKafkaClient({
    clientId: 'bench',
    brokers: (stack.env.KAFKA_BROKERS ?? '').split(','),
  });
  await createTopics(kafka, catalog.topics(), 3);

  mysqlAdmin = await mysql.createConnection(stack.env.MYSQL_URL ?? '');
  await mysqlAdmin.query(`CREATE DATABASE ${tag}`);
  const mysqlUrl = withDatabase(stack.env.MYSQL_URL ?? '', tag);
  const db = await mysql.createConnection(mysqlUrl);
  await runMigrations(db, [
    SINK_MIGRATIONS,
    {
      scope: 'bench',
      migrations: [
        {
          version: 1,
          name: TABLE,
          sql: [
            `CREATE TABLE ${TABLE} (id VARCHAR(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL, email VARCHAR(255) NOT NULL, version BIGINT NOT NULL) ENGINE=InnoDB`,
          ],
        },
      ],
    },
  ]);

  // Seed both sides as the write store and the sink would leave them.
  const collection = mdb.collection<AggregateDocument>(aggregateCollectionName(TYPE));
  const seed0 = performance.now();
  for (let i = 0; i < N; i += SEED_CHUNK) {
    const docs: AggregateDocument[] = [];
    const books: AggregateRecord[] = [];
    const rows: unknown[][] = [];
    for (let j = i; j < Math.min(N, i + SEED_CHUNK); j++) {
      const id = idOf(j);
      const version = versionOf(j);
      const state = { id, name: `Item ${j}`, email: `i${j}@example.com` };
      const now = new Date();
      docs.push({
        _id: id,
        aggregateType: TYPE,
        version,
        state,
        deleted: false,
        updatedAt: now,
        outbox: [],
        commands: [],
        relayedVersion: version,
        relayedAt: now,
        relayFence: 1,
      });
      books.push({
        aggregateType: TYPE,
        aggregateId: id,
        version,
        deleted: false,
        status: 'ok',
        statusSince: now,
        reason: null,
      });
      rows.push([id, state.name, state.email, version]);
    }
    await collection.insertMany(docs, { ordered: false });
    await sinkTables(db).aggregates.save(books);
    await db.query(`INSERT INTO ${TABLE} (id, name, email, version) VALUES ?`, [rows]);
  }
  say(
    `seeded ${N} ${TYPE} aggregates on both sides in ${Math.round(performance.now() - seed0)} ms`,
  );

  // The ceiling: both sides read in key order and merged by id, nothing compared.
  const raw = await peakRss(async () => {
    const cursor = collection
      .find({}, { projection: { _id: 1, version: 1, deleted: 1, state: 1 } })
      .sort({ _id: 1 })
      .batchSize(BATCH);
    let matched = 0;
    let bookAfter = '';
    let rowAfter = '';
    let page: { id: string; version: number }[] = [];
    const flush = async (): Promise<void> => {
      if (page.length === 0) return;
      const [books] = await db.query(
        `SELECT aggregate_id, version, deleted, status FROM ${SINK_TABLES.aggregates} WHERE aggregate_type = ? AND aggregate_id > ? ORDER BY aggregate_id LIMIT ${BATCH}`,
        [TYPE, bookAfter],
      );
      const [rows] = await db.query(
        `SELECT * FROM ${TABLE} WHERE id > ? ORDER BY id LIMIT ${BATCH}`,
        [rowAfter],
      );
      const b = books as { aggregate_id: string }[];
      const r = rows as { id: string }[];
      bookAfter = b[b.length - 1]?.aggregate_id ?? bookAfter;
      rowAfter = r[r.length - 1]?.id ?? rowAfter;
      // The merge: walk the three in step (all in the same key order).
      let bi = 0;
      let ri = 0;
      for (const d of page) {
        while (bi < b.length && (b[bi]?.aggregate_id ?? '') < d.id) bi++;
        while (ri < r.length && (r[ri]?.id ?? '') < d.id) ri++;
        if (b[bi]?.aggregate_id === d.id && r[ri]?.id === d.id) matched++;
      }
      page = [];
    };
    for await (const d of cursor) {
      page.push({ id: d._id, version: d.version });
      if (page.length === BATCH) await flush();
    }
    await flush();
    return matched;
  });
  if (raw.value !== N) throw new Error(`raw read matched ${raw.value} of ${N} aggregates`);
  const rawPerS = N / (raw.ms / 1000);
  say(
    `raw: ${N} aggregates read and merged in ${Math.round(raw.ms)} ms, peak RSS ${raw.peakMiB} MiB`,
  );

  const env = {
    MONGODB_URI: stack.env.MONGODB_URI,
    RELAY_OUTBOX_DATABASE: tag,
    KAFKA_BROKERS: stack.env.KAFKA_BROKERS,
    // Only `--repair` talks to the registry; verify needs none here.
    SCHEMA_REGISTRY_URL: 'http://127.0.0.1:9',
    MYSQL_URL: mysqlUrl,
    SINK_GROUP_ID: `${tag}-sink`,
  };
  const phases = new Map<string, number>();
  const v0 = performance.now();
  const v = await peakRss(() =>
    verify({
      catalog,
      projections: [projection],
      env,
      batchSize: BATCH,
      record: false,
      // Where verify's time goes: milliseconds from the start to each phase's first report.
      onProgress: (p) => {
        if (!phases.has(p.phase)) phases.set(p.phase, Math.round(performance.now() - v0));
      },
    }),
  );
  const report = v.value;
  if (!report.clean || report.totals.checked !== N || report.totals.inFlight !== 0) {
    say(JSON.stringify(report.totals));
    say(JSON.stringify(report.types.map((t) => t.drift.slice(0, 10))));
    throw new Error(`verify did not report ${N} clean aggregates`);
  }
  const verifyPerS = N / (v.ms / 1000);
  say(`verify phases (ms from start): ${[...phases].map(([k, ms]) => `${k} ${ms}`).join(', ')}`);
  say(
    `verify: ${N} aggregates checked, clean, in ${Math.round(v.ms)} ms, peak RSS ${v.peakMiB} MiB`,
  );

  await db.end();
  await mysqlAdmin.query(`DROP DATABASE ${tag}`);
  await mdb.dropDatabase();
  say(
    `bench-verify: aggregates_per_s=${Math.round(verifyPerS)} raw_per_s=${Math.round(rawPerS)} ratio=${(verifyPerS / rawPerS).toFixed(2)}`,
  );
} catch (e) {
  console.error(e);
  process.exitCode = 1;
} finally {
  await mysqlAdmin?.end().catch(() => undefined);
  await mongo.close();
  await stack.stop();
}
