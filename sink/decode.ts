/** Kafka record -> the event a projection sees, or the reason it cannot be (never throws for bad
 * data; throws only retriable errors, e.g. the registry being unreachable). */
import { createHash } from 'node:crypto';
import type { Catalog } from '../schemas/catalog.js';
import type { DecodedEvent, EventCodec } from '../schemas/codec.js';
import { fromHeaders, HEADERS, idProblem, type EventMetadata } from '../schemas/envelope.js';
import { PipelineError, isPipelineError } from '../schemas/errors.js';
import { SINK_ID_WIDTHS } from './migrations.js';
import type { Decoded, RawRecord } from './planner.js';

type KafkaHeaders = Readonly<Record<string, Buffer | string | (Buffer | string)[] | undefined>>;

export function headersToStrings(h: KafkaHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!h) return out;
  for (const k in h) {
    const v = h[k];
    const one = Array.isArray(v) ? v[0] : v;
    if (one !== undefined) out[k] = typeof one === 'string' ? one : one.toString();
  }
  return out;
}

export function rawRecord(
  topic: string,
  partition: number,
  m: { offset: string; key: Buffer | null; value: Buffer | null; headers?: KafkaHeaders },
): RawRecord {
  return {
    topic,
    partition,
    offset: m.offset,
    key: m.key,
    value: m.value,
    headers: headersToStrings(m.headers),
  };
}

/** The id itself when the bookkeeping tables can store it, else a stable stand-in for it. */
function fit(id: string, width: number): string {
  if (idProblem(id, width) === undefined) return id;
  return `unstorable:${createHash('sha256').update(id).digest('hex')}`;
}

function failed(raw: RawRecord, error: PipelineError): Decoded {
  const h = raw.headers;
  const fallbackId = `${raw.topic}:${raw.partition}:${raw.offset}`;
  const w = SINK_ID_WIDTHS;
  return {
    ok: false,
    raw,
    key: {
      aggregateType: fit(h[HEADERS.aggregateType] ?? `topic:${raw.topic}`, w.aggregateType),
      aggregateId: fit(h[HEADERS.aggregateId] ?? raw.key?.toString() ?? fallbackId, w.aggregateId),
    },
    eventId: fit(h[HEADERS.eventId] || fallbackId, w.eventId),
    eventType: fit(h[HEADERS.eventType] ?? '?', w.eventType),
    version: Number(h[HEADERS.version]) || 0,
    error,
  };
}

/** Which of the record's ids the bookkeeping tables cannot store as they are, and why. */
function unstorableIds(m: EventMetadata): string | undefined {
  const problems: string[] = [];
  for (const k of ['eventId', 'aggregateId', 'aggregateType', 'eventType'] as const) {
    const why = idProblem(m[k], SINK_ID_WIDTHS[k]);
    if (why) problems.push(`${k} ${why}`);
  }
  return problems.length > 0 ? problems.join('; ') : undefined;
}

const contextOf = (raw: RawRecord, m?: EventMetadata) => ({
  topic: raw.topic,
  partition: raw.partition,
  offset: raw.offset,
  ...(m ? { eventId: m.eventId, aggregateId: m.aggregateId, version: m.version } : {}),
});

function decoded(raw: RawRecord, m: EventMetadata, deletes: boolean, d: DecodedEvent): Decoded {
  return {
    ok: true,
    raw,
    event: {
      metadata: m,
      eventType: m.eventType,
      payload: d.value.event,
      state: d.value.state,
      deletes,
      source: { topic: raw.topic, partition: raw.partition, offset: raw.offset },
    },
  };
}

function refused(raw: RawRecord, m: EventMetadata, e: unknown): Decoded {
  if (isPipelineError(e) && !e.retriable) {
    return failed(
      raw,
      new PipelineError(e.code, e.message, {
        retriable: false,
        cause: e,
        context: contextOf(raw, m),
      }),
    );
  }
  throw e;
}

/**
 * Decodes a record; synchronous (no promise per record) once its writer schema is loaded, a
 * promise only for the first record of a schema, which fetches it from the registry. Runs once
 * per record: no closures, and error contexts built only for errors.
 */
export function decodeRecord(
  raw: RawRecord,
  codec: EventCodec,
  catalog: Catalog,
): Decoded | Promise<Decoded> {
  const parsed = fromHeaders(raw.headers);
  if (!parsed.ok) {
    return failed(
      raw,
      new PipelineError(
        'envelope_invalid',
        `bad headers: ${parsed.problems.map((p) => `${p.header} ${p.problem}`).join('; ')}`,
        { retriable: false, context: contextOf(raw) },
      ),
    );
  }
  const m = parsed.metadata;
  const wide = unstorableIds(m);
  if (wide) {
    return failed(
      raw,
      new PipelineError('envelope_invalid', `ids the sink's tables cannot keep apart: ${wide}`, {
        retriable: false,
        context: contextOf(raw),
      }),
    );
  }
  const ev = catalog.findEvent(m.eventType);
  if (!ev) {
    return failed(
      raw,
      new PipelineError('event_type_unknown', `event type ${m.eventType} is not in the catalog`, {
        retriable: false,
        context: contextOf(raw, m),
      }),
    );
  }
  if (ev.aggregateType !== m.aggregateType) {
    return failed(
      raw,
      new PipelineError(
        'envelope_invalid',
        `${m.eventType} belongs to ${ev.aggregateType}, the header says ${m.aggregateType}`,
        { retriable: false, context: contextOf(raw, m) },
      ),
    );
  }
  const value = raw.value;
  if (!value) {
    return failed(
      raw,
      new PipelineError('payload_invalid', 'record has no value (a tombstone?)', {
        retriable: false,
        context: contextOf(raw, m),
      }),
    );
  }
  let loaded: DecodedEvent | undefined;
  try {
    loaded = codec.decodeLoaded(value, m.eventType);
  } catch (e) {
    return refused(raw, m, e);
  }
  if (loaded) return decoded(raw, m, ev.deletes, loaded);
  return codec.decode(value, m.eventType).then(
    (d) => decoded(raw, m, ev.deletes, d),
    (e: unknown) => refused(raw, m, e),
  );
}
