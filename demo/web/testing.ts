/**
 * Shared set-up of the demo web app's tests: the app alone (its writer over any store, the query
 * side and the pipeline panel fakes), or the whole demo pipeline over the run's servers with a
 * read-model database of its own (int and e2e tests only).
 */
import { pino } from 'pino';
import { buildCatalog } from '../../schemas/catalog.js';
import { EventCodec } from '../../schemas/codec.js';
import { createTestDatabase, type TestDatabase } from '../../sink/testing.js';
import { testServers, uniqueName } from '../../test/support/servers.js';
import type { WriteStore } from '../../write/ports.js';
import { InMemoryRegistry } from '../../write/testing.js';
import { demoAggregates } from '../domain/definitions.js';
import { demoMigrations } from '../read-model/projections.js';
import type { DemoAppOptions } from './app.js';
import { demoWriter } from './commands.js';
import { startDemoPipeline, type DemoPipeline } from './run.js';

/** The demo's codec over an in-memory registry, its schemas registered. */
export async function demoCodec(): Promise<EventCodec> {
  const codec = new EventCodec(buildCatalog(demoAggregates), new InMemoryRegistry());
  await codec.registerAll();
  return codec;
}

/** Options of an app whose writer runs over `store`; nothing answers on the query side, and the
 * pipeline panel has no pipeline behind it. */
export async function appOptions(
  store: WriteStore,
  overrides: Partial<DemoAppOptions> = {},
): Promise<DemoAppOptions> {
  return {
    writer: demoWriter(store, await demoCodec()),
    readModel: {
      customers: () => Promise.resolve([]),
      orders: () => Promise.resolve([]),
      watermark: () => Promise.resolve(''),
    },
    journeys: { track: () => [], list: () => [], refresh: () => Promise.resolve([]) },
    pipeline: {
      status: () => Promise.reject(new Error('no pipeline in this test')),
      deadLetters: () => Promise.resolve([]),
      control: { redrive: () => Promise.reject(new Error('no pipeline in this test')) },
    },
    logger: pino({ level: 'silent' }),
    listLimit: 10,
    pollMs: 60_000,
    pipelinePollMs: 60_000,
    registries: () => [],
    ...overrides,
  };
}

export interface TestPipeline {
  readonly db: TestDatabase;
  readonly demo: DemoPipeline;
  /** Stops the pipeline and drops its database. */
  stop(): Promise<void>;
}

/** The demo pipeline (relay, sink, web app on a free port) on a database, outbox and topics named
 * `uniqueName(name)`, the read model migrated beforehand. */
export async function startTestPipeline(name: string): Promise<TestPipeline> {
  const s = testServers();
  const unique = uniqueName(name);
  const db = await createTestDatabase(s.mysqlUrl, s.mysqlSinkUrl, unique, [await demoMigrations()]);
  const demo = await startDemoPipeline({
    env: {
      MONGODB_URI: s.mongodbUri,
      KAFKA_BROKERS: s.kafkaBrokers.join(','),
      SCHEMA_REGISTRY_URL: s.schemaRegistryUrl,
      MYSQL_URL: db.adminUrl,
      MYSQL_SINK_URL: db.sinkUrl,
      RELAY_OUTBOX_DATABASE: unique,
      SINK_GROUP_ID: unique,
      SINK_DLT_TOPIC: `${unique}.dlt`,
      DEMO_PORT: '0',
      DEMO_POLL_MS: '100',
      LOG_LEVEL: 'warn',
    },
    logger: pino({ level: 'warn' }),
    catalog: buildCatalog(demoAggregates, { topicPrefix: `${unique}.` }),
    migrate: false,
  }).catch(async (e: unknown) => {
    await db.drop();
    throw e;
  });
  return {
    db,
    demo,
    stop: async () => {
      await demo.stop();
      await db.drop();
    },
  };
}
