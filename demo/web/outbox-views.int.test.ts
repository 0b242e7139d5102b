/**
 * What the demo page reads from the aggregate documents, on a real MongoDB (a real mongod when the
 * run has one, else the harness's mongo-java-server stand-in): the journeys panel (committed ->
 * published -> applied, with the time of each step) and the pipeline panel's outbox backlog, lease
 * and MongoDB kind. Commands run through the demo's writer on the real write store; the relay's
 * marks are the relay's own (`MongoOutboxSource`), without a broker. MySQL is a fake here.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { MongoClient, type Db } from 'mongodb';
import { relayCollections } from '../../relay/config.js';
import { MongoLeaseStore, MongoOutboxSource } from '../../relay/mongo-outbox.js';
import type { EntryRef } from '../../relay/ports.js';
import { buildCatalog } from '../../schemas/catalog.js';
import { EventCodec } from '../../schemas/codec.js';
import { testServers, uniqueName } from '../../test/support/servers.js';
import { MongoWriteStore } from '../../write/mongo-store.js';
import { aggregateCollectionName } from '../../write/outbox.js';
import { InMemoryRegistry } from '../../write/testing.js';
import { demoAggregates } from '../domain/definitions.js';
import { demoWriter, type DemoWriter } from './commands.js';
import { JourneyTracker, type Journey } from './journeys.js';
import { Pipeline } from './pipeline.js';
import type { AppliedEvent, HeldEvent } from './queries.js';

const catalog = buildCatalog(demoAggregates);
const collections = relayCollections(
  catalog.aggregates.map((a) => a.type),
  { aggregateCollections: {} },
);

let client: MongoClient;
let db: Db;
let writer: DemoWriter;
let source: MongoOutboxSource;
/** What the fake sink "applied": event id -> ms. */
const applied = new Map<string, number>();
const held: HeldEvent[] = [];
const readModel = {
  applied: (ids: readonly string[]): Promise<AppliedEvent[]> =>
    Promise.resolve(
      ids.flatMap((eventId) => {
        const appliedAt = applied.get(eventId);
        return appliedAt === undefined ? [] : [{ eventId, appliedAt }];
      }),
    ),
  held: (ids?: readonly string[]): Promise<HeldEvent[]> =>
    Promise.resolve(held.filter((h) => !ids || ids.includes(h.eventId))),
  bookkeeping: () => Promise.reject(new Error('no MySQL in this test')),
};

beforeAll(async () => {
  client = new MongoClient(testServers().mongodbUri);
  await client.connect();
  const database = uniqueName('demo_outbox_views');
  db = client.db(database);
  const store = new MongoWriteStore({ client, database, collections });
  await store.init(Object.keys(collections));
  const codec = new EventCodec(catalog, new InMemoryRegistry());
  await codec.registerAll();
  writer = demoWriter(store, codec);
  source = new MongoOutboxSource(db, { collections });
  await source.ensureIndexes();
});

afterAll(async () => {
  await db.dropDatabase().catch(() => undefined);
  await client.close();
});

/** The relay's refs of every pending entry, as its scan reads them. */
async function pendingRefs(): Promise<EntryRef[]> {
  const refs: EntryRef[] = [];
  let after: Parameters<MongoOutboxSource['scanPending']>[0];
  do {
    const page = await source.scanPending(after, 100);
    refs.push(...page.entries.map((e) => e.ref));
    after = page.next;
  } while (after);
  return refs;
}

async function register(tracker: JourneyTracker, customerId: string): Promise<Journey> {
  const run = await writer.run('RegisterCustomer', {
    customerId,
    name: 'Ann',
    email: 'ann@example.org',
  });
  const [journey] = tracker.track(run);
  if (!journey) throw new Error('the command raised no event');
  return journey;
}

