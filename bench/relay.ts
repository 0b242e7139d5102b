/**
 * `npm run bench:relay [-- <entries> [--no-feed]]`: a backlog of 100k pending outbox entries, as aggregate
 * documents with one pending entry each, through the relay (until every entry is published and
 * removed from its document); then the ceiling on a second copy of the same documents: one cursor
 * over the pending documents, a bare kafkajs producer (same batch size, idempotent, acks=all, one
 * request in flight) and the relay's own fenced mark, one bulk write per acknowledged batch.
 * Last line: `bench-relay: relay_eps=<n> raw_eps=<n> ratio=<relay/raw>`.
 */
import { Kafka, logLevel, Partitioners } from 'kafkajs';
import { MongoClient, type AnyBulkWriteOperation, type Collection } from 'mongodb';
import { pino } from 'pino';
import { loadHarnessConfig } from '../infra/local/config.js';
import { startStack } from '../infra/local/stack.js';
import { EventCodec } from '../schemas/codec.js';
import { toHeaders } from '../schemas/envelope.js';
import {
  PENDING_MARKER,
  type AggregateDocument,
  type OutboxEntry,
} from '../schemas/outbox-entry.js';
import { ConfluentRegistry } from '../schemas/registry.js';
import { relayCollections } from '../relay/config.js';
import { KafkaPublisher } from '../relay/kafka-publisher.js';
import { MongoLeaseStore, MongoOutboxSource } from '../relay/mongo-outbox.js';
import type { EntryRef } from '../relay/ports.js';
import { Relay } from '../relay/relay.js';
import { kafkaClient } from '../relay/start.js';
import { customerEntries, testCatalog, testRelayConfig } from '../relay/testing.js';
import { createTopicsAndWait } from '../ops/topics.js';
import { ensureRelayIndexes } from '../relay/mongo-indexes.js';
import { mongoKind } from '../write/mongo-server.js';
import { cpuMeter } from './cpu.js';

// `npm run bench:relay -- <entries>`: the figure is 100k; the MongoDB stand-in takes minutes
// just to insert that many (its oplog), so smaller runs are useful there.
const ENTRIES = Number(process.argv[2] ?? 100_000);
const NO_FEED = process.argv.includes('--no-feed');
const BATCH = 2000;

/** One aggregate document per entry: a customer just registered, its event not yet relayed. */
function documents(entries: readonly Record<string, unknown>[]): AggregateDocument[] {
  return entries.map((e) => {
    const id = e.aggregateId as string;
    return {
      _id: id,
      aggregateType: 'Customer',
      version: 1,
      state: { id, name: 'name-1', email: `${id}@x.io` },
      deleted: false,
      updatedAt: e.occurredAt as Date,
      outbox: [e as unknown as OutboxEntry],
      commands: [],
      relayedVersion: 0,
      relayedAt: null,
      relayFence: 0,
    };
  });
}

/** Sums the time of the calls it is given. */
function timing(): { time<T>(p: Promise<T>): Promise<T>; show(): string } {
  let ms = 0;
  let calls = 0;
  return {
    async time<T>(p: Promise<T>): Promise<T> {
      const t0 = Date.now();
      try {
        return await p;
      } finally {
        ms += Date.now() - t0;
        calls++;
      }
    },
    show: () => `${ms} ms in ${calls} calls`,
  };
}

async function insert(collection: Collection<AggregateDocument>, docs: AggregateDocument[]) {
  for (let i = 0; i < docs.length; i += 5000) await collection.insertMany(docs.slice(i, i + 5000));
}

