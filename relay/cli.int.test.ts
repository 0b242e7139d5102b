/**
 * The relay's CLI commands in-process against the local servers (the crash tests run them as child
 * processes, where coverage is not collected): release, snapshot, and run until a signal.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { MongoClient } from 'mongodb';
import { pino } from 'pino';
import { shopCommands } from '../test/support/shop.js';
import { EventCodec } from '../schemas/codec.js';
import { ConfluentRegistry } from '../schemas/registry.js';
import { testServers, uniqueName, waitFor } from '../test/support/servers.js';
import { relayCli } from './cli.js';
import { MongoWriteStore } from '../write/mongo-store.js';
import { appendEntries, customerEntries, outboxEntries, testCatalog } from './testing.js';

const servers = testServers();
let client: MongoClient;

beforeAll(async () => {
  client = new MongoClient(servers.mongodbUri);
  await client.connect();
});
afterAll(async () => {
  await client.close();
});
afterEach(() => {
  jest.restoreAllMocks();
});

async function setup() {
  const database = uniqueName('relaycli');
  const catalog = testCatalog(uniqueName('c'));
  const codec = new EventCodec(catalog, new ConfluentRegistry(servers.schemaRegistryUrl));
  await codec.registerAll();
  const env = {
    MONGODB_URI: servers.mongodbUri,
    KAFKA_BROKERS: servers.kafkaBrokers.join(','),
    SCHEMA_REGISTRY_URL: servers.schemaRegistryUrl,
    RELAY_OUTBOX_DATABASE: database,
    RELAY_TOPIC_PARTITIONS: '1',
    RELAY_SCAN_INTERVAL_MS: '200',
    LOG_LEVEL: 'silent',
  };
  return { database, catalog, codec, env, db: client.db(database) };
}

/** Captures what the CLI writes to stdout and stderr. */
function output(): () => string {
  let text = '';
  const capture = (chunk: unknown): boolean => {
    text += String(chunk);
    return true;
  };
  jest.spyOn(process.stdout, 'write').mockImplementation(capture);
  jest.spyOn(process.stderr, 'write').mockImplementation(capture);
  return () => text;
}

describe('relay CLI', () => {
  it('release: sets failed entries back to pending, or skips them; says when there is nothing', async () => {
    const { catalog, codec, env, db } = await setup();
    await appendEntries(
      db,
      customerEntries(codec, ['r-1'], 1, 2).map((e) => ({ ...e, status: 'failed' })),
    );
    const statuses = async () =>
      (await outboxEntries(db)).filter((e) => e.documentId === 'r-1').map((e) => e.status);
    const out = output();
    expect(await relayCli(['relay', 'release', 'r-1'], { catalog }, env)).toBe(0);
    expect(await statuses()).toEqual(['pending', 'pending']);
    expect((await outboxEntries(db)).every((e) => e.releasedAt instanceof Date)).toBe(true);
    expect(out()).toContain('released r-1: 2 failed entries set to pending');

    expect(await relayCli(['release', 'r-2'], { catalog }, env)).toBe(1);
    expect(out()).toContain('aggregate r-2 has no failed outbox entries');

    await db
      .collection('customer')
      .updateOne({ _id: 'r-1' as never }, { $set: { 'outbox.1.status': 'failed' } });
    expect(await relayCli(['release', 'r-1', '--skip'], { catalog }, env)).toBe(0);
    expect(out()).toContain('released r-1: 1 failed entry skipped');
    expect(await statuses()).toEqual(['pending', 'skipped']);
  });

  it('release: an unreachable MongoDB is a failed command, not a crash', async () => {
    const { catalog, env } = await setup();
    const out = output();
    const code = await relayCli(
      ['release', 'x'],
      { catalog },
      {
        ...env,
        MONGODB_URI: 'mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=500',
      },
    );
    expect(code).toBe(1);
    expect(out()).toContain('release failed');
  });

  it('snapshot: publishes the aggregate documents’ state and reports the count', async () => {
    const { database, catalog, codec, env } = await setup();
    const store = new MongoWriteStore({ client, database, logger: pino({ level: 'silent' }) });
    const commands = shopCommands(store, codec);
    for (const id of ['n-1', 'n-2']) {
      await commands.RegisterCustomer({
        commandId: id,
        customerId: id,
        name: 'A',
        email: 'a@x.io',
      });
    }
    await commands.CreateOrder({ commandId: 'o', orderId: 'o-1', customerId: 'n-1' });
    const out = output();
    expect(await relayCli(['snapshot', '--restart'], { catalog }, env)).toBe(0);
    expect(out()).toMatch(/^snapshot: published 3 \(Customer: 2, Order: 1\), skipped 0$/m);
    expect(await relayCli(['snapshot'], { catalog }, env)).toBe(0);
    expect(out()).toMatch(/^snapshot: published 0 /m); // done already: resumes nothing
  });

  it('run: publishes until SIGTERM, then exits 0', async () => {
    const { catalog, codec, env, db } = await setup();
    await appendEntries(db, customerEntries(codec, ['s-1', 's-2'], 1, 3));
    const before = process.listeners('SIGTERM');
    const running = relayCli(['run'], { catalog }, env);
    await waitFor('all relayed', async () => (await outboxEntries(db)).length === 0, {
      timeoutMs: 60_000,
    });
    // Call only the relay's own handler (emitting the signal would reach jest's listeners too).
    const mine = process.listeners('SIGTERM').filter((l) => !before.includes(l));
    expect(mine).toHaveLength(1);
    mine[0]?.('SIGTERM');
    expect(await running).toBe(0);
    expect(process.listeners('SIGTERM')).toEqual(before);
  });
});
