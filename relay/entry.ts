import type { Catalog } from '../schemas/catalog.js';
import type { EventCodec } from '../schemas/codec.js';
import { MAX_RECORD_BYTES } from '../schemas/codec.js';
import { toHeaders } from '../schemas/envelope.js';
import { isPipelineError, type PipelineErrorCode } from '../schemas/errors.js';
import { outboxEntrySchema } from '../schemas/outbox-entry.js';
import type { EntryRef, OutgoingRecord, ScannedEntry, VersionStatus } from './ports.js';

/** A checked outbox entry, ready to publish. */
export interface ReadyEntry {
  readonly ref: EntryRef;
  readonly eventId: string;
  readonly aggregateType: string;
  readonly aggregateId: string;
  readonly version: number;
  readonly occurredAt: Date;
  /** An operator released it: it may pass a version gap. */
  readonly released: boolean;
  /** Its predecessor's fate, from the same document read. */
  readonly previous: VersionStatus;
  readonly record: OutgoingRecord;
}

/** A bad entry: never published; its aggregate is held. */
export interface BadEntry {
  readonly ref: EntryRef;
  readonly code: PipelineErrorCode;
  readonly reason: string;
}

export type CheckedEntry = { ok: true; entry: ReadyEntry } | { ok: false; bad: BadEntry };

/**
 * Checks one outbox entry: fields, event type known to the catalog and belonging to the entry's
 * aggregate type, size, and the payload decoding with its schema. Non-retriable problems make a
 * `BadEntry`; retriable ones (registry down) are thrown.
 */
export async function checkEntry(
  scanned: ScannedEntry,
  catalog: Catalog,
  codec: EventCodec,
): Promise<CheckedEntry> {
  const { raw, ref } = scanned;
  const bad = (code: PipelineErrorCode, reason: string): CheckedEntry => ({
    ok: false,
    bad: { ref, code, reason },
  });
  const parsed = outboxEntrySchema.safeParse(raw);
  if (!parsed.success) {
    const fields = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    return bad('envelope_invalid', `outbox entry is malformed: ${fields.join('; ')}`);
  }
  const e = parsed.data;
  if (e.aggregateId !== ref.aggregateId || e.aggregateType !== ref.aggregateType) {
    return bad(
      'envelope_invalid',
      `outbox entry says ${e.aggregateType} ${e.aggregateId} but lies in the document of ${ref.aggregateType} ${ref.aggregateId}`,
    );
  }
  const ev = catalog.findEvent(e.type);
  if (!ev) return bad('event_type_unknown', `event type "${e.type}" is not in the catalog`);
  if (ev.aggregateType !== e.aggregateType) {
    return bad(
      'envelope_invalid',
      `event type ${e.type} belongs to ${ev.aggregateType}, not ${e.aggregateType}`,
    );
  }
  const headers = toHeaders({
    eventId: e.eventId,
    eventType: e.type,
    aggregateType: e.aggregateType,
    aggregateId: e.aggregateId,
    version: e.version,
    schemaId: e.schemaId,
    occurredAt: e.occurredAt,
    ...(e.commandId ? { commandId: e.commandId } : {}),
    ...(e.traceparent ? { traceparent: e.traceparent } : {}),
    ...(e.tracestate ? { tracestate: e.tracestate } : {}),
  });
  const size =
    e.payload.length +
    Buffer.byteLength(e.aggregateId) +
    Object.entries(headers).reduce((n, [k, v]) => n + k.length + Buffer.byteLength(v), 0);
  if (size > MAX_RECORD_BYTES) {
    return bad('payload_too_large', `record is ${size} bytes, more than ${MAX_RECORD_BYTES}`);
  }
  try {
    const decoded = await codec.decode(e.payload, e.type);
    if (decoded.schemaId !== e.schemaId) {
      return bad(
        'payload_invalid',
        `payload has schema id ${decoded.schemaId}, the entry says ${e.schemaId}`,
      );
    }
  } catch (err) {
    if (isPipelineError(err) && !err.retriable) return bad(err.code, err.message);
    throw err;
  }
  return {
    ok: true,
    entry: {
      ref,
      eventId: e.eventId,
      aggregateType: e.aggregateType,
      aggregateId: e.aggregateId,
      version: e.version,
      occurredAt: e.occurredAt,
      released: e.releasedAt instanceof Date,
      previous: scanned.previous,
      record: { topic: ev.topic, key: e.aggregateId, value: e.payload, headers },
    },
  };
}
