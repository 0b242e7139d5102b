/**
 * The one error type of the pipeline. Every error says whether a retry can help (`retriable`): that
 * bit decides retry-with-backoff versus failing the entry / dead-lettering the event. Check kinds with
 * `isPipelineError(e, code)`, not `instanceof` (modules may be loaded twice).
 */
export type PipelineErrorCode =
  // configuration and start-up
  | 'config_invalid'
  | 'startup_timeout'
  // schemas and payloads
  | 'schema_invalid'
  | 'schema_incompatible'
  | 'schema_unknown'
  | 'event_type_unknown'
  | 'payload_invalid'
  | 'payload_too_large'
  | 'envelope_invalid'
  // servers
  | 'registry_unavailable'
  | 'broker_unavailable'
  | 'database_unavailable'
  // write side; in the sink, another consumer applied an event of the batch meanwhile
  | 'concurrency_conflict'
  | 'command_invalid'
  | 'domain_rule_violated'
  | 'aggregate_not_found'
  | 'relay_behind'
  // relay and sink
  | 'lease_lost'
  | 'projection_failed'
  | 'constraint_violated'
  | 'version_gap'
  | 'stopped';

/** Where the error happened: whichever of these are known. */
export interface ErrorContext {
  readonly topic?: string;
  readonly partition?: number;
  readonly offset?: string;
  readonly eventId?: string;
  readonly eventType?: string;
  readonly aggregateType?: string;
  readonly aggregateId?: string;
  readonly version?: number;
  readonly [key: string]: string | number | boolean | undefined;
}

export interface PipelineErrorOptions {
  readonly retriable: boolean;
  readonly cause?: unknown;
  readonly context?: ErrorContext;
}

export class PipelineError extends Error {
  override readonly name = 'PipelineError';
  readonly code: PipelineErrorCode;
  readonly retriable: boolean;
  readonly context: ErrorContext;

  constructor(code: PipelineErrorCode, message: string, opts: PipelineErrorOptions) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.code = code;
    this.retriable = opts.retriable;
    this.context = opts.context ?? {};
  }

  /** For logs and dead-letter headers. */
  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      code: this.code,
      retriable: this.retriable,
      message: this.message,
      context: this.context,
      cause: this.cause instanceof Error ? this.cause.message : this.cause,
    };
  }
}

export function isPipelineError(e: unknown, code?: PipelineErrorCode): e is PipelineError {
  if (typeof e !== 'object' || e === null) return false;
  const r = e as { name?: unknown; code?: unknown; retriable?: unknown };
  return (
    r.name === 'PipelineError' &&
    typeof r.retriable === 'boolean' &&
    (code === undefined || r.code === code)
  );
}
