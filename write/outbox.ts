import { context, propagation } from '@opentelemetry/api';
import type { Collection } from 'mongodb';
import { v7 as uuidv7 } from 'uuid';
import { kebab, type Catalog } from '../schemas/catalog.js';
import type { EventCodec } from '../schemas/codec.js';
import { stringProblem } from '../schemas/well-formed.js';
import type { PendingEvent } from './aggregate.js';

/** Default collection names in the write model's database. */
export const DEFAULT_OUTBOX_COLLECTION = 'outbox';
export const DEFAULT_COMMANDS_COLLECTION = 'commands';
/** Relayed entries are removed this long after `relayedAt` (TTL index): 7 days. */
export const DEFAULT_OUTBOX_RETENTION_MS = 7 * 24 * 60 * 60 * 1000;

/** Where an aggregate type's state documents live, unless configured: `Order` -> `order`. */
export function stateCollectionName(aggregateType: string): string {
  return kebab(aggregateType);
}

export type OutboxStatus = 'pending' | 'relayed' | 'failed' | 'skipped';

export interface OutboxFailure {
  readonly code: string;
  readonly reason: string;
  readonly at: Date;
}

/** One outbox document: an event, its Avro payload and the relay's bookkeeping. */
export interface OutboxEntry {
  /** = eventId (UUID v7). */
  readonly _id: string;
  readonly eventId: string;
  readonly aggregateType: string;
  readonly aggregateId: string;
  /** 1, 2, 3… per aggregate; unique with aggregateId. */
  readonly version: number;
  /** Catalog event type. */
  readonly type: string;
  readonly occurredAt: Date;
  readonly schemaId: number;
  /** Confluent wire format of `{ event, state }` (stored as BSON Binary). */
  readonly payload: Buffer;
  readonly commandId: string | null;
  readonly traceparent: string | null;
  readonly tracestate: string | null;
  readonly status: OutboxStatus;
  readonly relayedAt: Date | null;
  readonly failure: OutboxFailure | null;
  /** How many times a relay marked it (publish attempts that reached the broker). */
  readonly attempts: number;
}

/** A state document: `{ _id: aggregateId, version, state, deleted }`. */
export interface StateDocument {
  _id: string;
  aggregateType: string;
  version: number;
  state: Record<string, unknown> | null;
  deleted: boolean;
  updatedAt: Date;
}

/** W3C trace context as stored on an outbox entry and sent as Kafka headers. */
export interface TraceContext {
  readonly traceparent: string | null;
  readonly tracestate: string | null;
}

/** The W3C trace context of the active span, if a propagator and a span are active. */
export function activeTraceContext(): TraceContext {
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return { traceparent: carrier.traceparent ?? null, tracestate: carrier.tracestate ?? null };
}

const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;

/**
 * The trace context a command carries in its metadata (`traceparent`, `tracestate`), for callers
 * without an SDK; a malformed `traceparent` is ignored, and a `tracestate` that is not well-formed
 * Unicode is dropped (tracing never refuses a command).
 */
export function commandTraceContext(input: unknown): TraceContext | undefined {
  if (typeof input !== 'object' || input === null) return undefined;
  const { traceparent, tracestate } = input as Record<string, unknown>;
  if (typeof traceparent !== 'string' || !TRACEPARENT.test(traceparent)) return undefined;
  const keep = typeof tracestate === 'string' && stringProblem(tracestate) === undefined;
  return { traceparent, tracestate: keep ? tracestate : null };
}

/**
 * Outbox entries for an aggregate's pending events: every payload is `{ event, state-after }`
 * (state null for deleting events), validated and encoded by the codec (`payload_invalid` when an
 * event or state does not match the catalog).
 */
export function buildOutboxEntries<S extends object>(
  codec: EventCodec,
  aggregateType: string,
  aggregateId: string,
  pending: readonly PendingEvent<S>[],
  commandId: string | undefined,
  /** From the command's metadata; the active span, when there is one, takes precedence. */
  commandTrace?: TraceContext,
): OutboxEntry[] {
  const catalog: Catalog = codec.catalog;
  const active = activeTraceContext();
  const trace = active.traceparent ? active : (commandTrace ?? active);
  return pending.map((p) => {
    const ev = catalog.event(p.event.type);
    const state = ev.deletes ? null : (p.stateAfter as Record<string, unknown> | null);
    const payload = codec.encode(p.event.type, {
      event: p.event.data as Record<string, unknown>,
      state,
    });
    const eventId = uuidv7();
    return {
      _id: eventId,
      eventId,
      aggregateType,
      aggregateId,
      version: p.version,
      type: p.event.type,
      occurredAt: p.occurredAt,
      schemaId: codec.schemaIdOf(p.event.type),
      payload,
      commandId: commandId ?? null,
      traceparent: trace.traceparent,
      tracestate: trace.tracestate,
      status: 'pending',
      relayedAt: null,
      failure: null,
      attempts: 0,
    };
  });
}

/**
 * The outbox's indexes (idempotent): unique (aggregateId, version); the relay's scan
 * (status, aggregateId, version); a TTL index removing relayed entries `retentionMs` after
 * `relayedAt`. A different retention than the existing index's is applied with `collMod`.
 */
export async function ensureOutboxIndexes(
  outbox: Collection,
  retentionMs: number = DEFAULT_OUTBOX_RETENTION_MS,
): Promise<void> {
  await outbox.createIndex(
    { aggregateId: 1, version: 1 },
    { unique: true, name: 'aggregate_version' },
  );
  await outbox.createIndex({ status: 1, aggregateId: 1, version: 1 }, { name: 'relay_scan' });
  const expireAfterSeconds = Math.max(1, Math.round(retentionMs / 1000));
  try {
    await outbox.createIndex({ relayedAt: 1 }, { name: 'relayed_ttl', expireAfterSeconds });
  } catch (e) {
    // IndexOptionsConflict (85): the retention changed since the index was made.
    if ((e as { code?: unknown }).code !== 85) throw e;
    await outbox.db.command({
      collMod: outbox.collectionName,
      index: { name: 'relayed_ttl', expireAfterSeconds },
    });
  }
}
