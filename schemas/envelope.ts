import { stringProblem } from './well-formed.js';

/**
 * What travels beside the Avro value of every record, as Kafka headers (the value is
 * `{ event, state }`, see catalog.ts). The sink needs these before it decodes: the event id for
 * dedupe, the version for the gate, the aggregate for parking.
 */
export const HEADERS = {
  eventId: 'cqrs-event-id',
  eventType: 'cqrs-event-type',
  aggregateType: 'cqrs-aggregate-type',
  aggregateId: 'cqrs-aggregate-id',
  version: 'cqrs-version',
  schemaId: 'cqrs-schema-id',
  occurredAt: 'cqrs-occurred-at',
  commandId: 'cqrs-command-id',
  /** W3C trace context, as OpenTelemetry propagates it. */
  traceparent: 'traceparent',
  tracestate: 'tracestate',
} as const;

/** Set to `1` on the events `cqrs-sync verify --repair` publishes: the sink applies one even at the
 * version it already has (sink/planner.ts). */
export const REPAIR_HEADER = 'cqrs-repair';

/** Metadata of one event, as the write side records it and the headers carry it. */
export interface EventMetadata {
  /** UUID v7. */
  readonly eventId: string;
  readonly eventType: string;
  readonly aggregateType: string;
  readonly aggregateId: string;
  /** 1, 2, 3… per aggregate: the order. */
  readonly version: number;
  readonly schemaId: number;
  readonly occurredAt: Date;
  readonly commandId?: string;
  readonly traceparent?: string;
  readonly tracestate?: string;
}

export function toHeaders(m: EventMetadata): Record<string, string> {
  const h: Record<string, string> = {
    [HEADERS.eventId]: m.eventId,
    [HEADERS.eventType]: m.eventType,
    [HEADERS.aggregateType]: m.aggregateType,
    [HEADERS.aggregateId]: m.aggregateId,
    [HEADERS.version]: String(m.version),
    [HEADERS.schemaId]: String(m.schemaId),
    [HEADERS.occurredAt]: m.occurredAt.toISOString(),
  };
  if (m.commandId) h[HEADERS.commandId] = m.commandId;
  if (m.traceparent) h[HEADERS.traceparent] = m.traceparent;
  if (m.tracestate) h[HEADERS.tracestate] = m.tracestate;
  return h;
}

/**
 * Longest event or aggregate id, in characters, that the sink can deduplicate and park under (its
 * bookkeeping keys are VARCHAR(191) in utf8mb4: 764 bytes, within InnoDB's old 767-byte key limit).
 */
export const MAX_ID_CHARS = 191;

/** Characters as MySQL counts them (code points, not UTF-16 units). */
function idCharacters(id: string): number {
  let n = 0;
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    if (c < 0xd800 || c > 0xdbff) n++;
  }
  return n;
}

/**
 * Why an id cannot travel as an event or aggregate id, if it cannot: MySQL compares ids ignoring
 * trailing spaces (so "a " would be "a"), keys have a width, and a lone surrogate has no UTF-8 form.
 */
export function idProblem(id: string, width: number = MAX_ID_CHARS): string | undefined {
  if (id === '') return 'is empty';
  if (id.endsWith(' ')) return 'ends in a space, which MySQL ignores when comparing';
  const unicode = stringProblem(id);
  if (unicode !== undefined) return unicode;
  if (id.length <= width) return undefined;
  const n = idCharacters(id);
  return n <= width ? undefined : `has ${n} characters (at most ${width})`;
}

export type HeaderProblem = { readonly header: string; readonly problem: string };

/** Reads headers as kafkajs delivers them (Buffer | string | arrays). Returns the metadata, or the
 * list of what is missing or malformed (the sink dead-letters such a record as `envelope_invalid`). */
type RawHeaders = Readonly<Record<string, Buffer | string | (Buffer | string)[] | undefined>>;

function headerValue(headers: RawHeaders | undefined, name: string): string | undefined {
  const v = headers?.[name];
  const one = Array.isArray(v) ? v[0] : v;
  return one === undefined ? undefined : one.toString();
}

// Module-level, not closures: this runs once per record on the sink's hot path.
function required(
  headers: RawHeaders | undefined,
  name: string,
  problems: HeaderProblem[],
): string {
  const v = headerValue(headers, name);
  if (v === undefined || v === '') problems.push({ header: name, problem: 'missing' });
  return v ?? '';
}

export function fromHeaders(
  headers: RawHeaders | undefined,
): { ok: true; metadata: EventMetadata } | { ok: false; problems: HeaderProblem[] } {
  const problems: HeaderProblem[] = [];
  const eventId = required(headers, HEADERS.eventId, problems);
  const eventType = required(headers, HEADERS.eventType, problems);
  const aggregateType = required(headers, HEADERS.aggregateType, problems);
  const aggregateId = required(headers, HEADERS.aggregateId, problems);
  const versionText = required(headers, HEADERS.version, problems);
  const schemaText = required(headers, HEADERS.schemaId, problems);
  const occurredText = required(headers, HEADERS.occurredAt, problems);
  const version = Number(versionText);
  if (versionText && (!Number.isSafeInteger(version) || version < 1)) {
    problems.push({
      header: HEADERS.version,
      problem: `"${versionText}" is not a version (1, 2, …)`,
    });
  }
  const schemaId = Number(schemaText);
  if (schemaText && (!Number.isSafeInteger(schemaId) || schemaId < 0)) {
    problems.push({ header: HEADERS.schemaId, problem: `"${schemaText}" is not a schema id` });
  }
  const occurredAt = new Date(occurredText);
  if (occurredText && Number.isNaN(occurredAt.getTime())) {
    problems.push({ header: HEADERS.occurredAt, problem: `"${occurredText}" is not a timestamp` });
  }
  if (problems.length > 0) return { ok: false, problems };
  const metadata: {
    -readonly [K in keyof EventMetadata]: EventMetadata[K];
  } = { eventId, eventType, aggregateType, aggregateId, version, schemaId, occurredAt };
  const commandId = headerValue(headers, HEADERS.commandId);
  const traceparent = headerValue(headers, HEADERS.traceparent);
  const tracestate = headerValue(headers, HEADERS.tracestate);
  if (commandId) metadata.commandId = commandId;
  if (traceparent) metadata.traceparent = traceparent;
  if (tracestate) metadata.tracestate = tracestate;
  return { ok: true, metadata };
}
