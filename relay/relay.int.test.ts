import { afterAll, describe, expect, it } from '@jest/globals';
import type { Db } from 'mongodb';
import { pino } from 'pino';
import { PENDING_MARKER } from '../schemas/outbox-entry.js';
import { testServers, waitFor } from '../test/support/servers.js';
import type { ShopCommands } from '../test/support/shop.js';
import { startRelay } from './start.js';
import type { Catalog } from '../schemas/catalog.js';
import { checkOrder, readTopics, testRelayConfig } from './testing.js';
import { mongoClientPerFile, relayTestEnv, shopWriteSide } from './test-harness.js';
import type { RelayConfig } from './config.js';
import type { RelayHandle } from './relay.js';

const servers = testServers();
const logger = pino({ level: 'warn' });
const client = mongoClientPerFile();

async function setup() {
  const env = await relayTestEnv(client);
  return { ...env, commands: await shopWriteSide(client, env, logger) };
}

/** Entries not yet relayed, in every aggregate collection of the test catalog. */
async function unrelayed(db: Db): Promise<number> {
  let n = 0;
  for (const name of ['customer', 'order']) {
    for (const doc of await db.collection(name).find({}).toArray()) {
      n += Array.isArray(doc.outbox) ? doc.outbox.length : 0;
    }
  }
  return n;
}

/** N commands over M aggregates: customers registered and renamed, orders built line by line. */
async function runCommands(
  commands: ShopCommands,
  first: number,
  customers: number,
  renames: number,
): Promise<number> {
  let n = 0;
  await Promise.all(
    Array.from({ length: customers }, async (_, i) => {
      const c = first + i;
      const customerId = `cust-${c}`;
      await commands.RegisterCustomer({
        commandId: `${customerId}-r`,
        customerId,
        name: 'N0',
        email: `c${c}@x.io`,
      });
      n++;
      for (let i = 1; i <= renames; i++) {
        await commands.RenameCustomer({
          commandId: `${customerId}-${i}`,
          customerId,
          name: `N${i}`,
        });
        n++;
      }
      const orderId = `order-${c}`;
      await commands.CreateOrder({ commandId: `${orderId}-c`, orderId, customerId });
      await commands.AddOrderLine({
        commandId: `${orderId}-l`,
        orderId,
        lineId: 'l1',
        sku: 'S',
        quantity: 2,
        unitPriceCents: 100,
      });
      await commands.PlaceOrder({ commandId: `${orderId}-p`, orderId });
      n += 3;
    }),
  );
  return n;
}

async function expectDelivered(
  catalog: Catalog,
  expected: number,
  customers: number,
  renames: number,
): Promise<void> {
  const records = await readTopics(servers.kafkaBrokers, catalog.topics(), expected);
  const check = checkOrder(records);
  expect(check.outOfOrder).toEqual([]);
  expect(records.length - check.duplicates).toBe(expected);
  for (let c = 0; c < customers; c++) {
    expect(check.versions.get(`cust-${c}`)).toEqual(
      Array.from({ length: renames + 1 }, (_, i) => i + 1),
    );
    expect(check.versions.get(`order-${c}`)).toEqual([1, 2, 3]);
  }
}

describe('relay publishes the aggregate documents’ outboxes', () => {
  let relay: RelayHandle | undefined;
  afterAll(async () => {
    await relay?.stop();
  });

  it('N commands over M aggregates -> exactly N events, versions 1..n per key, outboxes emptied', async () => {
    const { database, db, catalog, commands } = await setup();
    const before = await runCommands(commands, 0, 10, 4); // a backlog: found by the start-up scan
    relay = await startRelay({
      catalog,
      config: testRelayConfig(servers, database),
      logger,
      mongoClient: client,
    });
    await waitFor('relay active', () => relay?.role === 'active');
    const after = await runCommands(commands, 10, 10, 4); // woken by the change stream
    await expectDelivered(catalog, before + after, 20, 4);
    await waitFor('every entry removed from its document', async () => (await unrelayed(db)) === 0);
    expect(await db.collection('customer').countDocuments(PENDING_MARKER)).toBe(0);
    // The relay's bookkeeping on the documents: what it published, under which fence.
    const customer = await db.collection('customer').findOne({ _id: 'cust-3' as never });
    expect(customer).toMatchObject({ version: 5, relayedVersion: 5, relayFence: 1 });
    expect(customer?.relayedAt).toBeInstanceOf(Date);
    expect(relay.stats()).toMatchObject({ published: before + after, failedEntries: 0 });
    await relay.stop();
    expect(relay.state).toBe('stopped');
    await relay.stop(); // idempotent
  });
});

