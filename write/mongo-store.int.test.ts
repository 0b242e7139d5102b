import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { MongoClient } from 'mongodb';
import { pino } from 'pino';
import { demoCommands } from '../demo/domain/commands.js';
import { buildCatalog } from '../schemas/catalog.js';
import { EventCodec } from '../schemas/codec.js';
import { isPipelineError } from '../schemas/errors.js';
import { demoAggregates } from '../demo/domain/definitions.js';
import { itNeedsRealMongod, testServers, uniqueName } from '../test/support/servers.js';
import { MongoWriteStore } from './mongo-store.js';
import { InMemoryRegistry } from './testing.js';

const servers = testServers();
const logger = pino({ level: 'silent' });
let client: MongoClient;
let codec: EventCodec;

beforeAll(async () => {
  client = new MongoClient(servers.mongodbUri);
  await client.connect();
  codec = new EventCodec(buildCatalog(demoAggregates), new InMemoryRegistry());
  await codec.registerAll();
});
afterAll(async () => {
  await client.close();
});

function setup(unsafe: boolean) {
  const database = uniqueName('write');
  const store = new MongoWriteStore({
    client,
    database,
    unsafeAllowNonTransactional: unsafe,
    logger,
  });
  const db = client.db(database);
  return { store, db, cmd: demoCommands(store, codec, { maxConflictRetries: 0 }) };
}

async function conflictAndRepeat(unsafe: boolean): Promise<void> {
  const { store, db, cmd } = setup(unsafe);
  await cmd.RegisterCustomer({ commandId: 'c1', customerId: 'u', name: 'A', email: 'a@b.io' });
  // Two writers loaded version 1; the second one's save must fail and write nothing.
  const { Customer } = await import('../demo/domain/customer.js');
  const { Repository } = await import('./repository.js');
  const repo = new Repository({
    store,
    codec,
    aggregateType: 'Customer',
    create: (id, s) => new Customer(id, s && { version: s.version, state: s.state as never }),
  });
  const first = await repo.load('u');
  const second = await repo.load('u');
  first.rename('B');
  second.rename('C');
  expect(await repo.save(first, { commandId: 'w1' })).toMatchObject({ applied: true, version: 2 });
  const e = await repo.save(second, { commandId: 'w2' }).catch((err: unknown) => err);
  expect(isPipelineError(e, 'concurrency_conflict') && e.retriable).toBe(true);
  expect(await db.collection('outbox').countDocuments({ aggregateId: 'u' })).toBe(2);
  expect(await db.collection('commands').countDocuments({ _id: 'w2' } as never)).toBe(0);
  expect((await db.collection('customer').findOne({ _id: 'u' } as never))?.state).toMatchObject({
    name: 'B',
  });

  // The same commandId twice: runs once, the repeat returns the first outcome.
  const input = { commandId: 'same', customerId: 'u', email: 'new@b.io' };
  const r1 = await cmd.ChangeCustomerEmail(input);
  const r2 = await cmd.ChangeCustomerEmail(input);
  expect(r2).toEqual({ ...r1, applied: false, reason: 'duplicate' });
  expect(await db.collection('outbox').countDocuments({ aggregateId: 'u' })).toBe(3);
  const entry = await db.collection('outbox').findOne({ aggregateId: 'u', version: 3 });
  expect(entry).toMatchObject({
    type: 'CustomerEmailChanged',
    status: 'pending',
    commandId: 'same',
    attempts: 0,
  });
  const indexes = (await db.collection('outbox').indexes()).map((i) => i.name);
  expect(indexes).toEqual(
    expect.arrayContaining(['aggregate_version', 'relay_scan', 'relayed_ttl']),
  );
}

itNeedsRealMongod(
  'in one transaction: a concurrency conflict writes nothing; a repeated commandId runs once',
  async () => {
    const { store } = setup(false);
    expect(await store.transactional()).toBe(true);
    await conflictAndRepeat(false);
  },
);

itNeedsRealMongod('a concurrent repeat of one commandId commits once', async () => {
  const { db, cmd } = setup(false);
  await cmd.CreateOrder({ commandId: 'o', orderId: 'o1', customerId: 'u' });
  const input = {
    commandId: 'twice',
    orderId: 'o1',
    lineId: 'l',
    sku: 's',
    quantity: 1,
    unitPriceCents: 5,
  };
  const results = await Promise.allSettled([cmd.AddOrderLine(input), cmd.AddOrderLine(input)]);
  const ok = results.filter((r) => r.status === 'fulfilled');
  expect(ok.length).toBeGreaterThanOrEqual(1);
  expect(await db.collection('outbox').countDocuments({ aggregateId: 'o1' })).toBe(2);
});

it('without transactions (the stand-in, opted in): the version check and the command record still hold', async () => {
  const { store } = setup(true);
  if (await store.transactional()) return; // a real mongod runs the transactional test above
  await conflictAndRepeat(true);
});

it('without transactions and without the opt-in: refuses, writes nothing', async () => {
  const { store, db, cmd } = setup(false);
  if (await store.transactional()) return;
  const e = await cmd
    .RegisterCustomer({ commandId: 'x', customerId: 'u', name: 'A', email: 'a@b.io' })
    .catch((err: unknown) => err);
  expect(isPipelineError(e, 'transactions_unsupported')).toBe(true);
  expect((e as Error).message).toMatch(/replica set/);
  expect(await db.collection('customer').countDocuments({})).toBe(0);
  expect(await store.findCommand('x')).toBeUndefined();
});
