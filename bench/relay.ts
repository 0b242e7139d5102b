/**
 * `npm run bench:relay [-- <entries>]`: a backlog of 100k outbox entries through the relay, then the same records
 * with a bare kafkajs producer (same batch size, idempotent, acks=all, one request in flight).
 * Last line: `bench-relay: relay_eps=<n> raw_eps=<n> ratio=<relay/raw>`.
 */
import { Kafka, logLevel, Partitioners } from 'kafkajs';
import { MongoClient } from 'mongodb';
import { pino } from 'pino';
import { loadHarnessConfig } from '../infra/local/config.js';
import { startStack } from '../infra/local/stack.js';
import { EventCodec } from '../schemas/codec.js';
import { toHeaders } from '../schemas/envelope.js';
import { ConfluentRegistry } from '../schemas/registry.js';
import { startRelay } from '../relay/start.js';
import { customerEntries, testCatalog, testRelayConfig } from '../relay/testing.js';
import { createTopicsAndWait } from '../ops/topics.js';

// `npm run bench:relay -- <entries>`: the figure is 100k; the MongoDB stand-in takes minutes
// just to insert that many (its oplog), so smaller runs are useful there.
const ENTRIES = Number(process.argv[2] ?? 100_000);
const AGGREGATES = Math.max(1, Math.floor(ENTRIES / 10));
const BATCH = 2000;

async function main(): Promise<void> {
  const stack = await startStack({
    only: ['kafka', 'schema-registry', 'mongodb'],
    config: loadHarnessConfig(),
    log: (l) => {
      console.log(l);
    },
  });
  const mongo = new MongoClient(stack.env.MONGODB_URI ?? '');
  try {
    for (const line of stack.lines()) console.log(line);
    const servers = {
      kafkaBrokers: (stack.env.KAFKA_BROKERS ?? '').split(','),
      schemaRegistryUrl: stack.env.SCHEMA_REGISTRY_URL ?? '',
      mongodbUri: stack.env.MONGODB_URI ?? '',
    };
    await mongo.connect();
    const run = `bench${Date.now()}`;
    const catalog = testCatalog(run);
    const codec = new EventCodec(catalog, new ConfluentRegistry(servers.schemaRegistryUrl));
    await codec.registerAll();
    const outbox = mongo.db(run).collection('outbox');
    const ids = Array.from({ length: AGGREGATES }, (_, i) => `agg-${String(i).padStart(6, '0')}`);
    const versions = ENTRIES / AGGREGATES;
    const docs = customerEntries(codec, ids, 1, versions);
    // The same records for the raw producer, built before timing.
    const raw = docs.map((d) => ({
      key: d.aggregateId as string,
      value: d.payload as Buffer,
      headers: toHeaders({
        eventId: d.eventId as string,
        eventType: d.type as string,
        aggregateType: 'Customer',
        aggregateId: d.aggregateId as string,
        version: d.version as number,
        schemaId: d.schemaId as number,
        occurredAt: d.occurredAt as Date,
      }),
    }));
    console.log(`inserting ${docs.length} outbox entries…`);
    for (let i = 0; i < docs.length; i += 5000) await outbox.insertMany(docs.slice(i, i + 5000));

    const config = testRelayConfig(servers, run, {
      batchSize: BATCH,
      topicPartitions: 6,
      logLevel: 'warn',
      scanIntervalMs: 60_000,
    });
    const logger = pino({ level: 'warn' });
    const relayStart = Date.now();
    const relay = await startRelay({ catalog, config, logger, mongoClient: mongo });
    while (relay.stats().published < ENTRIES) await new Promise((r) => setTimeout(r, 20));
    const relayMs = Date.now() - relayStart;
    await relay.stop();
    const pending = await outbox.countDocuments({ status: 'pending' });
    console.log(`relay: ${ENTRIES} in ${relayMs} ms (pending after stop: ${pending})`);

    const kafka = new Kafka({
      clientId: 'bench-raw',
      brokers: servers.kafkaBrokers,
      logLevel: logLevel.NOTHING,
    });
    const admin = kafka.admin();
    await admin.connect();
    const topic = `${run}.raw`;
    await createTopicsAndWait(admin, [{ topic, numPartitions: 6 }]);
    await admin.disconnect();
    const producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    await producer.connect();
    const rawStart = Date.now();
    for (let i = 0; i < raw.length; i += BATCH) {
      await producer.sendBatch({
        acks: -1,
        topicMessages: [{ topic, messages: raw.slice(i, i + BATCH) }],
      });
    }
    const rawMs = Date.now() - rawStart;
    await producer.disconnect();
    console.log(`raw: ${ENTRIES} in ${rawMs} ms`);
    const relayEps = Math.round(ENTRIES / (relayMs / 1000));
    const rawEps = Math.round(ENTRIES / (rawMs / 1000));
    console.log(
      `bench-relay: relay_eps=${relayEps} raw_eps=${rawEps} ratio=${(relayEps / rawEps).toFixed(2)}`,
    );
  } finally {
    await mongo.close();
    await stack.stop();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
