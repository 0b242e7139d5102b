/** Shared set-up of the relay's int tests: one MongoDB client per test file, and per test a database,
 * topics and registered schemas of its own and a relay config with short timings. Only for
 * `*.int.test.ts` (needs the run's servers). */
import { afterAll, beforeAll } from '@jest/globals';
import { MongoClient, type Db } from 'mongodb';
import type { Logger } from 'pino';
import type { Catalog } from '../schemas/catalog.js';
import { EventCodec } from '../schemas/codec.js';
import { ConfluentRegistry } from '../schemas/registry.js';
import { testServers, uniqueName } from '../test/support/servers.js';
import { shopCommands, type ShopCommands } from '../test/support/shop.js';
import { MongoWriteStore } from '../write/mongo-store.js';
import { relayCollections, type RelayConfig } from './config.js';
import { MongoOutboxSource } from './mongo-outbox.js';
import { testCatalog, testRelayConfig } from './testing.js';

/** The test file's MongoDB client: connected before its tests, closed after them. */
export function mongoClientPerFile(): MongoClient {
  const client = new MongoClient(testServers().mongodbUri);
  beforeAll(async () => {
    await client.connect();
  });
  afterAll(async () => {
    await client.close();
  });
  return client;
}

export interface RelayTestEnv {
  readonly database: string;
  readonly db: Db;
  readonly catalog: Catalog;
  /** Its schemas registered. */
  readonly codec: EventCodec;
  readonly config: RelayConfig;
  /** A new outbox source over the aggregate collections of the database (or of `on`: the same
   * database through another client). */
  readonly source: (on?: Db) => MongoOutboxSource;
}

/** A database (`<database>_…`) and topics (`<prefix>_….customer`, `.order`) no other test uses. */
export async function relayTestEnv(
  client: MongoClient,
  {
    database: name = 'relay',
    prefix = 't',
    config: overrides = {},
  }: { database?: string; prefix?: string; config?: Partial<RelayConfig> } = {},
): Promise<RelayTestEnv> {
  const database = uniqueName(name);
  const catalog = testCatalog(uniqueName(prefix));
  const codec = new EventCodec(catalog, new ConfluentRegistry(testServers().schemaRegistryUrl));
  await codec.registerAll();
  const db = client.db(database);
  const config = testRelayConfig(testServers(), database, overrides);
  const source = (on: Db = db): MongoOutboxSource =>
    new MongoOutboxSource(on, {
      collections: relayCollections(
        catalog.aggregates.map((a) => a.type),
        config,
      ),
      name: config.name,
    });
  return { database, db, catalog, codec, config, source };
}

/** The shop's commands on a MongoDB write store over the env's database (collections created). */
export async function shopWriteSide(
  client: MongoClient,
  env: RelayTestEnv,
  logger: Logger,
): Promise<ShopCommands> {
  const store = new MongoWriteStore({ client, database: env.database, logger });
  await store.init(['Customer', 'Order']);
  return shopCommands(store, env.codec);
}
