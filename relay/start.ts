import type { Kafka } from 'kafkajs';
import { MongoClient } from 'mongodb';
import type { Logger } from 'pino';
import type { Catalog } from '../schemas/catalog.js';
import { EventCodec } from '../schemas/codec.js';
import { ConfluentRegistry, type RegistryPort } from '../schemas/registry.js';
import type { OpsServer } from '../ops/http.js';
import { createKafkaClient, kafkaClientOptions } from '../ops/kafka.js';
import { startOpsEndpoint } from '../ops/process-runner.js';
import { StartupWait, addressOf } from '../ops/startup.js';
import { withAdmin } from '../ops/topics.js';
import { loadRelayConfig, relayCollections, type RelayConfig } from './config.js';
import { KafkaPublisher } from './kafka-publisher.js';
import { MongoLeaseStore, MongoOutboxSource } from './mongo-outbox.js';
import { Relay, type RelayHandle } from './relay.js';
import { retryBackoff } from '../ops/backoff.js';
import { createLogger } from '../ops/logger.js';

export interface StartRelayOptions {
  readonly catalog: Catalog;
  /** Default: `loadRelayConfig()` (the environment). */
  readonly config?: RelayConfig;
  readonly logger?: Logger;
  /** Borrowed clients (not closed by the relay); created from the config when absent. */
  readonly mongoClient?: MongoClient;
  readonly kafka?: Kafka;
  readonly registry?: RegistryPort;
  /** Lease owner id (default: client id, host, pid, random). */
  readonly owner?: string;
  /** Aborting ends the start-up wait (SIGTERM while a dependency is down). */
  readonly signal?: AbortSignal;
}

/**
 * Starts a relay with the MongoDB and Kafka adapters. Resolves once it runs (it may be standby).
 * Until MongoDB and the broker answer it waits (see ops/startup.ts), serving `/readyz` as not ready;
 * it rejects only on an error a retry cannot fix, after `startupTimeoutMs`, or when `signal` aborts
 * (a `stopped` error).
 */
export async function startRelay(options: StartRelayOptions): Promise<RelayHandle> {
  const config = options.config ?? loadRelayConfig();
  const logger = options.logger ?? createLogger(config.logLevel);
  // A client passed in is borrowed; one made here is closed with the relay.
  const mongo =
    options.mongoClient ?? new MongoClient(config.mongodbUri, { serverSelectionTimeoutMS: 10_000 });
  const ownMongo = options.mongoClient ? undefined : mongo;
  const kafka = options.kafka ?? kafkaClient(config, logger);
  const db = mongo.db(config.database);
  // Set once the operations endpoint is up; closed with the relay.
  const owned: { ops?: OpsServer | undefined } = {};
  const source = new MongoOutboxSource(db, {
    collections: relayCollections(
      options.catalog.aggregates.map((a) => a.type),
      config,
    ),
    name: config.name,
  });
  const publisher = new KafkaPublisher(kafka, { ...config, logger });
  const closeOwned = async (): Promise<void> => {
    await owned.ops?.close();
    await ownMongo?.close();
  };
  const relay = new Relay({
    catalog: options.catalog,
    codec: new EventCodec(
      options.catalog,
      options.registry ?? new ConfluentRegistry(config.schemaRegistryUrl),
    ),
    config,
    logger,
    source,
    publisher,
    leases: new MongoLeaseStore(db, config.name),
    ...(options.owner ? { owner: options.owner } : {}),
    closeOwned,
  });
  const startup = new StartupWait({
    logger: logger.child({ component: 'relay' }),
    timeoutMs: config.startupTimeoutMs,
    setting: 'RELAY_STARTUP_TIMEOUT_MS',
    backoff: retryBackoff(config),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  owned.ops = await startOpsEndpoint({
    port: config.opsPort,
    host: config.opsHost,
    log: logger,
    registries: [relay.metrics],
    // While starting, what it waits for; then the relay's own checks.
    readiness: () =>
      startup.done
        ? relay.readiness()
        : Promise.resolve({
            state: { ok: false, detail: 'starting' },
            startup: startup.readiness(),
          }),
    liveness: () => relay.state !== 'failed',
  });
  relay.opsUrl = owned.ops?.url;
  try {
    // The same calls `relay.start()` makes first (both idempotent): done here, they are retried.
    await startup.waitFor([
      {
        name: 'mongodb',
        address: addressOf(config.mongodbUri),
        check: () => source.ensureIndexes(),
      },
      {
        // A bare probe first: the publisher's client retries inside each call (seconds), where
        // the wait should log each attempt.
        name: 'kafka',
        address: config.kafkaBrokers.join(','),
        check: () =>
          withAdmin(kafka, async (admin) => {
            await admin.describeCluster();
          }),
      },
      {
        name: 'topics',
        address: config.kafkaBrokers.join(','),
        check: () => publisher.ensureTopics(options.catalog.topics()),
      },
    ]);
  } catch (e) {
    await relay.abort(e);
    throw e;
  }
  await relay.start();
  return relay;
}

/** The relay's kafkajs client (ops/kafka.ts), its calls retried up to `retryMaxMs` apart. */
export function kafkaClient(config: RelayConfig, logger: Logger): Kafka {
  return createKafkaClient({
    ...kafkaClientOptions(config, config.clientId, logger),
    retry: { retries: 5, initialRetryTime: 300, maxRetryTime: config.retryMaxMs },
  });
}
