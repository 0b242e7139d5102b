/**
 * Every environment variable the sink reads, read once here and validated with zod. Times are in
 * milliseconds. Defaults:
 *
 * - `KAFKA_BROKERS` (required): comma-separated `host:port` list.
 * - `KAFKA_SASL_MECHANISM` (none; `plain`, `scram-sha-256`, `scram-sha-512`) with
 *   `KAFKA_SASL_USERNAME` and `KAFKA_SASL_PASSWORD`; `KAFKA_SSL` (`false`) and `KAFKA_SSL_CA_FILE`
 *   (none; PEM, read at start-up): the broker connection, read alike by both processes (ops/kafka.ts).
 * - `SCHEMA_REGISTRY_URL` (required): Confluent-compatible registry base URL.
 * - `MYSQL_URL` (required): the read-model database. Migrations, `replay` and `dlq` use it (they
 *   need DDL); the sink applies with it too unless `MYSQL_SINK_URL` is set.
 * - `MYSQL_SINK_URL` (default `MYSQL_URL`): a least-privilege account (SELECT/INSERT/UPDATE/DELETE
 *   on the read-model database) for `sink run`.
 * - `SINK_GROUP_ID` (default `cqrs-sync-sink`): the consumer group; one group per read-model database.
 * - `SINK_CLIENT_ID` (default `cqrs-sync-sink`).
 * - `SINK_TOPICS` (default: every topic of the catalog): comma-separated topics to consume.
 * - `SINK_DLT_TOPIC` (default `cqrs.sink.dlt`): the dead-letter topic, created at start-up if missing.
 * - `SINK_BATCH_SIZE` (default 500): most events applied in one MySQL transaction.
 * - `SINK_PARTITIONS_CONCURRENTLY` (default 4): partitions applied in parallel by one process.
 * - `SINK_RETRY_INITIAL_MS` (default 200), `SINK_RETRY_MAX_MS` (default 30000),
 *   `SINK_RETRY_FACTOR` (default 2): backoff with jitter for retriable failures (no limit on
 *   attempts: nothing is skipped); ops/backoff.ts, as the relay's `RELAY_RETRY_*`.
 * - `SINK_GAP_TIMEOUT_MS` (default 60000): how long events after a missing version are held before
 *   the aggregate is dead-lettered as `version_gap`.
 * - `SINK_GAP_CHECK_INTERVAL_MS` (default 5000): how often held gaps are checked for that timeout.
 * - `SINK_KAFKA_COMMIT_INTERVAL_MS` (default 1000): how often the applied offsets are also committed
 *   to Kafka (a hint for tools; MySQL's offsets are the truth), off the batches' path.
 * - `SINK_SESSION_TIMEOUT_MS` (default 30000), `SINK_HEARTBEAT_INTERVAL_MS` (default 3000).
 * - `SINK_LOCK_WAIT_TIMEOUT_MS` (default 10000): MySQL lock wait per statement (rounded up to s).
 * - `SINK_MYSQL_POOL_SIZE` (default 8).
 * - `SINK_STOP_GRACE_MS` (default 30000): how long `stop()` waits for the batch in flight, then
 *   disconnects anyway (ops/lifecycle.ts); the relay's is `RELAY_STOP_GRACE_MS`.
 * - `SINK_STOP_FORCE_MS` (default 10000): then closing the clients may take this long before
 *   `stop()` ends regardless (the hard limit; the relay's is `RELAY_STOP_FORCE_MS`).
 * - `SINK_STARTUP_TIMEOUT_MS` (default 0 = wait forever): at start-up the sink waits for MySQL, the
 *   broker and its topics (backoff of `SINK_RETRY_*`); after this long it gives up and exits 1.
 * - `SINK_OPS_PORT` (default: none): serve `/metrics`, `/healthz` and `/readyz` on this port (0 picks a
 *   free one); `SINK_OPS_HOST` (default `127.0.0.1`; `0.0.0.0` in containers).
 * - `LOG_LEVEL` (default `info`), as the relay's.
 */
