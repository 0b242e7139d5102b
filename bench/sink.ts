/**
 * `npm run bench:sink [-- <events> [<many-events> <many-aggregates>]]`: two workloads, each applied
 * by the sink and measured in the same run against
 * (a) the raw ceiling: a bare multi-row upsert of the same final rows into MariaDB (one connection,
 *     1 000 rows a statement), the physical floor of MySQL;
 * (b) the consume ceiling: the same records fetched with kafkajs and decoded (the sink's decoder),
 *     then the bare upsert of each batch's final rows, with nothing else (no dedupe, no version
 *     gate, no offsets in MySQL): what any kafkajs sink pays before its own guarantees;
 * (g) the guarded ceiling: the consume ceiling plus, in one transaction per batch on the partition's
 *     connection, the bare statements of the sink's guarantees on tables shaped like its own: every
 *     event id inserted (the dedupe), each aggregate's version upserted and gated (`GREATEST`), the
 *     rows' upsert gated by version, the partition's offset: what any sink that keeps these
 *     guarantees in MySQL pays at least (printed as `bench-sink-guarded:`, before the last line),
 *     and the same without the event ids (`undeduped`), which is what the dedupe alone costs;
 * (c) the peer: Debezium's JDBC sink connector on Kafka Connect standalone consuming equivalent
 *     records (JSON with schemas) into the same MariaDB (upsert mode, its defaults otherwise).
 *
 * Workloads: `one-event` is N customers registered once each (default 100 000; N final rows, nothing
 * can be coalesced); `many-events` is 100 000 events over 5 000 customers (a registration, then
 * renames; 5 000 final rows). Every figure is the workload's events per second, measured from the
 * first row to the last (consumer-group joins and JVM start-up are excluded for all).
 *
 * Lines: `bench-sink-many: events=<n> aggregates=<n> sink_eps=… vs_debezium=<r>`, then last
 * `bench-sink: sink_eps=<n> raw_eps=<n> consume_eps=<n> debezium_eps=<n> vs_raw=<r> vs_consume=<r> vs_debezium=<r>`
 * for `one-event`.
 */
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel } from 'kafkajs';
import mysql from 'mysql2/promise';
import pino from 'pino';
import { buildCatalog, defineAggregate, type Catalog } from '../schemas/catalog.js';
import { EventCodec } from '../schemas/codec.js';
import { ConfluentRegistry } from '../schemas/registry.js';
import { startStack } from '../infra/local/stack.js';
import { cpuMeter } from './cpu.js';
import { loadSinkConfig } from '../sink/config.js';
import { decodeRecord, rawRecord } from '../sink/decode.js';
import { SINK_MIGRATIONS, runMigrations } from '../sink/migrations.js';
import { tableProjection } from '../sink/projection.js';
import { startSink } from '../sink/sink.js';
import { createTopics, eventRecord, produce, withDatabase } from '../sink/testing.js';
import { nextEventId } from '../write/outbox.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const N = Number(process.argv[2] ?? 100_000);
const MANY_EVENTS = Number(process.argv[3] ?? 100_000);
const MANY_AGGREGATES = Number(process.argv[4] ?? 5_000);
const PARTITIONS = 3;
const log = (line: string): void => void process.stderr.write(`${line}\n`);

const Customer = defineAggregate({
  type: 'BenchCustomer',
  state: {
    fields: [
      { name: 'id', type: 'string' },
      { name: 'name', type: 'string' },
      { name: 'email', type: 'string' },
    ],
  },
  events: {
    BenchCustomerRegistered: {
      fields: [
        { name: 'name', type: 'string' },
        { name: 'email', type: 'string' },
      ],
    },
    BenchCustomerRenamed: { fields: [{ name: 'name', type: 'string' }] },
  },
});

interface Workload {
  readonly name: 'one-event' | 'many-events';
  readonly events: number;
  readonly aggregates: number;
}

/** One customer's row after an event. */
interface Row {
  readonly id: string;
  readonly name: string;
  readonly email: string;
  readonly version: number;
}

/** Event j: customer j mod aggregates, in rounds, so each customer's versions come in order. */
function eventAt(w: Workload, j: number): Row {
  const a = j % w.aggregates;
  const version = Math.floor(j / w.aggregates) + 1;
  return { id: `c${a}`, name: `Customer ${a} v${version}`, email: `c${a}@example.com`, version };
}

