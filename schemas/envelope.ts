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

export type HeaderProblem = { readonly header: string; readonly problem: string };

/** Reads headers as kafkajs delivers them (Buffer | string | arrays). Returns the metadata, or the
 * list of what is missing or malformed (the sink dead-letters such a record as `envelope_invalid`). */
export function fromHeaders(
  headers: Readonly<Record<string, Buffer | string | (Buffer | string)[] | undefined>> | undefined,
): { ok: true; metadata: EventMetadata } | { ok: false; problems: HeaderProblem[] } {
  const problems: HeaderProblem[] = [];
  const get = (name: string): string | undefined => {
    const v = headers?.[name];
    const one = Array.isArray(v) ? v[0] : v;
    return one === undefined ? undefined : one.toString();
  };
  const need = (name: string): string => {
    const v = get(name);
    if (v === undefined || v === '') problems.push({ header: name, problem: 'missing' });
    return v ?? '';
  };
  const eventId = need(HEADERS.eventId);
  const eventType = need(HEADERS.eventType);
  const aggregateType = need(HEADERS.aggregateType);
  const aggregateId = need(HEADERS.aggregateId);
  const versionText = need(HEADERS.version);
  const schemaText = need(HEADERS.schemaId);
  const occurredText = need(HEADERS.occurredAt);
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
  const commandId = get(HEADERS.commandId);
  const traceparent = get(HEADERS.traceparent);
  const tracestate = get(HEADERS.tracestate);
  return {
    ok: true,
    metadata: {
      eventId,
      eventType,
      aggregateType,
      aggregateId,
      version,
      schemaId,
      occurredAt,
      ...(commandId ? { commandId } : {}),
      ...(traceparent ? { traceparent } : {}),
      ...(tracestate ? { tracestate } : {}),
    },
  };
}
