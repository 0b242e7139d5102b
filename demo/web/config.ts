/**
 * Every environment variable the demo reads, read once here and validated with zod (times in ms):
 *
 * - `MONGODB_URI` (required): the write model (one document per aggregate, its outbox inside).
 * - `RELAY_OUTBOX_DATABASE` (`cqrs`): the write model's database; the same one the relay reads.
 *   Each aggregate type's collection is the default (`Customer` -> `customer`); `npm run demo`
 *   follows its in-process relay's `RELAY_AGGREGATE_COLLECTIONS`.
 * - `RELAY_NAME` (`outbox`): the relay whose lease the pipeline panel shows, as the relay reads it.
 * - `MYSQL_URL` (required): the read model. The web app reads it; migrations and re-drive use it.
 * - `MYSQL_READ_URL` (default `MYSQL_URL`): the account the query endpoints read with.
 * - `KAFKA_BROKERS` (required), `SCHEMA_REGISTRY_URL` (required): consumer lag, re-drive, the codec.
 *   `KAFKA_SASL_MECHANISM`, `KAFKA_SASL_USERNAME`, `KAFKA_SASL_PASSWORD`, `KAFKA_SSL`,
 *   `KAFKA_SSL_CA_FILE`: the broker connection, read as the relay and the sink read them.
 * - `SINK_GROUP_ID` (`cqrs-sync-sink`), `SINK_DLT_TOPIC` (`cqrs.sink.dlt`): the sink whose lag, dead
 *   letters and parked aggregates the pipeline panel shows.
 * - `DEMO_HOST` (`127.0.0.1`), `DEMO_PORT` (3000; 0 picks a free port).
 * - `DEMO_POLL_MS` (250): how often journeys and the read model's watermark are checked.
 * - `DEMO_PIPELINE_POLL_MS` (1000): how often the pipeline panel is refreshed.
 * - `DEMO_LIST_LIMIT` (100): most rows a query endpoint returns.
 * - `LOG_LEVEL` (`info`).
 */
import { z } from 'zod';
import { PipelineError } from '../../index.js';
import { kafkaEnvSchema, kafkaSettings, type KafkaSettings } from '../../ops/index.js';

const positive = (d: number) => z.coerce.number().int().positive().default(d);
const mysqlUrl = z.string().regex(/^mysql:\/\//, 'must start with mysql://');

const schema = z.object({
  MONGODB_URI: z.string().regex(/^mongodb(\+srv)?:\/\//, 'must start with mongodb://'),
  RELAY_OUTBOX_DATABASE: z.string().min(1).default('cqrs'),
  RELAY_NAME: z.string().min(1).default('outbox'),
  MYSQL_URL: mysqlUrl,
  MYSQL_READ_URL: mysqlUrl.optional(),
  ...kafkaEnvSchema,
  SCHEMA_REGISTRY_URL: z.url(),
  SINK_GROUP_ID: z.string().min(1).default('cqrs-sync-sink'),
  SINK_DLT_TOPIC: z.string().min(1).default('cqrs.sink.dlt'),
  DEMO_HOST: z.string().min(1).default('127.0.0.1'),
  DEMO_PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  DEMO_POLL_MS: positive(250),
  DEMO_PIPELINE_POLL_MS: positive(1000),
  DEMO_LIST_LIMIT: z.coerce.number().int().min(1).max(1000).default(100),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export interface DemoWebConfig extends KafkaSettings {
  readonly mongodbUri: string;
  readonly mongoDatabase: string;
  readonly relayName: string;
  readonly mysqlUrl: string;
  readonly mysqlReadUrl: string;
  readonly schemaRegistryUrl: string;
  readonly sinkGroupId: string;
  readonly dltTopic: string;
  readonly host: string;
  readonly port: number;
  readonly pollMs: number;
  readonly pipelinePollMs: number;
  readonly listLimit: number;
  readonly logLevel: string;
}

function invalid(error: z.ZodError): PipelineError {
  const problems = error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  return new PipelineError(
    'config_invalid',
    `demo configuration is invalid:\n  ${problems.join('\n  ')}\n(see demo/web/config.ts for every variable and its default)`,
    { retriable: false },
  );
}

/** Reads and checks the demo's environment; throws `config_invalid` listing every problem. */
export function loadDemoWebConfig(
  env: Readonly<Record<string, string | undefined>> = process.env,
): DemoWebConfig {
  const parsed = schema.safeParse(env);
  if (!parsed.success) throw invalid(parsed.error);
  const e = parsed.data;
  return Object.freeze({
    mongodbUri: e.MONGODB_URI,
    mongoDatabase: e.RELAY_OUTBOX_DATABASE,
    relayName: e.RELAY_NAME,
    mysqlUrl: e.MYSQL_URL,
    mysqlReadUrl: e.MYSQL_READ_URL ?? e.MYSQL_URL,
    ...kafkaSettings(e, 'demo'),
    schemaRegistryUrl: e.SCHEMA_REGISTRY_URL,
    sinkGroupId: e.SINK_GROUP_ID,
    dltTopic: e.SINK_DLT_TOPIC,
    host: e.DEMO_HOST,
    port: e.DEMO_PORT,
    pollMs: e.DEMO_POLL_MS,
    pipelinePollMs: e.DEMO_PIPELINE_POLL_MS,
    listLimit: e.DEMO_LIST_LIMIT,
    logLevel: e.LOG_LEVEL,
  });
}

export interface DemoListenConfig {
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  /** False when `port` is the default, for messages. */
  readonly portGiven: boolean;
}

/** Only where the web app will listen (`DEMO_HOST`, `DEMO_PORT`): known before any server runs, so
 * `npm run demo` can check the port first. Throws `config_invalid` like `loadDemoWebConfig`. */
export function loadDemoListenConfig(
  env: Readonly<Record<string, string | undefined>> = process.env,
): DemoListenConfig {
  const parsed = schema.pick({ DEMO_HOST: true, DEMO_PORT: true }).safeParse(env);
  if (!parsed.success) throw invalid(parsed.error);
  return Object.freeze({
    host: parsed.data.DEMO_HOST,
    port: parsed.data.DEMO_PORT,
    portGiven: env.DEMO_PORT !== undefined,
  });
}

/** The process environment with `overrides` on top (the harness's server URLs), for the in-process
 * relay, sink and web app of `npm run demo`. Relay and sink serve their operations endpoints on free
 * ports unless the environment names ports. */
export function environmentWith(
  overrides: Readonly<Record<string, string>>,
): Readonly<Record<string, string | undefined>> {
  return { RELAY_OPS_PORT: '0', SINK_OPS_PORT: '0', ...process.env, ...overrides };
}

/** What `npm run demo:load` reads: where the demo listens. */
export function loadDemoTargetDefaults(
  env: Readonly<Record<string, string | undefined>> = process.env,
): { readonly url: string } {
  const port = env.DEMO_PORT ?? '3000';
  return { url: env.DEMO_URL ?? `http://127.0.0.1:${port}` };
}