async function main(): Promise<void> {
  const stack = await startStack({
    only: ['kafka', 'schema-registry', 'mongodb'],
    config: loadHarnessConfig(),
    log: (l) => {
      console.log(l);
    },
  });
  const mongo = new MongoClient(stack.env.MONGODB_URI ?? '');
  const cpu = cpuMeter({
    MongoDB: () => stack.get('mongodb')?.pids() ?? [],
    Kafka: () => stack.get('kafka')?.pids() ?? [],
  });
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
    const db = mongo.db(run);
    const ids = Array.from({ length: ENTRIES }, (_, i) => `agg-${String(i).padStart(6, '0')}`);
    const docs = documents(customerEntries(codec, ids, 1, 1));
    console.log(`inserting ${docs.length} aggregate documents with one pending entry each, twice…`);
    const relayed = db.collection<AggregateDocument>('customer');
    const ceiling = db.collection<AggregateDocument>('customer_ceiling');
    await insert(relayed, docs);
    await insert(ceiling, structuredClone(docs));
    // The ceiling gets the indexes the relay creates for itself (on the stand-in: its fenced mark).
    await ensureRelayIndexes(ceiling as unknown as Collection, await mongoKind(db));

    const config = testRelayConfig(servers, run, {
      batchSize: BATCH,
      topicPartitions: 6,
      logLevel: 'warn',
      scanIntervalMs: 60_000,
    });
    const logger = pino({ level: 'warn' });
    // The relay as `startRelay` builds it, with a count of the entries its marks removed.
    const source = new MongoOutboxSource(db, {
      collections: relayCollections(
        catalog.aggregates.map((a) => a.type),
        config,
      ),
      name: config.name,
    });
    // Where the relay's time goes: each call timed (the scan of the next page overlaps the
    // publish of this one, and marks run behind the publishes, so the sums overlap).
    const spent = { scan: timing(), publish: timing(), mark: timing() };
    let removed = 0;
    const scan = source.scanPending.bind(source);
    source.scanPending = (after, limit) => spent.scan.time(scan(after, limit));
    const mark = source.markRelayed.bind(source);
    source.markRelayed = async (refs: readonly EntryRef[], fence: number) => {
      const n = await spent.mark.time(mark(refs, fence));
      removed += n;
      return n;
    };
    // `--no-feed`: the relay without its change streams (the scan alone publishes everything
    // here), to measure what the feed costs the server (the stand-in polls its oplog).
    if (NO_FEED) source.watch = () => Promise.resolve({ close: () => Promise.resolve() });
    const publisher = new KafkaPublisher(kafkaClient(config, logger), { ...config, logger });
    const publish = publisher.publish.bind(publisher);
    publisher.publish = (records) => spent.publish.time(publish(records));
    const relay = new Relay({
      catalog,
      codec,
      config,
      logger,
      source,
      publisher,
      leases: new MongoLeaseStore(db, config.name),
    });
    cpu();
    const relayStart = Date.now();
    await relay.start();
    while (removed < ENTRIES) await new Promise((r) => setTimeout(r, 20));
    const relayMs = Date.now() - relayStart;
    const published = relay.stats().published;
    await relay.stop();
    console.log(
      `relay: ${ENTRIES} published and removed from their documents in ${relayMs} ms (${published} published; ${relay.stats().scans} passes; scan ${spent.scan.show()}, publish ${spent.publish.show()}, mark ${spent.mark.show()}; ${cpu()})`,
    );

    // Bare kafkajs, not ops/kafka.ts: the ceiling is a plain producer with none of the relay's setup.
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
    const cursor = ceiling
      .find({ ...PENDING_MARKER }, { promoteBuffers: true, batchSize: BATCH })
      .sort({ _id: 1 });
    let batch: AggregateDocument[] = [];
    let raw = 0;
    const ceilingSpent = { read: 0, publish: timing(), mark: timing() };
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return;
      const entries = batch.flatMap((d) => d.outbox.filter((e) => e.status === 'pending'));
      await ceilingSpent.publish.time(
        producer.sendBatch({
          acks: -1,
          topicMessages: [
            {
              topic,
              messages: entries.map((e) => ({
                key: e.aggregateId,
                value: e.payload,
                headers: toHeaders({
                  eventId: e.eventId,
                  eventType: e.type,
                  aggregateType: e.aggregateType,
                  aggregateId: e.aggregateId,
                  version: e.version,
                  schemaId: e.schemaId,
                  occurredAt: e.occurredAt,
                }),
              })),
            },
          ],
        }),
      );
      const now = new Date();
      const marks: AnyBulkWriteOperation<AggregateDocument>[] = batch.map((d) => ({
        updateOne: {
          filter: { _id: d._id, relayFence: d.relayFence },
          update: {
            $pull: { outbox: { eventId: { $in: d.outbox.map((e) => e.eventId) } } },
            $max: { relayedVersion: d.version },
            $set: { relayFence: 1, relayedAt: now },
          },
        },
      }));
      await ceilingSpent.mark.time(ceiling.bulkWrite(marks, { ordered: false }));
      raw += entries.length;
      batch = [];
    };
    let readFrom = Date.now();
    for await (const doc of cursor) {
      batch.push(doc);
      if (batch.length >= BATCH) {
        ceilingSpent.read += Date.now() - readFrom;
        await flush();
        readFrom = Date.now();
      }
    }
    ceilingSpent.read += Date.now() - readFrom;
    await flush();
    const rawMs = Date.now() - rawStart;
    await producer.disconnect();
    const left = await ceiling.countDocuments({ ...PENDING_MARKER });
    console.log(
      `raw: ${raw} in ${rawMs} ms (pending documents left: ${left}; read ${ceilingSpent.read} ms, publish ${ceilingSpent.publish.show()}, mark ${ceilingSpent.mark.show()}; ${cpu()})`,
    );
    const relayEps = Math.round(ENTRIES / (relayMs / 1000));
    const rawEps = Math.round(raw / (rawMs / 1000));
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
