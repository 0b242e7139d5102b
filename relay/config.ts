import { z } from 'zod';
import {
  kafkaEnvSchema,
  kafkaSettings,
  kafkaSettingsProblems,
  type KafkaSettings,
} from '../ops/kafka.js';
import { DEFAULT_CLOSE_TIMEOUT_MS } from '../ops/lifecycle.js';
import { PipelineError } from '../schemas/errors.js';
import { aggregateCollectionName } from '../write/outbox.js';

const ms = (def: number) => z.coerce.number().int().min(0).default(def);
const positive = (def: number) => z.coerce.number().int().positive().default(def);
const logLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

/**
 * Every environment variable the relay reads, with its default (times in milliseconds):
 * - `MONGODB_URI` (required): the write model's MongoDB.
 * - `KAFKA_BROKERS` (required): comma-separated `host:port` list.
 * - `KAFKA_SASL_MECHANISM` (none; `plain`, `scram-sha-256`, `scram-sha-512`) with
 *   `KAFKA_SASL_USERNAME` and `KAFKA_SASL_PASSWORD`; `KAFKA_SSL` (`false`) and `KAFKA_SSL_CA_FILE`
 *   (none; PEM, read at start-up): the broker connection, read alike by both processes (ops/kafka.ts).
 * - `SCHEMA_REGISTRY_URL` (required): Confluent-compatible registry (decodes payloads to check them).
 * - `RELAY_OUTBOX_DATABASE` (`cqrs`): database of the aggregate collections (whose documents hold the
 *   outbox), the lease and the relay's state.
 * - `RELAY_NAME` (`outbox`): names the lease, the resume token and snapshot checkpoints (one active
 *   relay per name).
 * - `RELAY_CLIENT_ID` (`cqrs-sync-relay`): Kafka client id, and the prefix of the lease owner id.
 * - `RELAY_BATCH_SIZE` (1000): outbox entries read and published per batch.
 * - `RELAY_SCAN_INTERVAL_MS` (5000): scan for unrelayed entries this often while idle (also picks
 *   up released aggregates).
 * - `RELAY_LEASE_TTL_MS` (6000): a lease not renewed for this long may be taken over.
 * - `RELAY_LEASE_RENEW_MS` (2000): the active relay renews this often (must be < TTL / 2).
 * - `RELAY_STANDBY_POLL_MS` (1000): a standby relay tries to take the lease this often.
 * - `RELAY_RETRY_INITIAL_MS` (200), `RELAY_RETRY_MAX_MS` (5000), `RELAY_RETRY_FACTOR` (2): backoff
 *   with jitter after an error (ops/backoff.ts, as the sink's `SINK_RETRY_*`).
 * - `RELAY_TOKEN_SAVE_INTERVAL_MS` (1000): saves the change stream's resume token at most this often.
 * - `RELAY_CHANGE_STREAM_TRIES` (3): a stored resume token whose change stream fails this many times
 *   in a row (fails to open, fails before delivering a change, or is deaf) is dropped and the outbox
 *   scanned; a token the server calls unknown or too old is dropped at once.
 * - `RELAY_CHANGE_STREAM_DEAF_MS` (15000): a stream resumed from a stored token that shows none of the
 *   relay's own marks this long after one is deaf (a failed try); 0 turns the check off.
 * - `RELAY_STOP_GRACE_MS` (15000): `stop()` waits this long for in-flight publishes, then closes
 *   anyway (ops/lifecycle.ts). `RELAY_DRAIN_TIMEOUT_MS`, its old name, is still read (deprecated).
 * - `RELAY_STOP_FORCE_MS` (10000): then closing the clients may take this long before `stop()` ends
 *   regardless (the hard limit; the sink's is `SINK_STOP_FORCE_MS`).
 * - `RELAY_SEND_TIMEOUT_MS` (30000): broker ack timeout of one batch.
 * - `RELAY_TOPIC_PARTITIONS` (6), `RELAY_TOPIC_REPLICATION_FACTOR` (-1 = broker default): for topics
 *   the relay creates (existing topics are left as they are).
 * - `RELAY_MIN_COMPACTION_LAG_MS` (86400000 = 1 day): records stay uncompacted at least this long, so a
 *   consumer less than a day behind sees every event, not only the last one per aggregate.
 * - `RELAY_AGGREGATE_COLLECTIONS` (``): collection per aggregate type, as the write side was given
 *   them: `Customer=customers,Order=orders`; default the write side's naming (`Order` -> `order`).
 * - `RELAY_OPS_PORT` (none): serve `/metrics`, `/healthz` and `/readyz` on this port (0 picks a free
 *   one); `RELAY_OPS_HOST` (`127.0.0.1`; `0.0.0.0` in containers).
 * - `RELAY_STARTUP_TIMEOUT_MS` (0 = wait forever): at start-up the relay waits for MongoDB and the
 *   broker (backoff of `RELAY_RETRY_*`); after this long it gives up and exits 1.
 * - `LOG_LEVEL` (`info`), as the sink's. `RELAY_LOG_LEVEL`, its old name, is still read (deprecated)
 *   and, when set, wins, so a shared environment can still give the relay a level of its own.
 */
