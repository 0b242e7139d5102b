import type { EventOf, StateOf } from '../schemas/avro-types.js';
import type { AggregateDefinition } from '../schemas/catalog.js';
import { PipelineError } from '../schemas/errors.js';

/** An event as the domain raises it: its type (a catalog event type) and its own fields. */
export interface DomainEvent {
  readonly type: string;
  readonly data: object;
}

/** An event not yet saved, with the version it gives the aggregate and the state after it. */
export interface PendingEvent<S, E extends DomainEvent = DomainEvent> {
  readonly event: E;
  readonly version: number;
  readonly stateAfter: S | null;
  readonly occurredAt: Date;
}

/** What a store holds of an aggregate when it is loaded. */
export interface StoredAggregate<S> {
  readonly version: number;
  readonly state: S | null;
}

/**
 * An aggregate class declared from its definition (`class Task extends AggregateRoot.of(TaskType)`):
 * it carries the definition, so a repository or a command takes the class instead of type names.
 */
export interface AggregateClass<
  D extends AggregateDefinition = AggregateDefinition,
  A extends AggregateRoot<StateOf<D>, EventOf<D>> = AggregateRoot<StateOf<D>, EventOf<D>>,
> {
  readonly definition: D;
  new (id: string, stored?: StoredAggregate<StateOf<D>>): A;
}

/** The base `AggregateRoot.of(definition)` returns: abstract, with `aggregateType` set. */
export type AggregateBase<D extends AggregateDefinition> = {
  readonly definition: D;
} & (abstract new (
  id: string,
  stored?: StoredAggregate<StateOf<D>>,
) => AggregateRoot<StateOf<D>, EventOf<D>> & { readonly aggregateType: D['type'] });

/**
 * Base of event-sourced-style aggregates whose state is stored (not replayed): commands call
 * `raise(event)`, which runs the pure `when(state, event)` and records the event with the state after
 * it. The repository saves the last state and every pending event in one unit of work.
 */
export abstract class AggregateRoot<S extends object, E extends DomainEvent = DomainEvent> {
  abstract readonly aggregateType: string;
  private current: S | null;
  private storedVersion: number;
  private pending: PendingEvent<S, E>[] = [];

  constructor(
    readonly id: string,
    stored?: StoredAggregate<S>,
  ) {
    this.current = stored?.state ?? null;
    this.storedVersion = stored?.version ?? 0;
  }

  /**
   * A base class whose state and event types are inferred from the definition's Avro fields
   * (schemas/avro-types.ts), with `aggregateType` set: a subclass writes its commands and `when`.
   */
  static of<const D extends AggregateDefinition>(definition: D): AggregateBase<D> {
    abstract class Defined extends AggregateRoot<StateOf<D>, EventOf<D>> {
      static readonly definition = definition;
      readonly aggregateType: D['type'] = definition.type;
    }
    return Defined;
  }

  /** The state after every applied event; null before the first and after a deleting one. */
  get state(): S | null {
    return this.current;
  }

  /** True when the aggregate has been created and not deleted. */
  get exists(): boolean {
    return this.current !== null;
  }

  /** Version including pending events. */
  get version(): number {
    return this.storedVersion + this.pending.length;
  }

  /** The version it had when loaded (or last saved): the optimistic-concurrency check. */
  get loadedVersion(): number {
    return this.storedVersion;
  }

  get pendingEvents(): readonly PendingEvent<S, E>[] {
    return this.pending;
  }

  /** Called by the repository after a successful save. */
  markSaved(): void {
    this.storedVersion += this.pending.length;
    this.pending = [];
  }

  /** Applies an event: the new state comes from `when`, the event waits for `save`. */
  protected raise(event: E, occurredAt: Date = new Date()): void {
    const next = this.when(this.current, event);
    this.current = next;
    this.pending.push({ event, version: this.version + 1, stateAfter: next, occurredAt });
  }

  /** The evolve function: the state after `event`, or null when the event deletes the aggregate. */
  protected abstract when(state: S | null, event: E): S | null;

  /** The state, or `aggregate_not_found` if the aggregate does not exist (yet, or any more). */
  protected requireState(): S {
    if (this.current === null) {
      throw new PipelineError(
        'aggregate_not_found',
        `${this.aggregateType} ${this.id} does not exist`,
        { retriable: false, context: { aggregateType: this.aggregateType, aggregateId: this.id } },
      );
    }
    return this.current;
  }

  /** Throws `domain_rule_violated` with the aggregate's context unless `ok`. */
  protected ensure(ok: boolean, rule: string): void {
    if (!ok) {
      throw new PipelineError('domain_rule_violated', `${this.aggregateType} ${this.id}: ${rule}`, {
        retriable: false,
        context: { aggregateType: this.aggregateType, aggregateId: this.id, rule },
      });
    }
  }
}
