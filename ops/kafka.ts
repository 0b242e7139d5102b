/**
 * The one kafkajs client factory of the relay, the sink and `cqrs-sync status`: the client id, the
 * brokers, SASL and TLS when the caller has them, kafkajs's own lines through pino, and the retry
 * policy of kafkajs's calls (its default unless given).
 */
import type { ConnectionOptions } from 'node:tls';
import { Kafka, logLevel, type LogEntry, type RetryOptions, type SASLOptions } from 'kafkajs';
import type { Logger } from 'pino';

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
