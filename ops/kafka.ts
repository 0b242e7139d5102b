/**
 * The one kafkajs client factory of the relay, the sink, `cqrs-sync status` and `verify`: the
 * client id, the brokers, SASL and TLS when the caller has them, kafkajs's own lines through pino,
 * and the retry policy of kafkajs's calls (its default unless given). The broker connection is one
 * config section, `KafkaSettings`, that both processes read from the same `KAFKA_*` variables.
 */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { Kafka, logLevel, type LogEntry, type RetryOptions, type SASLOptions } from 'kafkajs';
import type { Logger } from 'pino';
import { z } from 'zod';
import { PipelineError } from '../schemas/errors.js';

export const KAFKA_SASL_MECHANISMS = ['plain', 'scram-sha-256', 'scram-sha-512'] as const;

/** SASL credentials (the password is a `password` field, which every log line masks). */
export interface KafkaSasl {
  readonly mechanism: (typeof KAFKA_SASL_MECHANISMS)[number];
  readonly username: string;
  readonly password: string;
}

/** The broker connection, the same section of the relay's and the sink's configs. */
export interface KafkaSettings {
  readonly kafkaBrokers: readonly string[];
  /** null: no authentication. */
  readonly kafkaSasl: KafkaSasl | null;
  /** TLS: off, on with the system's CAs, or on with the CA certificates (PEM) read at start-up. */
  readonly kafkaSsl: boolean | { readonly ca: string };
}

/** The `KAFKA_*` variables, spread into each process's config schema (one parse for both). */
export const kafkaEnvSchema = {
  KAFKA_BROKERS: z
    .string()
    .default('')
    .transform((s) =>
      s
        .split(',')
        .map((b) => b.trim())
        .filter((b) => b !== ''),
    )
    .pipe(z.array(z.string()).min(1, 'lists no broker: give at least one host:port')),
  KAFKA_SASL_MECHANISM: z
    .string()
    .trim()
    .toLowerCase()
    .pipe(z.enum(KAFKA_SASL_MECHANISMS))
    .optional(),
  KAFKA_SASL_USERNAME: z.string().optional(),
  KAFKA_SASL_PASSWORD: z.string().optional(),
  KAFKA_SSL: z
    .enum(['true', 'false'], { error: 'must be true or false' })
    .default('false')
    .transform((v) => v === 'true'),
  KAFKA_SSL_CA_FILE: z.string().min(1).optional(),
};

export type KafkaEnv = z.infer<z.ZodObject<typeof kafkaEnvSchema>>;

/**
 * The section from the parsed variables; reads `KAFKA_SSL_CA_FILE` now, so that a missing file
 * fails the start, not the first connection. Throws `config_invalid` naming every problem (never
 * the password).
 */
export function kafkaSettings(
  env: KafkaEnv,
  /** Names the configuration in the error: `relay`, `sink`, `demo`. */
  owner: string,
  readFile: (path: string) => string = (p) => readFileSync(p, 'utf8'),
): KafkaSettings {
  const problems: string[] = [];
  const { KAFKA_SASL_MECHANISM: mechanism, KAFKA_SASL_USERNAME: username } = env;
  const password = env.KAFKA_SASL_PASSWORD;
  let sasl: KafkaSasl | null = null;
  if (mechanism) {
    if (!username || !password) {
      problems.push(
        `KAFKA_SASL_MECHANISM is ${mechanism}: set KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD too`,
      );
    } else sasl = { mechanism, username, password };
  } else if (username || password) {
    problems.push(
      `KAFKA_SASL_USERNAME or KAFKA_SASL_PASSWORD is set without KAFKA_SASL_MECHANISM: set it to ${KAFKA_SASL_MECHANISMS.join(', ')}`,
    );
  }
  let ssl: KafkaSettings['kafkaSsl'] = env.KAFKA_SSL;
  const caFile = env.KAFKA_SSL_CA_FILE;
  if (caFile !== undefined) {
    if (!env.KAFKA_SSL) {
      problems.push('KAFKA_SSL_CA_FILE is set but KAFKA_SSL is not true: set KAFKA_SSL=true');
    } else {
      try {
        const ca = readFile(caFile);
        if (ca.includes('-----BEGIN CERTIFICATE-----')) ssl = { ca };
        else problems.push(`KAFKA_SSL_CA_FILE (${caFile}) holds no PEM certificate`);
      } catch (e) {
        problems.push(
          `KAFKA_SSL_CA_FILE (${caFile}) cannot be read: ${(e as { message?: string }).message ?? String(e)}`,
        );
      }
    }
  }
  if (problems.length > 0) {
    throw new PipelineError(
      'config_invalid',
      `${owner} configuration is invalid:\n  ${problems.join('\n  ')}`,
      { retriable: false },
    );
  }
  return { kafkaBrokers: env.KAFKA_BROKERS, kafkaSasl: sasl, kafkaSsl: ssl };
}

/** Checks of the section, also for configs built in code: problems, each with advice. */
export function kafkaSettingsProblems(settings: KafkaSettings): string[] {
  return settings.kafkaBrokers.length === 0 ? ['KAFKA_BROKERS lists no broker'] : [];
}

/** The one mapping of the section to client options; callers add their timeouts and retries. */
export function kafkaClientOptions(
  settings: KafkaSettings,
  clientId: string,
  logger?: Logger,
): KafkaClientOptions {
  const { kafkaSasl: sasl, kafkaSsl: ssl } = settings;
  return {
    clientId,
    brokers: settings.kafkaBrokers,
    ...(logger ? { logger } : {}),
    ...(sasl ? { sasl: { ...sasl } } : {}),
    ...(ssl === false ? {} : { ssl: ssl === true ? true : { ca: [ssl.ca] } }),
  };
}

export interface KafkaClientOptions {
  readonly clientId: string;
  readonly brokers: readonly string[];
  /** kafkajs's warnings and errors go here (as `component: 'kafkajs'`); none: kafkajs is silent. */
  readonly logger?: Logger;
  readonly retry?: RetryOptions;
  readonly connectionTimeout?: number;
  readonly sasl?: SASLOptions;
  readonly ssl?: boolean | ConnectionOptions;
}

export function createKafkaClient(o: KafkaClientOptions): Kafka {
  return new Kafka({
    clientId: o.clientId,
    brokers: [...o.brokers],
    logLevel: o.logger ? logLevel.WARN : logLevel.NOTHING,
    ...(o.logger ? { logCreator: kafkaLogCreator(o.logger.child({ component: 'kafkajs' })) } : {}),
    ...(o.retry ? { retry: o.retry } : {}),
    ...(o.connectionTimeout === undefined ? {} : { connectionTimeout: o.connectionTimeout }),
    ...(o.sasl ? { sasl: o.sasl } : {}),
    ...(o.ssl === undefined ? {} : { ssl: o.ssl }),
  });
}

/** kafkajs's log lines as pino records: errors as errors, warnings as warnings, the rest debug. */
export function kafkaLogCreator(log: Logger) {
  return () =>
    ({ level, log: entry }: Pick<LogEntry, 'level' | 'log'>): void => {
      const { message, ...rest } = entry;
      if (level <= logLevel.ERROR) log.error(rest, message);
      else if (level === logLevel.WARN) log.warn(rest, message);
      else log.debug(rest, message);
    };
}
