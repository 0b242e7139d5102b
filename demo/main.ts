/**
 * `npm run demo`: the whole pipeline on local servers, in one process. Starts the servers (the
 * harness), runs the migrations, then the relay, the sink and the web app; prints the URLs; on
 * SIGINT/SIGTERM stops them in reverse order (web, sink, relay, clients, servers) and exits 0.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { MongoClient } from 'mongodb';
import mysql from 'mysql2/promise';
import { pino, type Logger } from 'pino';
import type { Registry } from 'prom-client';
import { isHarnessError } from '../infra/local/errors.js';
import { killAllNow } from '../infra/local/process.js';
import { redact, startStack, type Stack } from '../infra/local/stack.js';
import { loadRelayConfig } from '../relay/config.js';
import type { RelayHandle } from '../relay/relay.js';
import { startRelay } from '../relay/start.js';
import { isPipelineError } from '../schemas/errors.js';
import { loadSinkConfig, type SinkConfig } from '../sink/config.js';
import { runMigrations, SINK_MIGRATIONS, SINK_TABLES } from '../sink/migrations.js';
import { MysqlStore } from '../sink/mysql-store.js';
import { startSink, type SinkHandle } from '../sink/sink.js';
import { projectionTables } from '../sink/validate.js';
import { demoMigrations, demoProjections } from './read-model/projections.js';
import { environmentWith, loadDemoWebConfig } from './web/config.js';
import type { ReplayResult } from './web/pipeline.js';
import { demoCatalog, startDemoWeb, type DemoWeb } from './web/server.js';

const say = (line = ''): void => {
  process.stdout.write(`${line}\n`);
};

/** Unwinds in reverse order of start; each step once. */
class Shutdown {
  private readonly steps: { name: string; fn: () => Promise<void> }[] = [];
  add(name: string, fn: () => Promise<void>): void {
    this.steps.push({ name, fn });
  }
  async run(log: (line: string) => void): Promise<void> {
    for (const s of this.steps.splice(0).reverse()) {
      try {
        await s.fn();
      } catch (e) {
        log(`stopping ${s.name} failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  }
}

function demoLogger(runDir: string, level: string): { logger: Logger; file: string } {
  mkdirSync(runDir, { recursive: true });
  const file = path.join(runDir, 'demo.log');
  const logger = pino(
    { level },
    pino.multistream([
      { level: 'info', stream: pino.destination({ dest: file, sync: false, mkdir: true }) },
      { level: 'error', stream: process.stderr },
    ]),
  );
  return { logger, file };
}

async function migrate(mysqlUrl: string, log: (line: string) => void): Promise<void> {
  const conn = await mysql.createConnection({ uri: mysqlUrl, multipleStatements: false });
  try {
    await runMigrations(conn, [SINK_MIGRATIONS, await demoMigrations()], log);
  } finally {
    await conn.end();
  }
}

async function main(): Promise<number> {
  let signalled: NodeJS.Signals | undefined;
  // A function, not the variable: the signal handler sets it while we await.
  const stopRequested = (): boolean => signalled !== undefined;
  let wake: (() => void) | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signalled) {
      say(`\n${signal} again: killing everything now`);
      killAllNow();
      process.exit(130);
    }
    signalled = signal;
    say(`\n${signal}: stopping (again to kill at once)…`);
    wake?.();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const shutdown = new Shutdown();
  let failed = false;
  try {
    say('cqrs-sync demo: starting local servers (the first run downloads them)…');
    const stack: Stack = await startStack({ log: say });
    shutdown.add('servers', () => stack.stop());
    if (stopRequested()) return 0;

    const env = environmentWith(stack.env);
    const webConfig = loadDemoWebConfig(env);
    const { logger, file: logFile } = demoLogger(stack.config.runDir, webConfig.logLevel);
    shutdown.add(
      'logger',
      () =>
        new Promise<void>((resolve) => {
          logger.flush(() => {
            resolve();
          });
        }),
    );
    if (webConfig.mongoStandIn) {
      say('');
      say('!! WARNING: MongoDB is the mongo-java-server stand-in: it has NO TRANSACTIONS.');
      say('!! The demo writes state and outbox one after another (unsafeAllowNonTransactional):');
      say('!! a crash between them can lose an event. Never run like this in production.');
      say(
        '!! Give it a real mongod: MONGOD_BIN=/path/to/mongod, MONGOD_DOWNLOAD=1 or MONGODB_URI.',
      );
      logger.warn(
        { mongo: 'stand-in' },
        'UNSAFE DEMO MODE: MongoDB stand-in without transactions; writes are not atomic',
      );
    }

    const catalog = demoCatalog();
    say('\nmigrations…');
    await migrate(webConfig.mysqlUrl, (l) => {
      say(`  ${l}`);
    });

    const mongo = new MongoClient(webConfig.mongodbUri, { serverSelectionTimeoutMS: 3000 });
    await mongo.connect();
    shutdown.add('MongoDB client', () => mongo.close());

    const relayConfig = loadRelayConfig(env);
    const relay: RelayHandle = await startRelay({
      catalog,
      config: relayConfig,
      logger,
      mongoClient: mongo,
    });
    shutdown.add('relay', () => relay.stop());

    const sinkConfig: SinkConfig = loadSinkConfig(env);
    const runSink = () =>
      startSink({ catalog, projections: demoProjections, config: sinkConfig, logger });
    let sink: SinkHandle | undefined = await runSink();
    shutdown.add('sink', async () => {
      await sink?.stop();
    });

    const kafka = new Kafka({
      clientId: 'cqrs-sync-demo',
      brokers: [...sinkConfig.kafkaBrokers],
      logLevel: logLevel.NOTHING,
    });
    /** Rebuilds the read model from the topics: stop the sink, empty the projections' tables and
     * the sink's bookkeeping, rewind its stored offsets to each partition's earliest, start again.
     * Events carry their aggregate's state, so even a compacted topic rebuilds every row. */
    let replaying: Promise<ReplayResult> | undefined;
    const replay = (): Promise<ReplayResult> => {
      replaying ??= (async () => {
        await sink?.stop();
        sink = undefined;
        const store = new MysqlStore({ connection: sinkConfig.mysqlAdminUrl, poolSize: 1 });
        const admin = kafka.admin();
        try {
          const tables = [
            ...projectionTables(demoProjections),
            SINK_TABLES.events,
            SINK_TABLES.aggregates,
            SINK_TABLES.held,
          ];
          for (const t of tables) await store.pool.query(`DELETE FROM \`${t}\``);
          await admin.connect();
          let partitions = 0;
          for (const topic of catalog.topics()) {
            const offsets = await admin.fetchTopicOffsets(topic).catch(() => []);
            await store.setOffsets(
              sinkConfig.groupId,
              offsets.map((p) => ({ topic, partition: p.partition, next: p.low })),
            );
            partitions += offsets.length;
          }
          return { tablesCleared: tables, partitionsRewound: partitions };
        } finally {
          await admin.disconnect().catch(() => undefined);
          await store.close();
          sink = await runSink();
        }
      })().finally(() => {
        replaying = undefined;
      });
      return replaying;
    };

    const web: DemoWeb = await startDemoWeb({
      config: webConfig,
      logger,
      catalog,
      mongoClient: mongo,
      relay: () => relay,
      sink: () => sink,
      replay,
      registries: (): Registry[] => [relay.metrics, ...(sink ? [sink.metrics] : [])],
    });
    shutdown.add('web app', () => web.stop());

    say('\nrunning:');
    for (const line of stack.lines()) say(`  ${line}`);
    say(`  relay: in this process (${relay.role}), outbox ${relayConfig.database}.outbox`);
    say(`  sink: in this process, consumer group ${sinkConfig.groupId}`);
    say('\nclients connect with:');
    for (const [k, v] of Object.entries(stack.env)) say(`  ${k}=${redact(v)}`);
    say('');
    say(`demo:    ${web.url}/`);
    say(`metrics: ${web.url}/metrics   (relay and sink, Prometheus text)`);
    say(`health:  ${web.url}/healthz`);
    say(`log:     ${logFile}`);
    if (webConfig.mongoStandIn) say('(MongoDB stand-in: the page shows a warning banner)');
    say('\nCtrl-C stops everything.');

    if (!stopRequested()) {
      await new Promise<void>((resolve) => {
        wake = resolve;
        // A crash of the relay or sink ends the demo with an error.
        relay.done.catch((e: unknown) => {
          failed = true;
          say(`relay failed: ${e instanceof Error ? e.message : String(e)}`);
          resolve();
        });
      });
    }
  } catch (e) {
    failed = true;
    say(
      `\ndemo failed: ${isHarnessError(e) || isPipelineError(e) ? e.message : e instanceof Error ? (e.stack ?? e.message) : String(e)}`,
    );
  } finally {
    say('stopping…');
    await shutdown.run(say);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  say(failed ? 'demo stopped after a failure' : 'demo stopped');
  return failed ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  },
);
