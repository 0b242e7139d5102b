import { webcrypto } from 'node:crypto';
import { context, propagation } from '@opentelemetry/api';
import { v7 as uuidv7 } from 'uuid';
import { kebab, type Catalog } from '../schemas/catalog.js';
import type { EventCodec } from '../schemas/codec.js';
import { stringProblem } from '../schemas/well-formed.js';
import type { OutboxEntry } from '../schemas/outbox-entry.js';
import type { PendingEvent } from './aggregate.js';

export type {
  AggregateDocument,
  CommandRecord,
  OutboxEntry,
  OutboxFailure,
  OutboxStatus,
} from '../schemas/outbox-entry.js';

/** Where an aggregate type's documents live, unless configured: `Order` -> `order`. */
export function aggregateCollectionName(aggregateType: string): string {
  return kebab(aggregateType);
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
    return {
      eventId: nextEventId(),
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
      failure: null,
    };
  });
}

/**
 * A UUID v7, monotonic within this process as uuid's own `v7()` keeps it (a 31-bit counter seeded
 * at random each millisecond), but with its random bytes drawn 4 KiB at a time: one
 * `getRandomValues` call per id was a fifth of a command's own CPU time (bench:write).
 */
export function nextEventId(): string {
  const random = randomBytes16();
  const now = Date.now();
  if (now > lastMs) {
    lastMs = now;
    seq =
      (((random[6] ?? 0) & 0x7f) << 24) |
      ((random[7] ?? 0) << 16) |
      ((random[8] ?? 0) << 8) |
      (random[9] ?? 0);
  } else {
    seq = (seq + 1) | 0;
    if (seq === 0) lastMs++;
  }
  return uuidv7({ random, msecs: lastMs, seq });
}

let lastMs = -Infinity;
let seq = 0;
const pool = new Uint8Array(4096);
let poolAt = pool.length;

function randomBytes16(): Uint8Array {
  if (poolAt + 16 > pool.length) {
    webcrypto.getRandomValues(pool);
    poolAt = 0;
  }
  const bytes = pool.slice(poolAt, poolAt + 16);
  poolAt += 16;
  return bytes;
}