import { z } from 'zod';
import {
  kafkaEnvSchema,
  kafkaSettings,
  kafkaSettingsProblems,
  type KafkaSettings,
} from '../ops/kafka.js';
import { DEFAULT_CLOSE_TIMEOUT_MS } from '../ops/lifecycle.js';
import { PipelineError } from '../schemas/errors.js';

const ms = (d: number) => z.coerce.number().int().min(0).default(d);
const positive = (d: number) => z.coerce.number().int().positive().default(d);
const mysqlUrl = z.string().regex(/^mysql:\/\//, 'must start with mysql://');
const list = z
  .string()
  .default('')
  .transform((s) =>
    s
      .split(',')
      .map((x) => x.trim())
      .filter((x) => x !== ''),
  );

const schema = z.object({
  ...kafkaEnvSchema,
  SCHEMA_REGISTRY_URL: z.url(),
  MYSQL_URL: mysqlUrl,
  MYSQL_SINK_URL: mysqlUrl.optional(),
  SINK_GROUP_ID: z.string().min(1).default('cqrs-sync-sink'),
  SINK_CLIENT_ID: z.string().min(1).default('cqrs-sync-sink'),
  SINK_TOPICS: list,
  SINK_DLT_TOPIC: z
    .string()
    .regex(/^[a-zA-Z0-9._-]{1,249}$/)
    .default('cqrs.sink.dlt'),
  SINK_BATCH_SIZE: positive(500),
  SINK_PARTITIONS_CONCURRENTLY: positive(4),
  SINK_RETRY_INITIAL_MS: positive(200),
  SINK_RETRY_MAX_MS: positive(30_000),
  SINK_RETRY_FACTOR: z.coerce.number().min(1).default(2),
  SINK_GAP_TIMEOUT_MS: ms(60_000),
  SINK_GAP_CHECK_INTERVAL_MS: positive(5_000),
  SINK_KAFKA_COMMIT_INTERVAL_MS: positive(1_000),
  SINK_SESSION_TIMEOUT_MS: positive(30_000),
  SINK_HEARTBEAT_INTERVAL_MS: positive(3_000),
  SINK_LOCK_WAIT_TIMEOUT_MS: positive(10_000),
  SINK_MYSQL_POOL_SIZE: positive(8),
  SINK_STOP_GRACE_MS: positive(30_000),
  SINK_STOP_FORCE_MS: positive(DEFAULT_CLOSE_TIMEOUT_MS),
  SINK_STARTUP_TIMEOUT_MS: ms(0),
  SINK_OPS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  SINK_OPS_HOST: z.string().min(1).default('127.0.0.1'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export interface SinkConfig extends KafkaSettings {
  readonly schemaRegistryUrl: string;
  /** DDL-capable: migrations, replay, dlq. */
  readonly mysqlAdminUrl: string;
  /** What `sink run` applies with. */
  readonly mysqlUrl: string;
  readonly groupId: string;
  readonly clientId: string;
  /** Empty: every topic of the catalog. */
  readonly topics: readonly string[];
  readonly dltTopic: string;
  readonly batchSize: number;
  readonly partitionsConcurrently: number;
  readonly retryInitialMs: number;
  readonly retryMaxMs: number;
  readonly retryFactor: number;
  readonly gapTimeoutMs: number;
  readonly gapCheckIntervalMs: number;
  /** How often the applied offsets are committed to Kafka too (a hint; MySQL's are the truth). */
  readonly kafkaCommitIntervalMs: number;
  readonly sessionTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  readonly lockWaitTimeoutMs: number;
  readonly poolSize: number;
  /** `stop()` waits this long for the batch in flight, then disconnects anyway. */
  readonly stopGraceMs: number;
  /** Then closing may take this long before `stop()` ends regardless (the hard limit). */
  readonly stopForceMs: number;
  /** Start-up gives up waiting for its dependencies after this long; 0: never. */
  readonly startupTimeoutMs: number;
  readonly logLevel: string;
  /** Port of the operations endpoint (`/metrics`, `/healthz`, `/readyz`); none when absent. */
  readonly opsPort?: number;
  readonly opsHost?: string;
}

/** Reads and validates the environment; throws `config_invalid` listing every problem. */
export function loadSinkConfig(env: NodeJS.ProcessEnv = process.env): SinkConfig {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new PipelineError(
      'config_invalid',
      `sink configuration is invalid:\n  ${problems.join('\n  ')}\n(see sink/config.ts or docs/sink.md for every variable and its default)`,
      { retriable: false },
    );
  }
  const c = parsed.data;
  return checkSinkConfig({
    ...kafkaSettings(c, 'sink'),
    schemaRegistryUrl: c.SCHEMA_REGISTRY_URL,
    mysqlAdminUrl: c.MYSQL_URL,
    mysqlUrl: c.MYSQL_SINK_URL ?? c.MYSQL_URL,
    groupId: c.SINK_GROUP_ID,
    clientId: c.SINK_CLIENT_ID,
    topics: c.SINK_TOPICS,
    dltTopic: c.SINK_DLT_TOPIC,
    batchSize: c.SINK_BATCH_SIZE,
    partitionsConcurrently: c.SINK_PARTITIONS_CONCURRENTLY,
    retryInitialMs: c.SINK_RETRY_INITIAL_MS,
    retryMaxMs: c.SINK_RETRY_MAX_MS,
    retryFactor: c.SINK_RETRY_FACTOR,
    gapTimeoutMs: c.SINK_GAP_TIMEOUT_MS,
    gapCheckIntervalMs: c.SINK_GAP_CHECK_INTERVAL_MS,
    kafkaCommitIntervalMs: c.SINK_KAFKA_COMMIT_INTERVAL_MS,
    sessionTimeoutMs: c.SINK_SESSION_TIMEOUT_MS,
    heartbeatIntervalMs: c.SINK_HEARTBEAT_INTERVAL_MS,
    lockWaitTimeoutMs: c.SINK_LOCK_WAIT_TIMEOUT_MS,
    poolSize: c.SINK_MYSQL_POOL_SIZE,
    stopGraceMs: c.SINK_STOP_GRACE_MS,
    stopForceMs: c.SINK_STOP_FORCE_MS,
    startupTimeoutMs: c.SINK_STARTUP_TIMEOUT_MS,
    logLevel: c.LOG_LEVEL,
    ...(c.SINK_OPS_PORT === undefined ? {} : { opsPort: c.SINK_OPS_PORT }),
    opsHost: c.SINK_OPS_HOST,
  });
}

/** Cross-field checks, also for configs built in code (as the relay's `checkRelayConfig`). */
export function checkSinkConfig(config: SinkConfig): SinkConfig {
  const problems: string[] = [];
  if (config.heartbeatIntervalMs * 3 > config.sessionTimeoutMs) {
    problems.push(
      `SINK_HEARTBEAT_INTERVAL_MS (${config.heartbeatIntervalMs}) must be at most a third of SINK_SESSION_TIMEOUT_MS (${config.sessionTimeoutMs}): set it to about ${Math.floor(config.sessionTimeoutMs / 10)}`,
    );
  }
  if (config.retryInitialMs > config.retryMaxMs) {
    problems.push('SINK_RETRY_INITIAL_MS must not exceed SINK_RETRY_MAX_MS');
  }
  problems.push(...kafkaSettingsProblems(config));
  if (problems.length > 0) {
    throw new PipelineError(
      'config_invalid',
      `sink configuration is invalid:\n  ${problems.join('\n  ')}`,
      {
        retriable: false,
      },
    );
  }
  return Object.freeze(config);
}