describe('the journeys panel', () => {
  it('shows an event pending in its aggregate document, then published at relayedAt, then applied', async () => {
    const tracker = new JourneyTracker(db, collections, readModel, catalog);
    const id = uniqueName('c').replace(/_/g, '-');
    const j = await register(tracker, id);

    await tracker.refresh();
    expect(tracker.problems.mongodb).toBeNull();
    expect(j).toMatchObject({
      eventType: 'CustomerRegistered',
      committed: { state: 'done', outboxStatus: 'pending' },
      published: { state: 'waiting' },
      applied: { state: 'waiting' },
    });
    const committedAt = j.committed.at ?? 0;
    expect(committedAt).toBeGreaterThan(0);

    const refs = (await pendingRefs()).filter((r) => r.aggregateId === id);
    expect(refs.map((r) => r.eventId)).toEqual([j.eventId]);
    await source.markRelayed(refs, 1);
    const doc = await db
      .collection<{ _id: string; relayedAt: Date | null; outbox: unknown[] }>(
        aggregateCollectionName('Customer'),
      )
      .findOne({ _id: id });
    expect(doc?.outbox).toEqual([]);

    const changed = await tracker.refresh();
    expect(changed).toEqual([j]);
    expect(j.published).toEqual({
      state: 'done',
      at: doc?.relayedAt?.getTime(),
      detail: catalog.aggregate('Customer').topic,
    });
    expect(j.published.at).toBeGreaterThanOrEqual(committedAt);

    applied.set(j.eventId, (j.published.at ?? 0) + 5);
    await tracker.refresh();
    expect(j.applied).toMatchObject({ state: 'done', at: (j.published.at ?? 0) + 5 });
    expect(j.lagMs).toBe((j.published.at ?? 0) + 5 - committedAt);
    // Finished: nothing more to ask.
    expect(await tracker.refresh()).toEqual([]);
  });

  it('shows a failed entry with the relay reason, and waiting again once released', async () => {
    const tracker = new JourneyTracker(db, collections, readModel, catalog);
    const id = uniqueName('c').replace(/_/g, '-');
    const j = await register(tracker, id);
    const [ref] = (await pendingRefs()).filter((r) => r.aggregateId === id);
    if (!ref) throw new Error('no pending entry');
    await source.markFailed(
      ref,
      { code: 'payload_invalid', reason: 'does not decode', at: new Date() },
      1,
    );

    await tracker.refresh();
    expect(j.committed.outboxStatus).toBe('failed');
    expect(j.published).toEqual({
      state: 'failed',
      detail: 'payload_invalid: does not decode',
    });

    await source.release(id, 'retry', 'Customer');
    await tracker.refresh();
    expect(j.committed.outboxStatus).toBe('pending');
    expect(j.published).toEqual({ state: 'waiting' });
  });

  it('an event relayed before the first look is published without an event type it never saw', async () => {
    const tracker = new JourneyTracker(db, collections, readModel, catalog);
    const id = uniqueName('c').replace(/_/g, '-');
    const j = await register(tracker, id);
    await source.markRelayed(
      (await pendingRefs()).filter((r) => r.aggregateId === id),
      1,
    );

    await tracker.refresh();
    expect(j.eventType).toBe('');
    expect(j.published.state).toBe('done');
    expect(j.published.at).toBeGreaterThan(0);

    // Held by the sink: its held table names the type.
    held.push({
      id: 1,
      kind: 'dead',
      aggregateType: 'Customer',
      aggregateId: id,
      version: 1,
      eventId: j.eventId,
      eventType: 'CustomerRegistered',
      topic: j.topic,
      partition: 0,
      offset: '0',
      errorCode: 'projection_failed',
      errorMessage: 'test',
      attempts: 1,
      heldAt: Date.now(),
    });
    await tracker.refresh();
    expect(j.eventType).toBe('CustomerRegistered');
    expect(j.applied).toEqual({
      state: 'failed',
      detail: 'held by the sink: dead (projection_failed)',
    });
  });
});

describe('the pipeline panel', () => {
  it('counts outbox entries (not documents) by status, reads the lease named for the relay, and names the MongoDB', async () => {
    // A database of its own: counts of this test alone.
    const database = uniqueName('demo_backlog');
    const own = client.db(database);
    try {
      const store = new MongoWriteStore({ client, database, collections });
      const codec = new EventCodec(catalog, new InMemoryRegistry());
      await codec.registerAll();
      const w = demoWriter(store, codec);
      const id = uniqueName('c').replace(/_/g, '-');
      await w.run('RegisterCustomer', { customerId: id, name: 'Ann', email: 'a@example.org' });
      // One command, two events: one document holds three entries.
      await w.run('UpdateCustomer', { customerId: id, name: 'Bo', email: 'b@example.org' });
      const other = uniqueName('c').replace(/_/g, '-');
      await w.run('RegisterCustomer', { customerId: other, name: 'Cy', email: 'c@example.org' });
      const src = new MongoOutboxSource(own, { collections });
      const first = (await src.scanPending(undefined, 100)).entries.find(
        (e) => e.ref.aggregateId === other,
      );
      if (!first) throw new Error('no pending entry');
      await src.markFailed(first.ref, { code: 'x', reason: 'y', at: new Date() }, 1);
      const lease = await new MongoLeaseStore(own, 'demo-relay').tryAcquire('relay-a', 60_000);
      expect(lease).toBeDefined();

      const pipeline = new Pipeline({
        db: own,
        aggregateCollections: collections,
        relayName: 'demo-relay',
        readModel,
        kafka: {
          admin: () => {
            throw new Error('no Kafka in this test');
          },
        },
        catalog,
        control: { redrive: () => Promise.reject(new Error('no sink in this test')) },
      });
      const status = await pipeline.status();
      expect(status.outbox).toEqual({ ok: true, pending: 3, failed: 1 });
      expect(status.relay).toEqual({ source: 'lease', owner: 'relay-a', active: true });
      expect(status.mongo.kind).toBe(
        testServers().mongoKind === 'stand-in' ? 'stand-in' : 'mongod',
      );
      expect(status.lag.ok).toBe(false);
      await pipeline.close();
    } finally {
      await own.dropDatabase().catch(() => undefined);
    }
  });
});