function finalRows(w: Workload): Row[] {
  const rows = new Map<string, Row>();
  for (let j = 0; j < w.events; j++) {
    const r = eventAt(w, j);
    rows.set(r.id, r);
  }
  return [...rows.values()];
}

const TABLE = (name: string) =>
  `CREATE TABLE ${name} (id VARCHAR(64) NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL, email VARCHAR(255) NOT NULL, version BIGINT NOT NULL) ENGINE=InnoDB`;

const UPSERT = (table: string) =>
  `INSERT INTO ${table} (id, name, email, version) VALUES ? ON DUPLICATE KEY UPDATE name = VALUES(name), email = VALUES(email), version = VALUES(version)`;

async function poll(
  what: string,
  fn: () => Promise<number>,
  target: number,
  timeoutMs = 900_000,
): Promise<{ first: number; last: number }> {
  const deadline = Date.now() + timeoutMs;
  let first = 0;
  for (;;) {
    const n = await fn();
    if (n > 0 && first === 0) first = Date.now();
    if (n >= target) return { first, last: Date.now() };
    if (Date.now() > deadline) throw new Error(`${what}: ${n}/${target} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Events per second; undefined when not measured, or too few events to time (all in one poll). */
interface Figures {
  readonly sink: number | undefined;
  readonly raw: number | undefined;
  readonly consume: number | undefined;
  readonly guarded: number | undefined;
  readonly undeduped: number | undefined;
  readonly debezium: number | undefined;
}

interface Servers {
  readonly brokers: string[];
  readonly registryUrl: string;
  readonly mysqlUrl: string;
  readonly cpu: () => string;
}

async function runWorkload(w: Workload, servers: Servers, run: string): Promise<Figures> {
  const { brokers, cpu } = servers;
  const tag = `${run}_${w.name.replace('-', '_')}`;
  const catalog = buildCatalog([Customer], { topicPrefix: `${tag}.` });
  const codec = new EventCodec(catalog, new ConfluentRegistry(servers.registryUrl));
  await codec.registerAll();
  // Bare kafkajs, not ops/kafka.ts: the read floor and consume ceiling are plain kafkajs consumers.
  const kafka = new Kafka({ clientId: 'bench', brokers, logLevel: logLevel.NOTHING });
  const jsonTopic = `${tag}.json`;
  await createTopics(kafka, [...catalog.topics(), jsonTopic], PARTITIONS);
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();

  log(`[${w.name}] producing ${w.events} events over ${w.aggregates} customers…`);
  for (let i = 0; i < w.events; i += 5000) {
    const specs = [];
    const json = [];
    for (let j = i; j < Math.min(w.events, i + 5000); j++) {
      const r = eventAt(w, j);
      const state = { id: r.id, name: r.name, email: r.email };
      specs.push(
        eventRecord(codec, catalog, {
          // The ids the write side gives its events (UUIDv7, time-ordered), as the relay publishes them.
          eventId: nextEventId(),
          aggregateId: r.id,
          version: r.version,
          ...(r.version === 1
            ? { eventType: 'BenchCustomerRegistered', payload: { name: r.name, email: r.email } }
            : { eventType: 'BenchCustomerRenamed', payload: { name: r.name } }),
          state,
        }),
      );
      json.push({ key: JSON.stringify(keyRecord(r.id)), value: JSON.stringify(valueRecord(r)) });
    }
    await produce(producer, specs);
    await producer.send({ topic: jsonTopic, acks: -1, messages: json });
  }
  await producer.disconnect();
  const rows = finalRows(w);
  const versionSum = rows.reduce((n, r) => n + r.version, 0);

  const admin = await mysql.createConnection(servers.mysqlUrl);
  await admin.query(`CREATE DATABASE ${tag}`);
  await admin.end();
  const dbUrl = withDatabase(servers.mysqlUrl, tag);
  const db = await mysql.createConnection(dbUrl);
  try {
    await runMigrations(db, [
      SINK_MIGRATIONS,
      {
        scope: 'bench',
        migrations: [
          {
            version: 1,
            name: 'customers',
            sql: [
              TABLE('customers'),
              TABLE('customers_raw'),
              TABLE('customers_consume'),
              ...['guarded', 'undeduped'].flatMap((g) => [
                TABLE(`customers_${g}`),
                `CREATE TABLE ${g}_events LIKE cqrs_sink_events`,
                `CREATE TABLE ${g}_aggregates LIKE cqrs_sink_aggregates`,
                `CREATE TABLE ${g}_offsets LIKE cqrs_sink_offsets`,
              ]),
            ],
          },
        ],
      },
    ]);

    // The floor under everything: only reading and decoding the same records (no MySQL).
    cpu();
    const reader = await readFloor(kafka, catalog, codec, `${tag}-read`, w.events);
    log(`[${w.name}] read floor: fetched and decoded in ${reader} ms (${cpu()})`);

    // the sink
    cpu();
    const config = loadSinkConfig({
      KAFKA_BROKERS: brokers.join(','),
      SCHEMA_REGISTRY_URL: servers.registryUrl,
      MYSQL_URL: dbUrl,
      SINK_GROUP_ID: `${tag}-sink`,
      SINK_DLT_TOPIC: `${tag}.dlt`,
      SINK_BATCH_SIZE: '5000',
      SINK_PARTITIONS_CONCURRENTLY: String(PARTITIONS),
      LOG_LEVEL: 'warn',
    });
    const sink = await startSink({
      catalog,
      projections: [
        tableProjection({
          aggregateType: 'BenchCustomer',
          table: 'customers',
          columns: { name: 'state.name', email: 'state.email' },
        }),
      ],
      config,
      logger: pino({ level: 'warn' }),
    });
    const s = await poll('sink', () => Promise.resolve(sink.counts.applied), w.events);
    await sink.stop();
    log(`[${w.name}] sink: ${w.events} events in ${s.last - s.first} ms (${cpu()})`);
    await checkRows(db, 'customers', rows.length, versionSum);

    // (a) the raw ceiling: the final rows, bare multi-row upserts
    cpu();
    const t0 = Date.now();
    for (let i = 0; i < rows.length; i += 1000) {
      const chunk = rows.slice(i, i + 1000).map((r) => [r.id, r.name, r.email, r.version]);
      await db.query(UPSERT('customers_raw'), [chunk]);
    }
    const rawMs = Date.now() - t0;
    log(`[${w.name}] raw: ${rows.length} final rows in ${rawMs} ms (${cpu()})`);

    // (b) the consume ceiling
    cpu();
    const consumeMs = await consumeCeiling(kafka, catalog, codec, `${tag}-consume`, dbUrl, w);
    log(`[${w.name}] consume: ${w.events} events in ${consumeMs} ms (${cpu()})`);
    await checkRows(db, 'customers_consume', rows.length, versionSum);

    // (g) the guarded ceiling
    cpu();
    const guardedMs = await guardedCeiling(kafka, catalog, codec, tag, dbUrl, w, 'guarded');
    log(`[${w.name}] guarded: ${w.events} events in ${guardedMs} ms (${cpu()})`);
    await checkRows(db, 'customers_guarded', rows.length, versionSum);
    cpu();
    const undedupedMs = await guardedCeiling(kafka, catalog, codec, tag, dbUrl, w, 'undeduped');
    log(
      `[${w.name}] guarded without the event ids: ${w.events} events in ${undedupedMs} ms (${cpu()})`,
    );
    await checkRows(db, 'customers_undeduped', rows.length, versionSum);

    // (c) Debezium's JDBC sink on Kafka Connect standalone
    let dbzMs: number | undefined;
    try {
      dbzMs = await debezium(brokers, dbUrl, jsonTopic, db, versionSum);
      log(`[${w.name}] debezium: ${w.events} events in ${dbzMs} ms`);
    } catch (e) {
      log(`[${w.name}] debezium: not measured: ${(e as Error).message}`);
    }
    await db.query(`DROP DATABASE ${tag}`);
    const eps = (ms: number): number | undefined => (ms > 0 ? w.events / (ms / 1000) : undefined);
    return {
      sink: eps(s.last - s.first),
      raw: eps(rawMs),
      consume: eps(consumeMs),
      guarded: eps(guardedMs),
      undeduped: eps(undedupedMs),
      debezium: dbzMs === undefined ? undefined : eps(dbzMs),
    };
  } finally {
    await db.end();
  }
}

/** The final rows are all there (a benchmark of a sink that lost rows would mean nothing). */
async function checkRows(
  db: mysql.Connection,
  table: string,
  count: number,
  versionSum: number,
): Promise<void> {
  const [res] = await db.query(`SELECT COUNT(*) AS n, SUM(version) AS v FROM ${table}`);
  const row = (res as { n: number | string; v: number | string | null }[])[0];
  if (Number(row?.n) !== count || Number(row?.v) !== versionSum) {
    throw new Error(
      `${table}: ${row?.n} rows, version sum ${row?.v}; expected ${count} and ${versionSum}`,
    );
  }
}

async function main(): Promise<void> {
  const stack = await startStack({ only: ['kafka', 'schema-registry', 'mysql'], log });
  const cpu = cpuMeter({ MariaDB: () => stack.get('mysql')?.pids() ?? [] });
  try {
    const env = stack.env;
    const servers: Servers = {
      brokers: (env.KAFKA_BROKERS ?? '').split(','),
      registryUrl: env.SCHEMA_REGISTRY_URL ?? '',
      mysqlUrl: env.MYSQL_URL ?? '',
      cpu,
    };
    const run = `bench${Date.now().toString(36)}`;
    const many = await runWorkload(
      { name: 'many-events', events: MANY_EVENTS, aggregates: MANY_AGGREGATES },
      servers,
      run,
    );
    const one = await runWorkload({ name: 'one-event', events: N, aggregates: N }, servers, run);
    const r = (x: number | undefined): string => (x === undefined ? 'n/a' : String(Math.round(x)));
    const ratio = (a: number | undefined, b: number | undefined): string =>
      a === undefined || b === undefined ? 'n/a' : (a / b).toFixed(2);
    const line = (f: Figures): string =>
      `sink_eps=${r(f.sink)} raw_eps=${r(f.raw)} consume_eps=${r(f.consume)} debezium_eps=${r(f.debezium)} vs_raw=${ratio(f.sink, f.raw)} vs_consume=${ratio(f.sink, f.consume)} vs_debezium=${ratio(f.sink, f.debezium)}`;
    console.log(
      `bench-sink-many: events=${MANY_EVENTS} aggregates=${MANY_AGGREGATES} ${line(many)}`,
    );
    const guarded = (f: Figures): string =>
      `guarded_eps=${r(f.guarded)} undeduped_eps=${r(f.undeduped)} vs_guarded=${ratio(f.sink, f.guarded)} guarded_vs_consume=${ratio(f.guarded, f.consume)} undeduped_vs_consume=${ratio(f.undeduped, f.consume)}`;
    console.log(`bench-sink-guarded: many-events ${guarded(many)} one-event ${guarded(one)}`);
    console.log(`bench-sink: ${line(one)}`);
  } finally {
    await stack.stop();
  }
}

async function readFloor(
  kafka: Kafka,
  catalog: Catalog,
  codec: EventCodec,
  groupId: string,
  events: number,
): Promise<number> {
  const consumer = kafka.consumer({ groupId, maxBytesPerPartition: 4 * 1024 * 1024 });
  await consumer.connect();
  try {
    for (const topic of catalog.topics()) await consumer.subscribe({ topic, fromBeginning: true });
    let n = 0;
    let first = 0;
    let last = 0;
    await consumer.run({
      partitionsConsumedConcurrently: PARTITIONS,
      eachBatch: async ({ batch }) => {
        if (first === 0) first = Date.now();
        for (const m of batch.messages) {
          const d = await decodeRecord(rawRecord(batch.topic, batch.partition, m), codec, catalog);
          if (d.ok) n++;
        }
        last = Date.now();
      },
    });
    await poll('read floor', () => Promise.resolve(n), events);
    return last - first;
  } finally {
    await consumer.disconnect();
  }
}

/** One fetched batch of a kafkajs ceiling, decoded: its event ids and each customer's newest row
 * (`[id, name, email, version]`), in the batch's order. */
interface CeilingBatch {
  readonly topic: string;
  readonly partition: number;
  readonly nextOffset: string;
  readonly eventIds: string[][];
  readonly rows: unknown[][];
}

/**
 * A kafkajs consumer as simply as a sink can be: per fetched batch (3 partitions concurrently),
 * decode every record with the sink's decoder and keep each customer's newest row, then `write`
 * the batch. Returns the ms from the first batch to the last.
 */
async function kafkajsCeiling(
  kafka: Kafka,
  catalog: Catalog,
  codec: EventCodec,
  groupId: string,
  dbUrl: string,
  w: Workload,
  write: (pool: mysql.Pool, batch: CeilingBatch) => Promise<void>,
): Promise<number> {
  const pool = mysql.createPool({ uri: dbUrl, connectionLimit: PARTITIONS });
  const consumer = kafka.consumer({ groupId, maxBytesPerPartition: 4 * 1024 * 1024 });
  await consumer.connect();
  try {
    for (const topic of catalog.topics()) await consumer.subscribe({ topic, fromBeginning: true });
    let n = 0;
    let first = 0;
    let last = 0;
    await consumer.run({
      partitionsConsumedConcurrently: PARTITIONS,
      eachBatch: async ({ batch }) => {
        if (first === 0) first = Date.now();
        const eventIds: string[][] = [];
        const newest = new Map<string, unknown[]>();
        for (const m of batch.messages) {
          let d = decodeRecord(rawRecord(batch.topic, batch.partition, m), codec, catalog);
          if (d instanceof Promise) d = await d;
          if (!d.ok) throw d.error;
          const state = d.event.state as { id: string; name: string; email: string };
          const { aggregateId: id, eventId, version } = d.event.metadata;
          eventIds.push([eventId]);
          newest.set(id, [id, state.name, state.email, version]);
        }
        await write(pool, {
          topic: batch.topic,
          partition: batch.partition,
          nextOffset: String(BigInt(batch.lastOffset()) + 1n),
          eventIds,
          rows: [...newest.values()],
        });
        n += batch.messages.length;
        last = Date.now();
      },
    });
    await poll(`${groupId} ceiling`, () => Promise.resolve(n), w.events);
    return last - first;
  } finally {
    await consumer.disconnect();
    await pool.end();
  }
}

/**
 * The consume ceiling: `kafkajsCeiling` upserting each batch's newest rows (1 000 a statement) on
 * the partition's own connection. Offsets stay kafkajs' (committed to Kafka), nothing is
 * deduplicated or gated.
 */
function consumeCeiling(
  kafka: Kafka,
  catalog: Catalog,
  codec: EventCodec,
  groupId: string,
  dbUrl: string,
  w: Workload,
): Promise<number> {
  return kafkajsCeiling(kafka, catalog, codec, groupId, dbUrl, w, async (pool, { rows }) => {
    for (let i = 0; i < rows.length; i += 1000) {
      await pool.query(UPSERT('customers_consume'), [rows.slice(i, i + 1000)]);
    }
  });
}

const GUARDED_UPSERT = (
  g: string,
) => `INSERT INTO customers_${g} (id, name, email, version) VALUES ?
  ON DUPLICATE KEY UPDATE name = IF(VALUES(version) > version, VALUES(name), name),
    email = IF(VALUES(version) > version, VALUES(email), email),
    version = GREATEST(version, VALUES(version))`;

/**
 * The guarded ceiling: `kafkajsCeiling` plus the sink's guarantees as bare SQL, all in one
 * transaction per fetched batch: the event ids (a repeat fails the insert: the dedupe), the
 * aggregates' versions (gated), the rows (gated), the offset. `undeduped`: the same without the
 * event ids.
 */
function guardedCeiling(
  kafka: Kafka,
  catalog: Catalog,
  codec: EventCodec,
  tag: string,
  dbUrl: string,
  w: Workload,
  g: 'guarded' | 'undeduped',
): Promise<number> {
  const groupId = `${tag}-${g}`;
  return kafkajsCeiling(kafka, catalog, codec, groupId, dbUrl, w, async (pool, batch) => {
    const { eventIds, rows } = batch;
    const conn = await pool.getConnection();
    try {
      await conn.beginTransaction();
      for (let i = 0; g === 'guarded' && i < eventIds.length; i += 2000) {
        await conn.query(`INSERT INTO ${g}_events (event_id) VALUES ?`, [
          eventIds.slice(i, i + 2000),
        ]);
      }
      for (let i = 0; i < rows.length; i += 2000) {
        const part = rows.slice(i, i + 2000);
        await conn.query(
          `INSERT INTO ${g}_aggregates (aggregate_type, aggregate_id, version, deleted, status_since)
           VALUES ? ON DUPLICATE KEY UPDATE version = GREATEST(version, VALUES(version))`,
          [part.map((r) => ['BenchCustomer', r[0], r[3], 0, new Date()])],
        );
        await conn.query(GUARDED_UPSERT(g), [part]);
      }
      await conn.query(
        `INSERT INTO ${g}_offsets (consumer_group, topic, kpartition, next_offset) VALUES (?, ?, ?, ?)
         ON DUPLICATE KEY UPDATE next_offset = GREATEST(next_offset, VALUES(next_offset))`,
        [groupId, batch.topic, batch.partition, batch.nextOffset],
      );
      await conn.commit();
    } finally {
      conn.release();
    }
  });
}

const str = (field: string, optional = false) => ({ type: 'string', optional, field });
function keyRecord(id: string) {
  return {
    schema: { type: 'struct', name: 'customer_key', optional: false, fields: [str('id')] },
    payload: { id },
  };
}
function valueRecord(r: Row) {
  return {
    schema: {
      type: 'struct',
      name: 'customer',
      optional: false,
      fields: [
        str('id'),
        str('name'),
        str('email'),
        { type: 'int64', optional: false, field: 'version' },
      ],
    },
    payload: { id: r.id, name: r.name, email: r.email, version: r.version },
  };
}

/** Debezium's run time, from its first row to the final rows (their versions summed). */
async function debezium(
  brokers: string[],
  mysqlUrl: string,
  topic: string,
  db: mysql.Connection,
  versionSum: number,
): Promise<number> {
  execFileSync(path.join(here, 'debezium', 'install.sh'), {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const lib = path.resolve(here, '..', '.cache', 'bench', 'debezium', 'lib');
  if (!existsSync(lib) || readdirSync(lib).length === 0) throw new Error(`no jars in ${lib}`);
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-dbz-'));
  const u = new URL(mysqlUrl);
  writeFileSync(
    path.join(dir, 'worker.properties'),
    [
      `bootstrap.servers=${brokers.join(',')}`,
      'key.converter=org.apache.kafka.connect.json.JsonConverter',
      'value.converter=org.apache.kafka.connect.json.JsonConverter',
      'key.converter.schemas.enable=true',
      'value.converter.schemas.enable=true',
      `offset.storage.file.filename=${path.join(dir, 'offsets')}`,
      'offset.flush.interval.ms=1000',
      'consumer.max.poll.records=5000',
      'consumer.auto.offset.reset=earliest',
      'plugin.discovery=only_scan',
      'listeners=http://127.0.0.1:0',
    ].join('\n'),
  );
  writeFileSync(
    path.join(dir, 'connector.properties'),
    [
      'name=bench-jdbc-sink',
      'connector.class=io.debezium.connector.jdbc.JdbcSinkConnector',
      'tasks.max=1',
      `topics=${topic}`,
      `connection.url=jdbc:mysql://${u.hostname}:${u.port}${u.pathname}`,
      `connection.username=${decodeURIComponent(u.username)}`,
      `connection.password=${decodeURIComponent(u.password)}`,
      'insert.mode=upsert',
      'primary.key.mode=record_key',
      'primary.key.fields=id',
      'schema.evolution=basic',
      'table.name.format=customers_dbz',
      'batch.size=5000',
    ].join('\n'),
  );
  writeFileSync(
    path.join(dir, 'log4j.properties'),
    'log4j.rootLogger=WARN, stderr\nlog4j.appender.stderr=org.apache.log4j.ConsoleAppender\nlog4j.appender.stderr.Target=System.err\nlog4j.appender.stderr.layout=org.apache.log4j.PatternLayout\nlog4j.appender.stderr.layout.ConversionPattern=[dbz] %p %c{1}: %m%n\n',
  );
  const java = spawn(
    'java',
    [
      `-Dlog4j.configuration=file:${path.join(dir, 'log4j.properties')}`,
      '-cp',
      `${lib}/*`,
      'org.apache.kafka.connect.cli.ConnectStandalone',
      path.join(dir, 'worker.properties'),
      path.join(dir, 'connector.properties'),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let tail = '';
  java.stderr.on('data', (b: Buffer) => {
    tail = (tail + b.toString()).slice(-4000);
  });
  const died = new Promise<never>((_, rej) =>
    java.once('exit', (code) => {
      rej(new Error(`Kafka Connect exited with ${code}: ${tail}`));
    }),
  );
  try {
    // Versions only grow per key (one task, per-partition order): the sum is reached at the end.
    const progress = async (): Promise<number> => {
      try {
        const [rows] = await db.query('SELECT COALESCE(SUM(version), 0) AS v FROM customers_dbz');
        return Number((rows as { v: number | string }[])[0]?.v ?? 0);
      } catch {
        return 0;
      }
    };
    const d = await Promise.race([poll('debezium', progress, versionSum, 600_000), died]);
    return d.last - d.first;
  } finally {
    java.kill('SIGTERM');
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
