/**
 * The relay's CLI commands in-process against the local servers (the crash tests run them as child
 * processes, where coverage is not collected): release, snapshot, and run until a signal.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { MongoClient } from 'mongodb';
import { EventCodec } from '../schemas/codec.js';
import { ConfluentRegistry } from '../schemas/registry.js';
import { testServers, uniqueName, waitFor } from '../test/support/servers.js';
import { relayCli } from './cli.js';
import { customerEntries, testCatalog } from './testing.js';

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
    RELAY_LOG_LEVEL: 'silent',
  };
  return { catalog, codec, env, outbox: client.db(database).collection('outbox') };
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
    const { catalog, codec, env, outbox } = await setup();
    await outbox.insertMany(
      customerEntries(codec, ['r-1'], 1, 2).map((e) => ({ ...e, status: 'failed' })),
    );
    const out = output();
    expect(await relayCli(['relay', 'release', 'r-1'], { catalog }, env)).toBe(0);
    expect(await outbox.countDocuments({ aggregateId: 'r-1', status: 'pending' })).toBe(2);
    expect(out()).toContain('released r-1: 2 failed entries set to pending');

    expect(await relayCli(['release', 'r-2'], { catalog }, env)).toBe(1);
    expect(out()).toContain('aggregate r-2 has no failed outbox entries');

    await outbox.updateMany({ aggregateId: 'r-1' }, { $set: { status: 'failed' } });
    expect(await relayCli(['release', 'r-1', '--skip'], { catalog }, env)).toBe(0);
    expect(out()).toContain('skipped');
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

  it('snapshot: publishes the state collections and reports the count', async () => {
    const { catalog, env } = await setup();
    const out = output();
    expect(await relayCli(['snapshot', '--restart'], { catalog }, env)).toBe(0);
    expect(out()).toMatch(/^snapshot: published 0/m);
  });

  it('run: publishes until SIGTERM, then exits 0', async () => {
    const { catalog, codec, env, outbox } = await setup();
    await outbox.insertMany(customerEntries(codec, ['s-1', 's-2'], 1, 3));
    const before = process.listeners('SIGTERM');
    const running = relayCli(['run'], { catalog }, env);
    await waitFor(
      'all relayed',
      async () => (await outbox.countDocuments({ status: 'relayed' })) === 6,
      { timeoutMs: 60_000 },
    );
    // Call only the relay's own handler (emitting the signal would reach jest's listeners too).
    const mine = process.listeners('SIGTERM').filter((l) => !before.includes(l));
    expect(mine).toHaveLength(1);
    mine[0]?.('SIGTERM');
    expect(await running).toBe(0);
    expect(process.listeners('SIGTERM')).toEqual(before);
  });
});