describe('change stream fast path', () => {
  const streamOpen = async (relay: RelayHandle): Promise<boolean> =>
    (await relay.metrics.getSingleMetric('cqrs_sync_relay_change_stream_open')?.get())?.values[0]
      ?.value === 1;
  /** Scans only at start-up (and when woken): what is published later came by the stream. */
  const noPeriodicScan = (database: string): RelayConfig =>
    testRelayConfig(servers, database, { scanIntervalMs: 600_000 });

  it('a command wakes the relay without waiting for the scan interval', async () => {
    const { database, catalog, commands } = await setup();
    const relay = await startRelay({
      catalog,
      config: noPeriodicScan(database),
      logger,
      mongoClient: client,
    });
    try {
      await waitFor('relay active', () => relay.role === 'active');
      await waitFor('start-up scan done', () => relay.stats().scans >= 1);
      await waitFor('the stream open', () => streamOpen(relay));
      const scans = relay.stats().scans;
      await commands.RegisterCustomer({
        commandId: 'w-1',
        customerId: 'w',
        name: 'A',
        email: 'w@x.io',
      });
      await commands.RenameCustomer({ commandId: 'w-2', customerId: 'w', name: 'B' });
      const records = await readTopics(servers.kafkaBrokers, catalog.topics(), 2, 60_000);
      expect(checkOrder(records).versions.get('w')).toEqual([1, 2]);
      // Scans ran, but only because the stream woke them (the interval is 10 minutes).
      expect(relay.stats().scans).toBeGreaterThan(scans);
    } finally {
      await relay.stop();
    }
  });

  it('an unknown or corrupted resume token costs a scan, never an event', async () => {
    const { database, db, catalog, commands } = await setup();
    const state = db.collection<{ _id: string; value: unknown; at: Date }>('relay_state');
    for (const value of [
      { customer: { _data: 'not-a-token' }, order: { _data: '00' } },
      { customer: 'garbage', order: 42 },
      'not even an object',
    ]) {
      await state.deleteMany({});
      await state.insertOne({ _id: 'resume:outbox', value, at: new Date() });
      const id = `t-${String(Math.random()).slice(2, 8)}`;
      // Committed while no relay runs: only a scan finds it.
      await commands.RegisterCustomer({
        commandId: `${id}-1`,
        customerId: id,
        name: 'A',
        email: 'a@x.io',
      });
      const relay = await startRelay({
        catalog,
        config: noPeriodicScan(database),
        logger: pino({ level: 'silent' }),
        mongoClient: client,
      });
      try {
        await waitFor('the backlog published', async () => (await unrelayed(db)) === 0, {
          timeoutMs: 60_000,
        });
        // The token was dropped and the stream reopened without it: a later command arrives
        // through the stream (no scan is due for 10 minutes), and its change gives a usable token.
        await waitFor('the stream open', () => streamOpen(relay), { timeoutMs: 60_000 });
        await commands.RenameCustomer({ commandId: `${id}-2`, customerId: id, name: 'B' });
        await waitFor('the later command published', async () => (await unrelayed(db)) === 0, {
          timeoutMs: 60_000,
        });
        expect(relay.stats().failedEntries).toBe(0);
      } finally {
        await relay.stop();
      }
      const saved = (await state.findOne({ _id: 'resume:outbox' }))?.value;
      expect(saved).toBeTruthy();
      expect(saved).not.toEqual(value);
      const records = await readTopics(servers.kafkaBrokers, catalog.topics(), 1);
      expect(checkOrder(records.filter((r) => r.key === id)).versions.get(id)).toEqual([1, 2]);
    }
  });
});
