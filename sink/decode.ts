/** Kafka record -> the event a projection sees, or the reason it cannot be (never throws for bad
 * data; throws only retriable errors, e.g. the registry being unreachable). */
import type { Catalog } from '../schemas/catalog.js';
import type { EventCodec } from '../schemas/codec.js';
import { fromHeaders, HEADERS } from '../schemas/envelope.js';
import { PipelineError, isPipelineError } from '../schemas/errors.js';
import type { Decoded, RawRecord } from './planner.js';

type KafkaHeaders = Readonly<Record<string, Buffer | string | (Buffer | string)[] | undefined>>;

export function headersToStrings(h: KafkaHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h ?? {})) {
    const one = Array.isArray(v) ? v[0] : v;
    if (one !== undefined) out[k] = one.toString();
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

export async function decodeRecord(
  raw: RawRecord,
  codec: EventCodec,
  catalog: Catalog,
): Promise<Decoded> {
  const h = raw.headers;
  const fallbackId = `${raw.topic}:${raw.partition}:${raw.offset}`;
  const failed = (error: PipelineError): Decoded => ({
    ok: false,
    raw,
    key: {
      aggregateType: h[HEADERS.aggregateType] ?? `topic:${raw.topic}`,
      aggregateId: h[HEADERS.aggregateId] ?? raw.key?.toString() ?? fallbackId,
    },
    eventId: h[HEADERS.eventId] || fallbackId,
    eventType: h[HEADERS.eventType] ?? '?',
    version: Number(h[HEADERS.version]) || 0,
    error,
  });
  const context = { topic: raw.topic, partition: raw.partition, offset: raw.offset };
  const parsed = fromHeaders(h);
  if (!parsed.ok) {
    return failed(
      new PipelineError(
        'envelope_invalid',
        `bad headers: ${parsed.problems.map((p) => `${p.header} ${p.problem}`).join('; ')}`,
        { retriable: false, context },
      ),
    );
  }
  const m = parsed.metadata;
  const ctx = { ...context, eventId: m.eventId, aggregateId: m.aggregateId, version: m.version };
  const ev = catalog.findEvent(m.eventType);
  if (!ev) {
    return failed(
      new PipelineError('event_type_unknown', `event type ${m.eventType} is not in the catalog`, {
        retriable: false,
        context: ctx,
      }),
    );
  }
  if (ev.aggregateType !== m.aggregateType) {
    return failed(
      new PipelineError(
        'envelope_invalid',
        `${m.eventType} belongs to ${ev.aggregateType}, the header says ${m.aggregateType}`,
        { retriable: false, context: ctx },
      ),
    );
  }
  if (!raw.value) {
    return failed(
      new PipelineError('payload_invalid', 'record has no value (a tombstone?)', {
        retriable: false,
        context: ctx,
      }),
    );
  }
  try {
    const d = await codec.decode(raw.value, m.eventType);
    return {
      ok: true,
      raw,
      event: {
        metadata: m,
        eventType: m.eventType,
        payload: d.value.event,
        state: d.value.state,
        deletes: ev.deletes,
        source: { topic: raw.topic, partition: raw.partition, offset: raw.offset },
      },
    };
  } catch (e) {
    if (isPipelineError(e) && !e.retriable) {
      return failed(
        new PipelineError(e.code, e.message, { retriable: false, cause: e, context: ctx }),
      );
    }
    throw e;
  }
}
