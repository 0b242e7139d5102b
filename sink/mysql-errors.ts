/**
 * MySQL/MariaDB errors sorted into "a retry can help" (server gone, deadlock, lock wait) and "it
 * cannot" (the data breaks a constraint, the SQL is wrong): that bit decides retry versus
 * dead-letter.
 */
import { PipelineError, isPipelineError, type ErrorContext } from '../schemas/errors.js';

const RETRIABLE_ERRNOS = new Set([
  1205, // lock wait timeout
  1213, // deadlock
  1040, // too many connections
  1053, // server shutdown in progress
  1927, // connection killed (MariaDB)
  2002, // can't connect
  2003,
  2006, // server has gone away
  2013, // lost connection during query
  1290, // read-only (fail-over)
  1836, // read-only mode
  4031, // client idle timeout
]);

const RETRIABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'PROTOCOL_ENQUEUE_AFTER_FATAL_ERROR',
  'PROTOCOL_ENQUEUE_AFTER_QUIT',
  'ER_SERVER_SHUTDOWN',
  'POOL_CLOSED',
]);

interface SqlErrorLike {
  errno?: number;
  code?: string;
  sqlState?: string;
  message?: string;
}

export function isRetriableSqlError(e: unknown): boolean {
  if (typeof e !== 'object' || e === null) return false;
  const r = e as SqlErrorLike;
  if (r.errno !== undefined && RETRIABLE_ERRNOS.has(r.errno)) return true;
  if (r.code !== undefined && RETRIABLE_CODES.has(r.code)) return true;
  // A closed connection raises plain errors without errno in mysql2.
  return (
    typeof r.message === 'string' && /closed state|Connection lost|ECONNREFUSED/i.test(r.message)
  );
}

/** Any error to a PipelineError: `database_unavailable` (retriable), `constraint_violated` or
 * `projection_failed` (not retriable). PipelineErrors pass through. */
export function classifyError(e: unknown, context: ErrorContext = {}): PipelineError {
  if (isPipelineError(e)) return e;
  const r = (typeof e === 'object' && e !== null ? e : {}) as SqlErrorLike;
  const message = r.message ?? String(e);
  if (isRetriableSqlError(e)) {
    return new PipelineError('database_unavailable', `MySQL: ${message}`, {
      retriable: true,
      cause: e,
      context: { ...context, errno: r.errno, sqlCode: r.code },
    });
  }
  if (r.sqlState?.startsWith('23') || r.sqlState?.startsWith('22')) {
    return new PipelineError('constraint_violated', `MySQL rejected the data: ${message}`, {
      retriable: false,
      cause: e,
      context: { ...context, errno: r.errno, sqlCode: r.code },
    });
  }
  return new PipelineError('projection_failed', `projection failed: ${message}`, {
    retriable: false,
    cause: e,
    context: { ...context, errno: r.errno, sqlCode: r.code },
  });
}