const schema = z.object({
  MONGODB_URI: z.string().regex(/^mongodb(\+srv)?:\/\//, 'must start with mongodb://'),
  ...kafkaEnvSchema,
  SCHEMA_REGISTRY_URL: z.url(),
  RELAY_OUTBOX_DATABASE: z.string().min(1).default('cqrs'),
  RELAY_NAME: z.string().min(1).default('outbox'),
  RELAY_CLIENT_ID: z.string().min(1).default('cqrs-sync-relay'),
  RELAY_BATCH_SIZE: positive(1000),
  RELAY_SCAN_INTERVAL_MS: positive(5000),
  RELAY_LEASE_TTL_MS: positive(6000),
  RELAY_LEASE_RENEW_MS: positive(2000),
  RELAY_STANDBY_POLL_MS: positive(1000),
  RELAY_RETRY_INITIAL_MS: positive(200),
  RELAY_RETRY_MAX_MS: positive(5000),
  RELAY_RETRY_FACTOR: z.coerce.number().min(1).default(2),
  RELAY_TOKEN_SAVE_INTERVAL_MS: ms(1000),
  RELAY_CHANGE_STREAM_TRIES: z.coerce.number().int().min(1).max(100).default(3),
  RELAY_CHANGE_STREAM_DEAF_MS: ms(15_000),
  RELAY_STOP_GRACE_MS: z.coerce.number().int().positive().optional(),
  /** Deprecated: `RELAY_STOP_GRACE_MS`. */
  RELAY_DRAIN_TIMEOUT_MS: z.coerce.number().int().positive().optional(),
  RELAY_STOP_FORCE_MS: positive(DEFAULT_CLOSE_TIMEOUT_MS),
  RELAY_SEND_TIMEOUT_MS: positive(30_000),
  RELAY_TOPIC_PARTITIONS: positive(6),
  RELAY_TOPIC_REPLICATION_FACTOR: z.coerce.number().int().min(-1).default(-1),
  RELAY_MIN_COMPACTION_LAG_MS: ms(24 * 3600 * 1000),
  RELAY_AGGREGATE_COLLECTIONS: z.string().default(''),
  RELAY_STARTUP_TIMEOUT_MS: ms(0),
  RELAY_OPS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  RELAY_OPS_HOST: z.string().min(1).default('127.0.0.1'),
  LOG_LEVEL: logLevel.default('info'),
  /** Deprecated: `LOG_LEVEL`. */
  RELAY_LOG_LEVEL: logLevel.optional(),
});

export interface RelayConfig extends KafkaSettings {
  readonly mongodbUri: string;
  readonly schemaRegistryUrl: string;
  readonly database: string;
  /** Names the lease, the resume token and the snapshot checkpoints. */
  readonly name: string;
  readonly clientId: string;
  readonly batchSize: number;
  readonly scanIntervalMs: number;
  readonly leaseTtlMs: number;
  readonly leaseRenewMs: number;
  readonly standbyPollMs: number;
  readonly retryInitialMs: number;
  readonly retryMaxMs: number;
  readonly retryFactor: number;
  readonly tokenSaveIntervalMs: number;
  /** Failures in a row of a stream from the stored token before the token is dropped. */
  readonly changeStreamTries: number;
  /** A stream from the stored token showing no mark this long after one is deaf; 0: never. */
  readonly changeStreamDeafMs: number;
  /** `stop()` waits this long for the work in flight, then closes anyway. */
  readonly stopGraceMs: number;
  /** Then closing may take this long before `stop()` ends regardless (the hard limit). */
  readonly stopForceMs: number;
  readonly sendTimeoutMs: number;
  readonly topicPartitions: number;
  readonly topicReplicationFactor: number;
  readonly minCompactionLagMs: number;
  /** Collection per aggregate type where it differs from `aggregateCollectionName(type)`. */
  readonly aggregateCollections: Readonly<Record<string, string>>;
  readonly logLevel: string;
  /** Start-up gives up waiting for MongoDB and the broker after this long; 0: never. */
  readonly startupTimeoutMs: number;
  /** Port of the operations endpoint (`/metrics`, `/healthz`, `/readyz`); none when absent. */
  readonly opsPort?: number;
  readonly opsHost?: string;
}

/** Reads and checks the relay's environment once; bad values fail with advice. */
export function loadRelayConfig(
  env: Record<string, string | undefined> = process.env,
): RelayConfig {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new PipelineError(
      'config_invalid',
      `relay configuration is invalid:\n  ${problems.join('\n  ')}\n(see docs/relay.md for every variable and its default)`,
      { retriable: false },
    );
  }
  const e = parsed.data;
  const config: RelayConfig = {
    mongodbUri: e.MONGODB_URI,
    ...kafkaSettings(e, 'relay'),
    schemaRegistryUrl: e.SCHEMA_REGISTRY_URL,
    database: e.RELAY_OUTBOX_DATABASE,
    name: e.RELAY_NAME,
    clientId: e.RELAY_CLIENT_ID,
    batchSize: e.RELAY_BATCH_SIZE,
    scanIntervalMs: e.RELAY_SCAN_INTERVAL_MS,
    leaseTtlMs: e.RELAY_LEASE_TTL_MS,
    leaseRenewMs: e.RELAY_LEASE_RENEW_MS,
    standbyPollMs: e.RELAY_STANDBY_POLL_MS,
    retryInitialMs: e.RELAY_RETRY_INITIAL_MS,
    retryMaxMs: e.RELAY_RETRY_MAX_MS,
    retryFactor: e.RELAY_RETRY_FACTOR,
    tokenSaveIntervalMs: e.RELAY_TOKEN_SAVE_INTERVAL_MS,
    changeStreamTries: e.RELAY_CHANGE_STREAM_TRIES,
    changeStreamDeafMs: e.RELAY_CHANGE_STREAM_DEAF_MS,
    stopGraceMs: e.RELAY_STOP_GRACE_MS ?? e.RELAY_DRAIN_TIMEOUT_MS ?? 15_000,
    stopForceMs: e.RELAY_STOP_FORCE_MS,
    sendTimeoutMs: e.RELAY_SEND_TIMEOUT_MS,
    topicPartitions: e.RELAY_TOPIC_PARTITIONS,
    topicReplicationFactor: e.RELAY_TOPIC_REPLICATION_FACTOR,
    minCompactionLagMs: e.RELAY_MIN_COMPACTION_LAG_MS,
    aggregateCollections: parseMapping(e.RELAY_AGGREGATE_COLLECTIONS),
    logLevel: e.RELAY_LOG_LEVEL ?? e.LOG_LEVEL,
    startupTimeoutMs: e.RELAY_STARTUP_TIMEOUT_MS,
    ...(e.RELAY_OPS_PORT === undefined ? {} : { opsPort: e.RELAY_OPS_PORT }),
    opsHost: e.RELAY_OPS_HOST,
  };
  return checkRelayConfig(config);
}

