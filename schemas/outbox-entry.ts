import { z } from 'zod';

/**
 * The aggregate document: the unit of atomicity of the write side (ADR 0005). One document per
 * aggregate in its type's collection holds the state, the version, the events not yet relayed (the
 * outbox) and the ids of the aggregate's recent commands, so a command is one conditional
 * single-document write. Declared once, here: the write side writes it, the relay reads and marks it,
 * `cqrs-sync status` and the demo read it.
 */

/** `pending` until published; `failed` holds the aggregate; `skipped` by an operator (`relay release --skip`). */
export const OUTBOX_STATUSES = ['pending', 'failed', 'skipped'] as const;
export type OutboxStatus = (typeof OUTBOX_STATUSES)[number];

export const outboxFailureSchema = z.object({
  code: z.string(),
  reason: z.string(),
  at: z.date(),
});
export type OutboxFailure = z.infer<typeof outboxFailureSchema>;

const optionalText = z.string().nullish();

/**
 * One outbox entry, as the relay checks it before it publishes: an event, its Avro payload (the
 * Confluent wire format of `{ event, state }`, stored as BSON Binary) and the relay's bookkeeping.
 */
export const outboxEntrySchema = z.object({
  /** UUID v7; unique. */
  eventId: z.string().min(1),
  aggregateType: z.string().min(1),
  aggregateId: z.string().min(1),
  /** 1, 2, 3… per aggregate. */
  version: z.number().int().positive(),
  /** Catalog event type. */
  type: z.string().min(1),
  occurredAt: z.date(),
  schemaId: z.number().int().nonnegative(),
  payload: z.instanceof(Buffer),
  commandId: optionalText,
  traceparent: optionalText,
  tracestate: optionalText,
  status: z.enum(OUTBOX_STATUSES).default('pending'),
  failure: outboxFailureSchema.nullish(),
  /** Set by `relay release`: the entry may pass a version gap. */
  releasedAt: z.date().nullish(),
});
export type CheckedOutboxEntry = z.infer<typeof outboxEntrySchema>;

/** An outbox entry: what the write side appends is what the relay checks, one declaration. */
export type OutboxEntry = Readonly<CheckedOutboxEntry>;

/** A command the aggregate ran, kept so a repeat of its id returns the first outcome. */
export interface CommandRecord {
  readonly commandId: string;
  /** The aggregate's version after the command. */
  readonly version: number;
  readonly eventIds: readonly string[];
  readonly at: Date;
}

export interface AggregateDocument {
  /** The aggregate id. */
  _id: string;
  aggregateType: string;
  version: number;
  /** Null once a deleting event was applied (the aggregate is gone, its version stays taken). */
  state: Record<string, unknown> | null;
  deleted: boolean;
  updatedAt: Date;
  /** Events not yet relayed, in version order. Writers only append (`$push`); only the relay that
   * holds `relayFence` removes entries, so a mark never drops an entry appended after the relay read. */
  outbox: OutboxEntry[];
  /** Recent commands, oldest first, at most the write side's `commandIdsKept`. */
  commands: CommandRecord[];
  /** Highest version published (or skipped) and removed from `outbox`: relay-owned. */
  relayedVersion: number;
  /** When the relay last marked entries of this aggregate relayed. */
  relayedAt: Date | null;
  /** Fencing token of the last relay that changed `outbox`; a relay with an older token cannot. */
  relayFence: number;
}

/** The marker the relay's scan selects on (and its index): documents with a pending entry. */
export const PENDING_MARKER = { 'outbox.status': 'pending' } as const;
