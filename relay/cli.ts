import { MongoClient } from 'mongodb';
import type { Logger } from 'pino';
import type { Catalog } from '../schemas/catalog.js';
import { EventCodec } from '../schemas/codec.js';
import { isPipelineError } from '../schemas/errors.js';
import { ConfluentRegistry } from '../schemas/registry.js';
import { loadRelayConfig, relayCollections, type RelayConfig } from './config.js';
import { KafkaPublisher } from './kafka-publisher.js';
import { MongoCheckpointStore, MongoOutboxSource } from './mongo-outbox.js';
import { runSnapshot } from './snapshot.js';
import { kafkaClient, startRelay } from './start.js';
import { createLogger } from '../ops/logger.js';
import { runProcess } from '../ops/process-runner.js';

export const RELAY_HELP = `Usage: cqrs-sync relay [run | snapshot [--restart] | release <aggregateId> [--skip] | --help]

  relay [run]                     publish the aggregates' unrelayed events to Kafka until SIGTERM/SIGINT
                                  (one active relay per RELAY_NAME; others wait as standby and take over
                                  within the lease TTL)
  relay snapshot [--restart]      publish the current state of every aggregate as <Type>Snapshotted
                                  (initial load); resumes from its checkpoint unless --restart
  relay release <aggregateId>     retry the aggregate's failed outbox entries (after fixing them), which
                                  un-holds the aggregate; with --skip they are skipped instead

Configuration comes from the environment (see docs/relay.md): MONGODB_URI, KAFKA_BROKERS,
SCHEMA_REGISTRY_URL, RELAY_OUTBOX_DATABASE (cqrs), RELAY_NAME (outbox), RELAY_AGGREGATE_COLLECTIONS,
RELAY_BATCH_SIZE…

Examples:
  MONGODB_URI=mongodb://db:27017/?replicaSet=rs0 KAFKA_BROKERS=kafka:9092 \\
  SCHEMA_REGISTRY_URL=http://registry:8081 cqrs-sync relay
  cqrs-sync relay snapshot
  cqrs-sync relay release order-4711 --skip
`;

/**
 * `cqrs-sync relay …`. Returns the exit code: 0 after a clean stop (SIGTERM/SIGINT), 1 on a crash or
 * a failed command, 2 on usage or configuration errors. `argv` may start with `relay`.
 */
export async function relayCli(
  argv: string[],
  user: { catalog: Catalog },
  env: Record<string, string | undefined> = process.env,
): Promise<number> {
  const args = argv[0] === 'relay' ? argv.slice(1) : argv;
  const [command = 'run', ...rest] = args;
  if (command === '--help' || command === '-h' || command === 'help' || rest.includes('--help')) {
    process.stdout.write(RELAY_HELP);
    return 0;
  }
  let config: RelayConfig;
  try {
    config = loadRelayConfig(env);
  } catch (e) {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    return 2;
  }
  const logger = createLogger(config.logLevel);
  switch (command) {
    case 'run':
      return run(user.catalog, config, logger);
    case 'snapshot':
      return snapshot(user.catalog, config, logger, rest.includes('--restart'));
    case 'release': {
      const id = rest.find((a) => !a.startsWith('--'));
      if (!id) {
        process.stderr.write(`relay release needs an aggregate id\n\n${RELAY_HELP}`);
        return 2;
      }
      return release(user.catalog, config, id, rest.includes('--skip') ? 'skip' : 'retry');
    }
    default:
      process.stderr.write(`unknown relay command "${command}"\n\n${RELAY_HELP}`);
      return 2;
  }
}

function run(catalog: Catalog, config: RelayConfig, logger: Logger): Promise<number> {
  return runProcess({
    name: 'relay',
    logger,
    start: (signal) => startRelay({ catalog, config, logger, signal }),
  });
}

async function snapshot(
  catalog: Catalog,
  config: RelayConfig,
  logger: Logger,
  restart: boolean,
): Promise<number> {
  const mongo = new MongoClient(config.mongodbUri, { serverSelectionTimeoutMS: 10_000 });
  const publisher = new KafkaPublisher(kafkaClient(config, logger), { ...config, logger });
  try {
    const codec = new EventCodec(catalog, new ConfluentRegistry(config.schemaRegistryUrl));
    await codec.registerAll();
    await publisher.ensureTopics(catalog.topics());
    const db = mongo.db(config.database);
    const result = await runSnapshot({
      catalog,
      codec,
      db,
      publisher,
      checkpoints: new MongoCheckpointStore(db),
      logger,
      batchSize: config.batchSize,
      collections: config.aggregateCollections,
      name: config.name,
      restart,
    });
    process.stdout.write(
      `snapshot: published ${result.published} (${Object.entries(result.byType)
        .map(([t, n]) => `${t}: ${n}`)
        .join(', ')}), skipped ${result.skipped}\n`,
    );
    return 0;
  } catch (e) {
    logger.error({ err: e }, 'snapshot failed (run it again: it resumes from its checkpoint)');
    return 1;
  } finally {
    await publisher.close();
    await mongo.close();
  }
}

async function release(
  catalog: Catalog,
  config: RelayConfig,
  aggregateId: string,
  mode: 'retry' | 'skip',
): Promise<number> {
  const mongo = new MongoClient(config.mongodbUri, { serverSelectionTimeoutMS: 10_000 });
  try {
    const source = new MongoOutboxSource(mongo.db(config.database), {
      collections: relayCollections(
        catalog.aggregates.map((a) => a.type),
        config,
      ),
    });
    const n = await source.release(aggregateId, mode);
    if (n === 0) {
      process.stderr.write(
        `aggregate ${aggregateId} has no failed outbox entries: nothing released\n`,
      );
      return 1;
    }
    process.stdout.write(
      `released ${aggregateId}: ${n} failed ${n === 1 ? 'entry' : 'entries'} ${mode === 'skip' ? 'skipped' : 'set to pending'}; the relay picks ${mode === 'skip' ? 'the later versions' : 'them'} up at its next scan\n`,
    );
    return 0;
  } catch (e) {
    process.stderr.write(`release failed: ${isPipelineError(e) ? e.message : String(e)}\n`);
    return 1;
  } finally {
    await mongo.close();
  }
}
