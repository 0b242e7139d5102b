/**
 * Fuzz: malformed records to the sink and malformed outbox entries (inside aggregate documents) to
 * the relay. Nothing crashes, everything ends on the dead-letter path (the sink) or failed (the
 * relay) with a reason, no read-model row is touched, nothing bad is published. `FUZZ_COUNT` raises
 * the count (the full run: 10000).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Kafka, logLevel } from 'kafkajs';
import { MongoClient } from 'mongodb';
import { pino } from 'pino';
import { startRelay } from '../../relay/start.js';
import { appendPlaced, outboxEntries, testCatalog, testRelayConfig } from '../../relay/testing.js';
import { EventCodec } from '../../schemas/codec.js';
import { ConfluentRegistry } from '../../schemas/registry.js';
import { sinkTestEnv, type SinkTestEnv } from '../../sink/test-harness.js';
import { testServers, uniqueName, waitFor } from '../support/servers.js';
import { malformedEntries, malformedRecords } from './fuzz.js';

const COUNT = Number(process.env.FUZZ_COUNT ?? 1000);
/** Time limits grow with the count (about 0.1 s per poison record through the sink here). */
const SCALE = Math.max(1, COUNT / 1000);
const SEED = Number(process.env.FUZZ_SEED ?? 424242);
const servers = testServers();

describe('sink fuzz', () => {
  let t: SinkTestEnv;
  beforeAll(async () => {
    t = await sinkTestEnv('fuzz', { partitions: 3 });
  }, 120_000);
  afterAll(async () => {
    await t.close();
  });

  it(
    `dead-letters ${COUNT} malformed records with a reason and touches no row`,
    async () => {
      const sink = await t.start({ SINK_BATCH_SIZE: '200' });
      const records = malformedRecords(
        COUNT,
        SEED,
        t.codec,
        t.codec.schemaIdOf('CustomerRegistered'),
      );
      // Batches under the broker's 1 MB request limit (a huge record goes alone).
      let batch: typeof records = [];
      let bytes = 0;
      const flush = async (): Promise<void> => {
        if (batch.length === 0) return;
        await t.producer.send({
          topic: `${t.prefix}customer`,
          acks: -1,
          messages: batch.map((r) => ({ key: r.key, value: r.value, headers: r.headers })),
        });
        batch = [];
        bytes = 0;
      };
      for (const r of records) {
        const size = (r.value?.length ?? 0) + 1000;
        if (bytes + size > 700_000) await flush();
        batch.push(r);
        bytes += size;
      }
      await flush();
      await waitFor(
        'every record dead-lettered',
        () => Promise.resolve(sink.counts.dead_lettered + sink.counts.held >= COUNT),
        { timeoutMs: 300_000 * SCALE },
      );
      expect(sink.state).toBe('running');
      expect(sink.counts.applied).toBe(0);
      expect(sink.counts.dead_lettered).toBe(COUNT);
      const held = await t.db.query<{ n: unknown; reasons: unknown }>(
        "SELECT COUNT(*) AS n, SUM(error_code IS NOT NULL AND error_message <> '') AS reasons FROM cqrs_sink_held WHERE kind = 'dead'",
      );
      expect(held.map((h) => [Number(h.n), Number(h.reasons)])).toEqual([[COUNT, COUNT]]);
      for (const table of [
        'customers',
        'orders',
        'order_lines',
        'order_summaries',
        'applied_log',
      ]) {
        expect({ table, rows: (await t.db.query(`SELECT 1 FROM ${table}`)).length }).toEqual({
          table,
          rows: 0,
        });
      }
      const admin = new Kafka({
        clientId: 'fuzz',
        brokers: servers.kafkaBrokers,
        logLevel: logLevel.NOTHING,
      }).admin();
      await admin.connect();
      try {
        const dlt = await admin.fetchTopicOffsets(t.dlt);
        expect(dlt.reduce((n, p) => n + Number(p.high), 0)).toBe(COUNT);
      } finally {
        await admin.disconnect();
      }
    },
    600_000 * SCALE,
  );
});

describe('relay fuzz', () => {
  let client: MongoClient;
  beforeAll(async () => {
    client = new MongoClient(servers.mongodbUri);
    await client.connect();
  });
  afterAll(async () => {
    await client.close();
  });

  it(
    `marks ${COUNT} malformed outbox entries in aggregate documents failed with a reason and publishes none`,
    async () => {
      const database = uniqueName('fuzz');
      const catalog = testCatalog(uniqueName('f'));
      const codec = new EventCodec(catalog, new ConfluentRegistry(servers.schemaRegistryUrl));
      await codec.registerAll();
      const db = client.db(database);
      const placed = malformedEntries(COUNT, SEED, codec, codec.schemaIdOf('CustomerRegistered'));
      await appendPlaced(db, placed);
      const documents = new Set(placed.map((p) => p.aggregateId)).size;
      expect(documents).toBe(COUNT);
      const relay = await startRelay({
        catalog,
        config: testRelayConfig(servers, database, { topicPartitions: 1, batchSize: 500 }),
        logger: pino({ level: 'silent' }),
        mongoClient: client,
      });
      const failed = async () => (await outboxEntries(db)).filter((e) => e.status === 'failed');
      try {
        await waitFor('every entry failed', async () => (await failed()).length === COUNT, {
          timeoutMs: 300_000 * SCALE,
        });
        expect(relay.state).toBe('running');
        expect(relay.stats()).toMatchObject({ published: 0, failedEntries: COUNT });
        const all = await failed();
        // One failed entry per document, with a reason.
        expect(new Set(all.map((e) => e.documentId)).size).toBe(COUNT);
        expect(
          all.filter((e) => {
            const f = e.failure as { code?: unknown; reason?: unknown } | undefined;
            return typeof f?.code === 'string' && typeof f.reason === 'string' && f.reason !== '';
          }),
        ).toHaveLength(COUNT);
        // The rest is held behind them: still there, never published.
        const entries = await outboxEntries(db);
        expect(entries).toHaveLength(placed.length);
        expect(entries.filter((e) => e.status === 'pending')).toHaveLength(placed.length - COUNT);
        expect(await db.collection('customer').countDocuments({ relayedVersion: { $gt: 0 } })).toBe(
          0,
        );
        const admin = new Kafka({
          clientId: 'fuzz-relay',
          brokers: servers.kafkaBrokers,
          logLevel: logLevel.NOTHING,
        }).admin();
        await admin.connect();
        try {
          for (const topic of catalog.topics()) {
            const offsets = await admin.fetchTopicOffsets(topic);
            expect({ topic, records: offsets.reduce((n, p) => n + Number(p.high), 0) }).toEqual({
              topic,
              records: 0,
            });
          }
        } finally {
          await admin.disconnect();
        }
      } finally {
        await relay.stop();
      }
    },
    600_000 * SCALE,
  );
});