/** Cross-field checks, also for configs built in code. */
export function checkRelayConfig(config: RelayConfig): RelayConfig {
  const problems: string[] = [];
  if (config.leaseRenewMs * 2 >= config.leaseTtlMs) {
    problems.push(
      `RELAY_LEASE_RENEW_MS (${config.leaseRenewMs}) must be less than half of RELAY_LEASE_TTL_MS (${config.leaseTtlMs}): set it to about a third`,
    );
  }
  if (config.retryInitialMs > config.retryMaxMs) {
    problems.push('RELAY_RETRY_INITIAL_MS must not exceed RELAY_RETRY_MAX_MS');
  }
  problems.push(...kafkaSettingsProblems(config));
  if (!Number.isInteger(config.changeStreamTries) || config.changeStreamTries < 1) {
    problems.push(
      `RELAY_CHANGE_STREAM_TRIES (${config.changeStreamTries}) must be a whole number of at least 1: 3 drops a bad resume token within seconds`,
    );
  }
  if (problems.length > 0) {
    throw new PipelineError(
      'config_invalid',
      `relay configuration is invalid:\n  ${problems.join('\n  ')}`,
      {
        retriable: false,
      },
    );
  }
  return Object.freeze(config);
}

function parseMapping(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of text
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const [k, v] = pair.split('=').map((s) => s.trim());
    if (!k || !v) {
      throw new PipelineError(
        'config_invalid',
        `RELAY_AGGREGATE_COLLECTIONS: "${pair}" is not Type=collection`,
        { retriable: false },
      );
    }
    out[k] = v;
  }
  return out;
}

/** The collection of every aggregate type of the catalog, in catalog order. */
export function relayCollections(
  aggregateTypes: readonly string[],
  config: Pick<RelayConfig, 'aggregateCollections'>,
): Record<string, string> {
  return Object.fromEntries(
    aggregateTypes.map((t) => [t, config.aggregateCollections[t] ?? aggregateCollectionName(t)]),
  );
}
