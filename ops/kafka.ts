/**
 * The one kafkajs client factory of the relay, the sink, `cqrs-sync status` and `verify`: the
 * client id, the brokers, SASL and TLS when the caller has them, kafkajs's own lines through pino,
 * and the retry policy of kafkajs's calls (its default unless given). The broker connection is one
 * config section, `KafkaSettings`, that both processes read from the same `KAFKA_*` variables.
 */
import type { ConnectionOptions } from 'node:tls';
import { Kafka, logLevel, type LogEntry, type RetryOptions, type SASLOptions } from 'kafkajs';
import type { Logger } from 'pino';
import { z } from 'zod';

/** The broker connection, the same section of the relay's and the sink's configs. */
export interface KafkaSettings {
  readonly kafkaBrokers: readonly string[];
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
};

/** The section from the parsed variables. */
export function kafkaSettings(env: z.infer<z.ZodObject<typeof kafkaEnvSchema>>): KafkaSettings {
  return { kafkaBrokers: env.KAFKA_BROKERS };
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
  return { clientId, brokers: settings.kafkaBrokers, ...(logger ? { logger } : {}) };
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
