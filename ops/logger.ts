/**
 * The one pino logger factory of the processes (relay, sink, CLI, demo). Every line it writes is
 * redacted (ops/redact.ts): URL passwords in the message, in any string field (nested ones and a
 * child's bindings too) and in serialized errors, and the values of secret-looking keys. A logger a
 * user passes in is used as it is.
 */
import pino, { type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import { SECRET_FIELDS, redactField, redactUrls, redactValue } from './redact.js';

/** pino's error serializer, then the same redaction over its result (message, stack, context
 * fields, and the causes it serialized: objects of pino's own prototype, hence copied here). */
function serializeError(e: unknown): unknown {
  const s: unknown = pino.stdSerializers.err(e as Error);
  if (typeof s !== 'object' || s === null) return redactValue(s);
  const { cause, ...rest } = s as Record<string, unknown>;
  return {
    ...(redactValue(rest) as Record<string, unknown>),
    ...(cause === undefined ? {} : { cause: serializeError(cause) }),
  };
}

export const REDACTING_OPTIONS: LoggerOptions = {
  // `*`: every top-level field of a line and of a child's bindings, after its serializer (pino
  // passes no key then); the named ones are the top-level secret fields, passed with their key.
  redact: {
    paths: ['*', ...SECRET_FIELDS],
    censor: (value: unknown, path: (string | symbol)[]) => {
      const key = path[0];
      return typeof key === 'string' ? redactField(key, value) : redactValue(value);
    },
  },
  serializers: { err: serializeError },
  hooks: {
    logMethod(args, method) {
      method.apply(
        this,
        args.map((a: unknown) => (typeof a === 'string' ? redactUrls(a) : a)) as Parameters<
          typeof method
        >,
      );
    },
  },
};

export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = { ...REDACTING_OPTIONS, level };
  return destination ? pino(options, destination) : pino(options);
}
