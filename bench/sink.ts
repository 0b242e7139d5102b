/**
 * `npm run bench:sink`: applies N (default 100 000) events from a topic and, in the same run, measures
 * (a) the ceiling: a bare multi-row upsert of the same final rows into MariaDB (one connection,
 * 1 000 rows a statement), (b) the peer: Debezium's JDBC sink connector on Kafka Connect standalone
 * consuming equivalent records (JSON with schemas) into the same MariaDB.
 *
 * The workload is N customers registered once each (N final rows), so nothing can be coalesced and
 * every system writes N rows. Throughput is measured from the first row to the last (consumer-group
 * joins and JVM start-up are excluded for all three).
 *
 * Last line: `bench-sink: sink_eps=<n> raw_eps=<n> debezium_eps=<n> vs_raw=<r> vs_debezium=<r>`.
 */
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
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
import { loadSinkConfig } from '../sink/config.js';
import { decodeRecord, rawRecord } from '../sink/decode.js';
import { SINK_MIGRATIONS, runMigrations } from '../sink/migrations.js';
import { tableProjection } from '../sink/projection.js';
import { startSink } from '../sink/sink.js';
import { createTopics, eventRecord, produce, withDatabase } from '../sink/testing.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const N = Number(process.argv[2] ?? 100_000);
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
  },
});

const TABLE = (name: string) =>
  `CREATE TABLE ${name} (id VARCHAR(64) NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL, email VARCHAR(255) NOT NULL, version BIGINT NOT NULL) ENGINE=InnoDB`;

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

/** CPU seconds used so far by this process and by MariaDB: which side limits a phase. */
function cpuMeter(mysqlPids: () => number[]): () => string {
  const tick = 100; // USER_HZ on Linux
  const mysqlCpu = (): number => {
    let s = 0;
    for (const pid of mysqlPids()) {
      try {
        const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
        s += (Number(f[11]) + Number(f[12])) / tick;
      } catch {
        // not Linux, or the process is gone: report what we have
      }
    }
    return s;
  };
  const nodeCpu = (): number => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  };
  let n0 = nodeCpu();
  let m0 = mysqlCpu();
  return () => {
    const n1 = nodeCpu();
    const m1 = mysqlCpu();
    const out = `node ${(n1 - n0).toFixed(1)} CPU s, MariaDB ${(m1 - m0).toFixed(1)} CPU s`;
    n0 = n1;
    m0 = m1;
    return out;
  };
}

