import type { AggregateDocument } from '../schemas/outbox-entry.js';
import type { LoadedAggregate, CommandOutcome } from './ports.js';

/** Bytes of the entries' payloads: what backpressure bounds (a non-Buffer payload counts 0). */
export function payloadBytes(entries: readonly { readonly payload: unknown }[]): number {
  return entries.reduce((n, e) => n + (Buffer.isBuffer(e.payload) ? e.payload.length : 0), 0);
}

/** What a loaded aggregate document tells the write side, the same for every store. */
export function recordOf(aggregateType: string, doc: AggregateDocument): LoadedAggregate {
  const commands = new Map<string, CommandOutcome>();
  for (const c of Array.isArray(doc.commands) ? doc.commands : []) {
    commands.set(c.commandId, {
      aggregateType,
      aggregateId: doc._id,
      version: c.version,
      eventIds: c.eventIds,
    });
  }
  const outbox = Array.isArray(doc.outbox) ? doc.outbox : [];
  return {
    aggregateId: doc._id,
    version: doc.version,
    state: doc.state,
    commands,
    unrelayed: { entries: outbox.length, bytes: payloadBytes(outbox) },
  };
}
