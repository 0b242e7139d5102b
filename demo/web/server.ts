/**
 * `startDemoWeb`: the web app with its clients (MongoDB for commands, MySQL for queries, Kafka for
 * lag, the registry for the codec). `npm run demo` passes the relay and sink it runs in-process;
 * `cqrs-sync demo-web` (compose) runs it alone and re-drives with a `SinkAdmin` of its own.
 */
import { MongoClient } from 'mongodb';
import mysql from 'mysql2/promise';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { buildCatalog, type Catalog, EventCodec, ConfluentRegistry } from '../../index.js';
import type { VerifyReport } from '../../verify/index.js';
import { createKafkaClient, kafkaClientOptions } from '../../ops/index.js';
import { relayCollections, type RelayHandle } from '../../relay/index.js';
import {
  KafkaDeadLetterPublisher,
  SinkAdmin,
  type RedriveResult,
  type SinkHandle,
} from '../../sink/index.js';
import { MongoWriteStore } from '../../write/mongodb.js';
import { demoAggregates } from '../domain/definitions.js';
import { demoProjections } from '../read-model/projections.js';
import { createDemoApp } from './app.js';
import { demoWriter } from './commands.js';
import type { DemoWebConfig } from './config.js';
import { JourneyTracker } from './journeys.js';
import { Pipeline, type PipelineControl, type ReplayResult } from './pipeline.js';
import { ReadModel, tamperCustomer } from './queries.js';

export interface StartDemoWebOptions {
  readonly config: DemoWebConfig;
  readonly logger: Logger;
  readonly catalog?: Catalog;
  /** In-process relay and sink (npm run demo); absent for a standalone web app. */
  readonly relay?: () => RelayHandle | undefined;
  readonly sink?: () => SinkHandle | undefined;
  readonly replay?: () => Promise<ReplayResult>;
  /** `verify` with the pipeline's settings (npm run demo); absent for a standalone web app. */
  readonly verify?: (repair: boolean) => Promise<VerifyReport>;
  readonly registries?: () => readonly Registry[];
  /** Borrowed. */
  readonly mongoClient?: MongoClient;
  /** Collection per aggregate type where it is not the default, as the relay was given them
   * (`RelayConfig.aggregateCollections`); the writer, journeys and panel use the same. */
  readonly aggregateCollections?: Readonly<Record<string, string>>;
}

export interface DemoWeb {
  readonly url: string;
  /** Idempotent: closes the HTTP server, then the clients it created. */
  stop(): Promise<void>;
}

export function demoCatalog(): Catalog {
  return buildCatalog(demoAggregates);
}

export async function startDemoWeb(o: StartDemoWebOptions): Promise<DemoWeb> {
  const { config } = o;
  const log = o.logger.child({ component: 'demo-web' });
  const catalog = o.catalog ?? demoCatalog();
  const mongo =
    o.mongoClient ?? new MongoClient(config.mongodbUri, { serverSelectionTimeoutMS: 3000 });
  const ownMongo = o.mongoClient ? undefined : mongo;
  const db = mongo.db(config.mongoDatabase);
  const registry = new ConfluentRegistry(config.schemaRegistryUrl);
  const codec = new EventCodec(catalog, registry);
  await codec.registerAll();

  // Named once, for the writer, the journeys and the panel alike: the relay's own derivation.
  const types = catalog.aggregates.map((a) => a.type);
  const collections = relayCollections(types, {
    aggregateCollections: o.aggregateCollections ?? {},
  });
  const store = new MongoWriteStore({
    client: mongo,
    database: config.mongoDatabase,
    collections,
    logger: o.logger,
  });
  await store.init(types);

  const readModel = new ReadModel(config.mysqlReadUrl, config.sinkGroupId);
  const kafka = createKafkaClient({
    ...kafkaClientOptions(config, 'cqrs-sync-demo-web'),
    connectionTimeout: 3000,
    retry: { retries: 1 },
  });

  // Re-drive with the in-process sink's applier, or with a sink admin of our own (admin account).
  let own: { admin: SinkAdmin; close: () => Promise<void> } | undefined;
  const redrive = async (target: string): Promise<RedriveResult> => {
    const inProcess = o.sink?.();
    if (inProcess && inProcess.state === 'running') return inProcess.applier.redrive(target);
    if (!own) {
      const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
      await producer.connect();
      const admin = new SinkAdmin({
        connection: config.mysqlUrl,
        poolSize: 2,
        group: config.sinkGroupId,
        catalog,
        projections: demoProjections,
        codec,
        deadLetters: new KafkaDeadLetterPublisher(producer, config.dltTopic),
      });
      own = {
        admin,
        close: async () => {
          await producer.disconnect().catch(() => undefined);
          await admin.close().catch(() => undefined);
        },
      };
    }
    return own.admin.redrive(target);
  };
  // The tamper button writes with the account migrations and re-drive use, not the read account.
  let tamperPool: mysql.Pool | undefined;
  const control: PipelineControl = {
    redrive,
    ...(o.replay ? { replay: o.replay } : {}),
    tamper: () =>
      tamperCustomer(
        (tamperPool ??= mysql.createPool({
          uri: config.mysqlUrl,
          connectionLimit: 1,
          connectTimeout: 3000,
        })),
      ),
    ...(o.verify ? { verify: o.verify } : {}),
  };

  const journeys = new JourneyTracker(db, collections, readModel, catalog);
  const pipeline = new Pipeline({
    db,
    aggregateCollections: collections,
    relayName: config.relayName,
    readModel,
    kafka,
    catalog,
    control,
    ...(o.relay ? { relay: o.relay } : {}),
    ...(o.sink ? { sink: o.sink } : {}),
  });
  const app = createDemoApp({
    writer: demoWriter(store, codec),
    readModel,
    journeys,
    pipeline,
    logger: o.logger,
    listLimit: config.listLimit,
    pollMs: config.pollMs,
    pipelinePollMs: config.pipelinePollMs,
    registries: o.registries ?? (() => []),
  });
  const url = await app.listen(config.port, config.host);
  log.info({ url }, 'demo web app listening');

  let stopping: Promise<void> | undefined;
  return {
    url,
    stop: () => {
      stopping ??= (async () => {
        await app.close();
        await pipeline.close();
        await own?.close();
        await tamperPool?.end().catch(() => undefined);
        await readModel.close().catch(() => undefined);
        await ownMongo?.close().catch(() => undefined);
        log.info('demo web app stopped');
      })();
      return stopping;
    },
  };
}
