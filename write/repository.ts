import type { EventCodec } from '../schemas/codec.js';
import type { AggregateRoot } from './aggregate.js';
import { buildOutboxEntries, type TraceContext } from './outbox.js';
import type { CommandOutcome, CommitResult, WriteStore } from './ports.js';

/** Builds an aggregate object from what the store holds (nothing: a new one, version 0). */
export type AggregateFactory<A> = (
  id: string,
  stored?: { readonly version: number; readonly state: Record<string, unknown> | null },
) => A;

export interface RepositoryOptions<A> {
  readonly store: WriteStore;
  /** Encodes payloads; its schemas must be registered (`await codec.registerAll()`). */
  readonly codec: EventCodec;
  readonly aggregateType: string;
  readonly create: AggregateFactory<A>;
}

export type SaveResult =
  | ({ readonly applied: true } & CommandOutcome)
  | { readonly applied: false; readonly reason: 'duplicate_command' | 'no_events' };

/**
 * Loads and saves one aggregate type. `save` writes the new state and every pending event (as outbox
 * entries) in one unit of work with optimistic concurrency on the loaded version; a conflict throws
 * `concurrency_conflict` (retriable: load again and re-run the command) and writes nothing.
 */
export class Repository<S extends object, A extends AggregateRoot<S>> {
  readonly aggregateType: string;

  constructor(private readonly options: RepositoryOptions<A>) {
    this.aggregateType = options.aggregateType;
    options.codec.catalog.aggregate(options.aggregateType); // unknown type: config_invalid now
  }

  /** The aggregate, or a new one (`exists` false, version 0) if the store has none. */
  async load(aggregateId: string): Promise<A> {
    const record = await this.options.store.load(this.aggregateType, aggregateId);
    return this.options.create(
      aggregateId,
      record ? { version: record.version, state: record.state } : undefined,
    );
  }

  async save(
    aggregate: A,
    opts: { readonly commandId?: string; readonly trace?: TraceContext } = {},
  ): Promise<SaveResult> {
    const pending = aggregate.pendingEvents;
    if (pending.length === 0) return { applied: false, reason: 'no_events' };
    const entries = buildOutboxEntries(
      this.options.codec,
      this.aggregateType,
      aggregate.id,
      pending,
      opts.commandId,
      opts.trace,
    );
    const outcome: CommandOutcome = {
      aggregateType: this.aggregateType,
      aggregateId: aggregate.id,
      version: aggregate.version,
      eventIds: entries.map((e) => e.eventId),
    };
    const result: CommitResult = await this.options.store.commit({
      aggregateType: this.aggregateType,
      aggregateId: aggregate.id,
      expectedVersion: aggregate.loadedVersion,
      version: aggregate.version,
      state: aggregate.state as Record<string, unknown> | null,
      entries,
      commandId: opts.commandId,
      outcome,
    });
    if (!result.applied) return result;
    aggregate.markSaved();
    return { applied: true, ...outcome };
  }
}