async function main(): Promise<void> {
  const stack = await startStack({ only: ['kafka', 'schema-registry', 'mysql'], log });
  const cpu = cpuMeter(() => stack.get('mysql')?.pids() ?? []);
  try {
    const env = stack.env;
    const brokers = (env.KAFKA_BROKERS ?? '').split(',');
    const tag = `bench${Date.now().toString(36)}`;
    const catalog = buildCatalog([Customer], { topicPrefix: `${tag}.` });
    const codec = new EventCodec(catalog, new ConfluentRegistry(env.SCHEMA_REGISTRY_URL ?? ''));
    await codec.registerAll();
    const kafka = new Kafka({ clientId: 'bench', brokers, logLevel: logLevel.NOTHING });
    await createTopics(kafka, [...catalog.topics(), `${tag}.json`], PARTITIONS);
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();

    log(`producing ${N} events…`);
    for (let i = 0; i < N; i += 5000) {
      const specs = [];
      const json = [];
      for (let j = i; j < Math.min(N, i + 5000); j++) {
        const id = `c${j}`;
        const name = `Customer ${j}`;
        const email = `c${j}@example.com`;
        specs.push(
          eventRecord(codec, catalog, {
            aggregateId: id,
            version: 1,
            eventType: 'BenchCustomerRegistered',
            payload: { name, email },
            state: { id, name, email },
          }),
        );
        json.push({
          key: JSON.stringify(keyRecord(id)),
          value: JSON.stringify(valueRecord(id, name, email)),
        });
      }
      await produce(producer, specs);
      await producer.send({ topic: `${tag}.json`, acks: -1, messages: json });
    }
    await producer.disconnect();

    const admin = await mysql.createConnection(env.MYSQL_URL ?? '');
    await admin.query(`CREATE DATABASE ${tag}`);
    const adminUrl = withDatabase(env.MYSQL_URL ?? '', tag);
    const db = await mysql.createConnection(adminUrl);
    await runMigrations(db, [
      SINK_MIGRATIONS,
      {
        scope: 'bench',
        migrations: [
          { version: 1, name: 'customers', sql: [TABLE('customers'), TABLE('customers_raw')] },
        ],
      },
    ]);

    // The floor under the sink: only reading and decoding the same records (no MySQL). The
    // ceiling below does neither, so this bounds what vs_raw can reach on this machine.
    cpu();
    const reader = await readFloor(kafka, catalog, codec, `${tag}-read`);
    log(`read floor: ${N} records fetched and decoded in ${reader} ms (${cpu()})`);

    // (a) the sink
    cpu();
    const config = loadSinkConfig({
      KAFKA_BROKERS: brokers.join(','),
      SCHEMA_REGISTRY_URL: env.SCHEMA_REGISTRY_URL,
      MYSQL_URL: adminUrl,
      SINK_GROUP_ID: `${tag}-sink`,
      SINK_DLT_TOPIC: `${tag}.dlt`,
      SINK_BATCH_SIZE: '2000',
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
    const s = await poll('sink', () => Promise.resolve(sink.counts.applied), N);
    await sink.stop();
    const sinkEps = N / ((s.last - s.first) / 1000);
    log(`sink: ${N} events in ${s.last - s.first} ms (${cpu()}, start-up included)`);

    // (b) the ceiling: the same final rows, bare multi-row upserts
    cpu();
    const t0 = Date.now();
    for (let i = 0; i < N; i += 1000) {
      const rows = [];
      for (let j = i; j < Math.min(N, i + 1000); j++)
        rows.push([`c${j}`, `Customer ${j}`, `c${j}@example.com`, 1]);
      await db.query(
        'INSERT INTO customers_raw (id, name, email, version) VALUES ? ON DUPLICATE KEY UPDATE name = VALUES(name), email = VALUES(email), version = VALUES(version)',
        [rows],
      );
    }
    const rawEps = N / ((Date.now() - t0) / 1000);
    log(`raw: ${N} rows in ${Date.now() - t0} ms (${cpu()})`);

    // (c) Debezium's JDBC sink on Kafka Connect standalone
    let dbzEps: number | undefined;
    try {
      dbzEps = await debezium(brokers, adminUrl, `${tag}.json`, db);
    } catch (e) {
      log(`debezium: not measured: ${(e as Error).message}`);
    }
    await db.query(`DROP DATABASE ${tag}`);
    await db.end();
    await admin.end();
    const r = (x: number | undefined): string => (x === undefined ? 'n/a' : String(Math.round(x)));
    const ratio = (a: number, b: number | undefined): string =>
      b === undefined ? 'n/a' : (a / b).toFixed(2);
    console.log(
      `bench-sink: sink_eps=${r(sinkEps)} raw_eps=${r(rawEps)} debezium_eps=${r(dbzEps)} vs_raw=${ratio(sinkEps, rawEps)} vs_debezium=${ratio(sinkEps, dbzEps)}`,
    );
  } finally {
    await stack.stop();
  }
}

async function readFloor(
  kafka: Kafka,
  catalog: Catalog,
  codec: EventCodec,
  groupId: string,
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
    await poll('read floor', () => Promise.resolve(n), N);
    return last - first;
  } finally {
    await consumer.disconnect();
  }
}

const str = (field: string, optional = false) => ({ type: 'string', optional, field });
function keyRecord(id: string) {
  return {
    schema: { type: 'struct', name: 'customer_key', optional: false, fields: [str('id')] },
    payload: { id },
  };
}
function valueRecord(id: string, name: string, email: string) {
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
    payload: { id, name, email, version: 1 },
  };
}

async function debezium(
  brokers: string[],
  mysqlUrl: string,
  topic: string,
  db: mysql.Connection,
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
      'consumer.max.poll.records=2000',
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
      'batch.size=2000',
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
    const count = async (): Promise<number> => {
      try {
        const [rows] = await db.query('SELECT COUNT(*) AS n FROM customers_dbz');
        return Number((rows as { n: number | string }[])[0]?.n ?? 0);
      } catch {
        return 0;
      }
    };
    const d = await Promise.race([poll('debezium', count, N, 600_000), died]);
    log(`debezium: ${N} rows in ${d.last - d.first} ms`);
    return N / ((d.last - d.first) / 1000);
  } finally {
    java.kill('SIGTERM');
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
