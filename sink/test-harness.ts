/** Shared set-up of the sink's int tests: a catalog with topics of its own, the registry, a
 * database with the test shop's read model (test/support/shop-read-model.ts), a producer. Only for `*.int.test.ts` (needs the run's servers). */
import { Kafka, logLevel, type Producer } from 'kafkajs';
import pino from 'pino';
import { buildCatalog, type Catalog } from '../schemas/catalog.js';
import { EventCodec } from '../schemas/codec.js';
import { ConfluentRegistry } from '../schemas/registry.js';
import { testServers, uniqueName } from '../test/support/servers.js';
import { shopAggregates } from '../test/support/shop.js';
import { SHOP_MIGRATIONS } from '../test/support/shop-read-model.js';
import { loadSinkConfig, type SinkConfig } from './config.js';
import type { Projection } from './projection.js';
import { startSink, type SinkHandle } from './sink.js';
import {
  APPLIED_LOG_MIGRATIONS,
  createTestDatabase,
  createTopics,
  eventRecord,
  produce,
  type EventSpec,
  testProjections,
  type TestDatabase,
} from './testing.js';

export interface SinkTestEnv {
  readonly prefix: string;
  readonly catalog: Catalog;
  readonly codec: EventCodec;
  readonly kafka: Kafka;
  readonly producer: Producer;
  readonly db: TestDatabase;
  readonly group: string;
  readonly dlt: string;
  readonly env: Record<string, string>;
  config(extra?: Record<string, string>): SinkConfig;
  send(specs: readonly EventSpec[]): Promise<void>;
  start(extra?: Record<string, string>, projections?: readonly Projection[]): Promise<SinkHandle>;
  close(): Promise<void>;
}

export async function sinkTestEnv(
  name: string,
  {
    partitions = 3,
    mysqlUrl,
    logLevelName = 'warn',
  }: {
    partitions?: number;
    mysqlUrl?: { admin: string; sink: string };
    logLevelName?: string;
  } = {},
): Promise<SinkTestEnv> {
  const servers = testServers();
  const prefix = `${uniqueName(name)}.`;
  const catalog = buildCatalog(shopAggregates, { topicPrefix: prefix });
  const codec = new EventCodec(catalog, new ConfluentRegistry(servers.schemaRegistryUrl));
  await codec.registerAll();
  const kafka = new Kafka({
    clientId: name,
    brokers: servers.kafkaBrokers,
    logLevel: logLevel.NOTHING,
  });
  await createTopics(kafka, catalog.topics(), partitions);
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const db = await createTestDatabase(
    mysqlUrl?.admin ?? servers.mysqlUrl,
    mysqlUrl?.sink ?? servers.mysqlSinkUrl,
    uniqueName(name),
    [SHOP_MIGRATIONS, APPLIED_LOG_MIGRATIONS],
  );
  const group = uniqueName(`${name}_group`);
  const dlt = uniqueName(`${name}_dlt`);
  const env: Record<string, string> = {
    KAFKA_BROKERS: servers.kafkaBrokers.join(','),
    SCHEMA_REGISTRY_URL: servers.schemaRegistryUrl,
    MYSQL_URL: db.adminUrl,
    MYSQL_SINK_URL: db.sinkUrl,
    SINK_GROUP_ID: group,
    SINK_DLT_TOPIC: dlt,
    SINK_RETRY_INITIAL_MS: '100',
    SINK_RETRY_MAX_MS: '2000',
    SINK_SESSION_TIMEOUT_MS: '10000',
    SINK_HEARTBEAT_INTERVAL_MS: '1000',
    SINK_GAP_CHECK_INTERVAL_MS: '200',
    LOG_LEVEL: logLevelName,
  };
  const handles: SinkHandle[] = [];
  const config = (extra: Record<string, string> = {}) => loadSinkConfig({ ...env, ...extra });
  return {
    prefix,
    catalog,
    codec,
    kafka,
    producer,
    db,
    group,
    dlt,
    env,
    config,
    send: (specs) =>
      produce(
        producer,
        specs.map((s) => eventRecord(codec, catalog, s)),
      ),
    start: async (extra = {}, projections = testProjections) => {
      const h = await startSink({
        catalog,
        projections,
        config: config(extra),
        logger: pino({ level: env.LOG_LEVEL ?? 'warn' }),
      });
      handles.push(h);
      return h;
    },
    close: async () => {
      for (const h of handles) await h.stop();
      await producer.disconnect();
      await db.drop();
    },
  };
}
