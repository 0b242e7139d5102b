import type { EventCodec } from '../schemas/codec.js';
import { payloadBytes } from './aggregate-record.js';
import type { AggregateRoot } from './aggregate.js';
import { buildOutboxEntries, type TraceContext } from './outbox.js';
import {
  NOTHING_UNRELAYED,
  type LoadedAggregate,
  type CommandOutcome,
  type CommitResult,
  type Unrelayed,
  type WriteStore,
} from './ports.js';

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

/** An aggregate as loaded, with what its document recorded of a command id (a repeat). */
export interface Loaded<A> {
  readonly aggregate: A;
  /** The first run's outcome when the aggregate already ran this command id. */
  readonly recorded: CommandOutcome | undefined;
}

/**
 * Loads and saves one aggregate type. `save` writes the new state and every pending event (as outbox
 * entries) in one atomic write of the aggregate's document, conditional on the loaded version; a
 * conflict throws `concurrency_conflict` (retriable: load again and re-run the command) and writes
 * nothing.
 */
export class Repository<S extends object, A extends AggregateRoot<S>> {
  readonly aggregateType: string;
  /** What each loaded aggregate's document held unrelayed (the backpressure check at save). */
  private readonly unrelayed = new WeakMap<A, Unrelayed>();

  constructor(private readonly options: RepositoryOptions<A>) {
    this.aggregateType = options.aggregateType;
    options.codec.catalog.aggregate(options.aggregateType); // unknown type: config_invalid now
  }

  /** The aggregate, or a new one (`exists` false, version 0) if the store has none. */
  async load(aggregateId: string): Promise<A> {
    return (await this.loadFor(aggregateId, undefined)).aggregate;
  }

  /** The aggregate, and the recorded outcome if it already ran `commandId` (read in the same load). */
  async loadFor(aggregateId: string, commandId: string | undefined): Promise<Loaded<A>> {
    const record: LoadedAggregate | undefined = await this.options.store.load(
      this.aggregateType,
      aggregateId,
    );
    const aggregate = this.options.create(
      aggregateId,
      record ? { version: record.version, state: record.state } : undefined,
    );
    this.unrelayed.set(aggregate, record?.unrelayed ?? NOTHING_UNRELAYED);
    const recorded = commandId === undefined ? undefined : record?.commands.get(commandId);
    return { aggregate, recorded };
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
      unrelayed: this.unrelayed.get(aggregate) ?? NOTHING_UNRELAYED,
    });
    if (!result.applied) return result;
    aggregate.markSaved();
    // Saved: its own entries are unrelayed now too (a second save of this object checks them).
    const before = this.unrelayed.get(aggregate) ?? NOTHING_UNRELAYED;
    this.unrelayed.set(aggregate, {
      entries: before.entries + entries.length,
      bytes: before.bytes + payloadBytes(entries),
    });
    return { applied: true, ...outcome };
  }
}
