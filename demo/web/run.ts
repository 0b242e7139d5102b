/**
 * The whole demo pipeline in one process, over servers that already run: migrations, relay, sink
 * and web app. `npm run demo` runs it on the harness's servers; the e2e tests run it on theirs.
 */
import { MongoClient } from 'mongodb';
import mysql from 'mysql2/promise';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Catalog } from '../../index.js';
import { createKafkaClient, kafkaClientOptions } from '../../ops/index.js';
import { verify } from '../../verify/index.js';
import {
  loadRelayConfig,
  type RelayConfig,
  type RelayHandle,
  startRelay,
} from '../../relay/index.js';
import {
  loadSinkConfig,
  type SinkConfig,
  runMigrations,
  SINK_MIGRATIONS,
  SinkAdmin,
  startSink,
  type SinkHandle,
} from '../../sink/index.js';
import { demoMigrations, demoProjections } from '../read-model/projections.js';
import { loadDemoWebConfig, type DemoWebConfig } from './config.js';
import type { ReplayResult } from './pipeline.js';
import { demoCatalog, startDemoWeb, type DemoWeb } from './server.js';

export interface DemoPipelineOptions {
  /** Server URLs and settings, as the processes read them (relay, sink and demo config). */
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly logger: Logger;
  /** Default: the demo's aggregates with the `cqrs.` topic prefix. */
  readonly catalog?: Catalog;
  /** Run the sink's and the read model's migrations first (default true). */
  readonly migrate?: boolean;
  readonly log?: (line: string) => void;
}

export interface DemoPipeline {
  readonly web: DemoWeb;
  readonly relay: RelayHandle;
  sink(): SinkHandle | undefined;
  readonly webConfig: DemoWebConfig;
  readonly relayConfig: RelayConfig;
  readonly sinkConfig: SinkConfig;
  readonly catalog: Catalog;
  /** Settles when the relay or the sink fails (rejects), never on a clean stop. */
  readonly failed: Promise<never>;
  /** Idempotent: web app, sink, relay, then the clients, in that order. */
  stop(): Promise<void>;
}

export async function migrateReadModel(
  mysqlUrl: string,
  log: (line: string) => void = () => undefined,
): Promise<void> {
  const conn = await mysql.createConnection({ uri: mysqlUrl, multipleStatements: false });
  try {
    await runMigrations(conn, [SINK_MIGRATIONS, await demoMigrations()], log);
  } finally {
    await conn.end();
  }
}

export async function startDemoPipeline(o: DemoPipelineOptions): Promise<DemoPipeline> {
  const log = o.log ?? (() => undefined);
  const webConfig = loadDemoWebConfig(o.env);
  const relayConfig = loadRelayConfig(o.env);
  const sinkConfig = loadSinkConfig(o.env);
  const catalog = o.catalog ?? demoCatalog();
  const undo: (() => Promise<void>)[] = [];
  const unwind = async (): Promise<void> => {
    for (const fn of undo.splice(0).reverse()) await fn().catch(() => undefined);
  };
  let failedReject!: (e: unknown) => void;
  const failed = new Promise<never>((_, reject) => {
    failedReject = reject;
  });
  failed.catch(() => undefined);

  try {
    if (o.migrate ?? true) await migrateReadModel(webConfig.mysqlUrl, log);

    const mongo = new MongoClient(webConfig.mongodbUri, { serverSelectionTimeoutMS: 3000 });
    await mongo.connect();
    undo.push(() => mongo.close());

    const relay = await startRelay({
      catalog,
      config: relayConfig,
      logger: o.logger,
      mongoClient: mongo,
    });
    undo.push(() => relay.stop());
    relay.done.catch((e: unknown) => {
      failedReject(e);
    });

    const runSink = async (): Promise<SinkHandle> => {
      const handle = await startSink({
        catalog,
        projections: demoProjections,
        config: sinkConfig,
        logger: o.logger,
      });
      handle.done.catch((e: unknown) => {
        failedReject(e);
      });
      return handle;
    };
    let sink: SinkHandle | undefined = await runSink();
    undo.push(async () => {
      await sink?.stop();
    });

    const kafka = createKafkaClient(kafkaClientOptions(sinkConfig, 'cqrs-sync-demo'));
    /** Rebuilds the read model from the topics: stop the sink, empty the projections' tables and
     * the sink's bookkeeping, rewind its stored offsets to each partition's earliest, start again.
     * Events carry their aggregate's state, so even a compacted topic rebuilds every row. */
    let replaying: Promise<ReplayResult> | undefined;
    const replay = (): Promise<ReplayResult> => {
      replaying ??= (async () => {
        await sink?.stop();
        sink = undefined;
        const sinkAdmin = new SinkAdmin({
          connection: sinkConfig.mysqlAdminUrl,
          poolSize: 1,
          group: sinkConfig.groupId,
        });
        const admin = kafka.admin();
        try {
          const tables = await sinkAdmin.prepareRebuild(demoProjections, 'in-place');
          await admin.connect();
          let partitions = 0;
          for (const topic of catalog.topics()) {
            const offsets = await admin.fetchTopicOffsets(topic).catch(() => []);
            await sinkAdmin.setOffsets(
              offsets.map((p) => ({ topic, partition: p.partition, next: p.low })),
            );
            partitions += offsets.length;
          }
          o.logger.warn(
            { tables, partitions },
            'replay: read model emptied, sink rewound to earliest',
          );
          return { tablesCleared: tables, partitionsRewound: partitions };
        } finally {
          await admin.disconnect().catch(() => undefined);
          await sinkAdmin.close();
          sink = await runSink();
        }
      })().finally(() => {
        replaying = undefined;
      });
      return replaying;
    };

    const web = await startDemoWeb({
      config: webConfig,
      logger: o.logger,
      catalog,
      mongoClient: mongo,
      aggregateCollections: relayConfig.aggregateCollections,
      relay: () => relay,
      sink: () => sink,
      replay,
      // With the settings the relay and the sink read; recorded like any run (status shows it).
      verify: (repair) =>
        verify({
          catalog,
          projections: demoProjections,
          env: { ...o.env },
          repair,
          logger: o.logger,
        }),
      registries: (): Registry[] => [relay.metrics, ...(sink ? [sink.metrics] : [])],
    });
    undo.push(() => web.stop());

    let stopping: Promise<void> | undefined;
    return {
      web,
      relay,
      sink: () => sink,
      webConfig,
      relayConfig,
      sinkConfig,
      catalog,
      failed,
      stop: () => (stopping ??= unwind()),
    };
  } catch (e) {
    await unwind();
    throw e;
  }
}
