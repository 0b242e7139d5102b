import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { MongoClient } from 'mongodb';
import { pino } from 'pino';
import { EventCodec } from '../schemas/codec.js';
import { isPipelineError } from '../schemas/errors.js';
import { ConfluentRegistry } from '../schemas/registry.js';
import { itNeedsRealMongod, testServers, uniqueName, waitFor } from '../test/support/servers.js';
import { demoCommands } from '../demo/domain/commands.js';
import { MongoWriteStore } from '../write/mongo-store.js';
import { startRelay } from './start.js';
import { checkOrder, readTopics, testCatalog, testRelayConfig } from './testing.js';
import type { RelayHandle } from './relay.js';

const servers = testServers();
const logger = pino({ level: 'warn' });
let client: MongoClient;

beforeAll(async () => {
  client = new MongoClient(servers.mongodbUri);
  await client.connect();
});
afterAll(async () => {
  await client.close();
});

async function setup(unsafe: boolean) {
  const database = uniqueName('relay');
  const catalog = testCatalog(uniqueName('t'));
  const codec = new EventCodec(catalog, new ConfluentRegistry(servers.schemaRegistryUrl));
  await codec.registerAll();
  const store = new MongoWriteStore({
    client,
    database,
    unsafeAllowNonTransactional: unsafe,
    logger,
  });
  return { database, catalog, codec, store, commands: demoCommands(store, codec) };
}

/** N commands over M aggregates: customers registered and renamed, orders built line by line. */
async function runCommands(
  commands: ReturnType<typeof demoCommands>,
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
  catalog: ReturnType<typeof testCatalog>,
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

describe('relay publishes the outbox', () => {
  let relay: RelayHandle | undefined;
  afterAll(async () => {
    await relay?.stop();
  });

  async function commandsToTopics(unsafe: boolean): Promise<void> {
    const { database, catalog, commands } = await setup(unsafe);
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
    await waitFor(
      'all marked relayed',
      async () =>
        (await client.db(database).collection('outbox').countDocuments({ status: 'pending' })) ===
        0,
    );
    expect(relay.stats()).toMatchObject({ published: before + after, failedEntries: 0 });
    await relay.stop();
    expect(relay.state).toBe('stopped');
    await relay.stop(); // idempotent
  }

  it('N commands over M aggregates -> exactly N events, versions 1..n per key (non-transactional opt-in)', async () => {
    await commandsToTopics(true);
  });

  itNeedsRealMongod(
    'N transactional commands over M aggregates -> exactly N events, versions 1..n per key',
    async () => {
      await commandsToTopics(false);
    },
  );

  it('refuses to write without transactions unless opted in', async () => {
    const { store, commands } = await setup(false);
    if (await store.transactional()) return; // a real mongod: nothing to refuse
    const e = await commands
      .RegisterCustomer({ commandId: 'x', customerId: 'c', name: 'A', email: 'a@b.io' })
      .catch((err: unknown) => err);
    expect(isPipelineError(e, 'transactions_unsupported') && !e.retriable).toBe(true);
  });
});
