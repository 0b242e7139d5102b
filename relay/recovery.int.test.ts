import { describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import { testServers, waitFor } from '../test/support/servers.js';
import { KafkaPublisher } from './kafka-publisher.js';
import { MongoCheckpointStore, MongoLeaseStore } from './mongo-outbox.js';
import type { ChangeFeedHandlers, EventPublisher, OutgoingRecord } from './ports.js';
import { Relay } from './relay.js';
import { runSnapshot } from './snapshot.js';
import { kafkaClient, startRelay } from './start.js';
import {
  appendEntries,
  checkOrder,
  customerEntries,
  outboxEntries,
  readTopics,
} from './testing.js';
import { mongoClientPerFile, relayTestEnv } from './test-harness.js';
import { shopCommands } from '../test/support/shop.js';
import { MongoWriteStore } from '../write/mongo-store.js';

const servers = testServers();
const logger = pino({ level: 'warn' });
const client = mongoClientPerFile();
const setup = () => relayTestEnv(client);

const ids = (prefix: string, n: number): string[] =>
  Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

describe('resume token lost', () => {
  it('deleted, corrupted or too old: the scan recovers everything', async () => {
    const { catalog, codec, db, config, source: outboxSource } = await setup();
    const state = db.collection<{ _id: string; value: unknown }>('relay_state');
    await appendEntries(db, customerEntries(codec, ids('a', 5), 1, 3));
    let relay = await startRelay({ catalog, config, logger, mongoClient: client });
    await waitFor(
      'a token saved',
      async () => (await state.findOne({ _id: 'resume:outbox' }))?.value,
    );
    await relay.stop();

    // Corrupted token.
    await state.updateOne(
      { _id: 'resume:outbox' },
      { $set: { value: { customer: { _data: 'not-a-token' } } } },
    );
    await appendEntries(db, customerEntries(codec, ids('a', 5), 4, 5));
    relay = await startRelay({ catalog, config, logger, mongoClient: client });
    await readTopics(servers.kafkaBrokers, catalog.topics(), 25);
    await relay.stop();

    // Deleted token.
    await state.deleteMany({});
    await appendEntries(db, customerEntries(codec, ids('a', 5), 6, 6));
    relay = await startRelay({ catalog, config, logger, mongoClient: client });
    await readTopics(servers.kafkaBrokers, catalog.topics(), 30);
    await relay.stop();

    // Too old: the server says ChangeStreamHistoryLost (286) for the saved token.
    await state.updateOne(
      { _id: 'resume:outbox' },
      { $set: { value: { customer: { _data: 'expired' } } } },
      { upsert: true },
    );
    await appendEntries(db, customerEntries(codec, ids('a', 5), 7, 8));
    const source = outboxSource();
    const watch = source.watch.bind(source);
    let refused = 0;
    source.watch = (token: unknown, handlers: ChangeFeedHandlers) => {
      if (token) {
        refused++;
        return Promise.reject(
          Object.assign(new Error('resume point may no longer be in the oplog'), { code: 286 }),
        );
      }
      return watch(token, handlers);
    };
    const r = new Relay({
      catalog,
      codec,
      config,
      logger,
      source,
      publisher: new KafkaPublisher(kafkaClient(config, logger), { ...config, logger }),
      leases: new MongoLeaseStore(db, 'outbox'),
    });
    await r.start();
    const records = await readTopics(servers.kafkaBrokers, catalog.topics(), 40);
    await waitFor(
      'the lost token dropped',
      async () =>
        (await state.findOne({ _id: 'resume:outbox' }))?.value !== undefined && refused > 0,
    );
    // And later inserts arrive through the reopened stream.
    await appendEntries(db, customerEntries(codec, ids('a', 5), 9, 9));
    const all = await readTopics(servers.kafkaBrokers, catalog.topics(), 45);
    await r.stop();
    expect(refused).toBe(1);
    expect(records.length).toBeGreaterThanOrEqual(40);
    const check = checkOrder(all);
    expect(check.outOfOrder).toEqual([]);
    for (const id of ids('a', 5))
      expect(check.versions.get(id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });
});

describe('malformed entries', () => {
  it('are marked failed, hold their aggregate, and let the others flow; release un-holds', async () => {
    const { catalog, codec, db, config, source } = await setup();
    const good = (id: string, from: number, to: number) => customerEntries(codec, [id], from, to);
    const [b2] = good('b', 2, 2);
    const [c1] = good('c', 1, 1);
    const [e1] = good('e', 1, 1);
    await appendEntries(db, [
      ...good('a', 1, 3),
      ...good('b', 1, 1),
      {
        ...b2,
        // its schema id, then bytes that are not that schema
        payload: Buffer.concat([
          (b2?.payload as Buffer).subarray(0, 5),
          Buffer.from([255, 255, 255]),
        ]),
      },
      ...good('b', 3, 3),
      { ...c1, type: 'NoSuchEvent' },
      ...good('c', 2, 2),
      { aggregateId: 'd', version: 1, status: 'pending' }, // fields missing, no event id
      { ...e1, payload: Buffer.alloc(1_100_000) }, // over MAX_RECORD_BYTES
      { status: 'pending', type: 'CustomerRenamed' }, // no aggregate: in the document '?'
    ]);
    const failedEntries = async () =>
      (await outboxEntries(db)).filter((e) => e.status === 'failed');
    const relay = await startRelay({ catalog, config, logger, mongoClient: client });
    try {
      const records = await readTopics(servers.kafkaBrokers, catalog.topics(), 4);
      await waitFor('failed entries marked', async () => (await failedEntries()).length === 5);
      const check = checkOrder(records);
      expect(check.versions.get('a')).toEqual([1, 2, 3]);
      expect(check.versions.get('b')).toEqual([1]);
      expect(
        (await failedEntries()).map((f): unknown[] => [
          f.documentId,
          (f.failure as { code: string }).code,
        ]),
      ).toEqual(
        expect.arrayContaining([
          ['b', 'payload_invalid'],
          ['c', 'event_type_unknown'],
          ['d', 'envelope_invalid'],
          ['e', 'payload_too_large'],
          ['?', 'envelope_invalid'],
        ]),
      );
      const pending = (await outboxEntries(db)).filter((e) => e.status === 'pending');
      expect(pending.map((e) => [e.documentId, e.version])).toEqual([
        ['b', 3],
        ['c', 2],
      ]);
      expect(relay.stats().failedEntries).toBe(5);
      expect((await source().heldAggregates()).sort()).toEqual(
        ['Customer/?', 'Customer/b', 'Customer/c', 'Customer/d', 'Customer/e'].sort(),
      );

      // Skip b's bad version: b3 follows. Fix c's entry and retry it: c1, c2 follow.
      expect(await source().release('b', 'skip')).toBe(1);
      await db
        .collection('customer')
        .updateOne(
          { _id: 'c' as never, 'outbox.eventId': c1?.eventId },
          { $set: { 'outbox.$.type': 'CustomerRegistered' } },
        );
      expect(await source().release('c', 'retry', 'Customer')).toBe(1);
      expect(await source().release('c', 'retry', 'Order')).toBe(0);
      const after = checkOrder(await readTopics(servers.kafkaBrokers, catalog.topics(), 7));
      expect(after.versions.get('b')).toEqual([1, 3]);
      expect(after.versions.get('c')).toEqual([1, 2]);
      expect(after.outOfOrder).toEqual(['b']); // b2 was skipped on purpose
      // The skipped entry went with b3's mark: b's outbox is empty, relayed up to 3.
      await waitFor('b relayed up to 3', async () => {
        const doc = await db.collection('customer').findOne({ _id: 'b' as never });
        return doc?.relayedVersion === 3 && (doc.outbox as unknown[]).length === 0;
      });
    } finally {
      await relay.stop();
    }
  });
});

describe('snapshot', () => {
  it('publishes every live aggregate once, resuming from its checkpoint after a crash', async () => {
    const { catalog, codec, db, config } = await setup();
    const store = new MongoWriteStore({ client, database: config.database, logger });
    const cmd = shopCommands(store, codec);
    for (let i = 0; i < 7; i++) {
      await cmd.RegisterCustomer({
        commandId: `r${i}`,
        customerId: `c${i}`,
        name: 'A',
        email: 'a@b.io',
      });
    }
    await cmd.RenameCustomer({ commandId: 'rn', customerId: 'c1', name: 'B' });
    await cmd.DeleteCustomer({ commandId: 'd', customerId: 'c6' });
    await cmd.CreateOrder({ commandId: 'o', orderId: 'o1', customerId: 'c1' });
    const kafkaPublisher = new KafkaPublisher(kafkaClient(config, logger), { ...config, logger });
    await kafkaPublisher.ensureTopics(catalog.topics());
    let calls = 0;
    const crashing: EventPublisher = {
      ensureTopics: () => Promise.resolve(),
      publish: (records: readonly OutgoingRecord[]) =>
        ++calls === 2 ? Promise.reject(new Error('crash')) : kafkaPublisher.publish(records),
      close: () => Promise.resolve(),
    };
    const options = {
      catalog,
      codec,
      db,
      checkpoints: new MongoCheckpointStore(db),
      logger,
      batchSize: 2,
      name: 'outbox',
    };
    await expect(runSnapshot({ ...options, publisher: crashing })).rejects.toThrow('crash');
    const result = await runSnapshot({ ...options, publisher: kafkaPublisher });
    expect(result.byType).toEqual({ Customer: 6, Order: 1 });
    const again = await runSnapshot({ ...options, publisher: kafkaPublisher });
    expect(again.published).toBe(0);
    const records = await readTopics(servers.kafkaBrokers, catalog.topics(), 7);
    await kafkaPublisher.close();
    expect(records.filter((r) => r.eventType.endsWith('Snapshotted'))).toHaveLength(7);
    expect(new Set(records.map((r) => r.key)).size).toBe(7);
    expect(records.find((r) => r.key === 'c1')?.version).toBe(2);
    const decoded = await codec.decode(
      records.find((r) => r.key === 'c1')?.value ?? Buffer.alloc(0),
    );
    expect(decoded.value.state).toEqual({ id: 'c1', name: 'B', email: 'a@b.io' });
  });
});
