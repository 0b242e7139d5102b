import type { z } from 'zod';
import type { EventOf, StateOf } from '../schemas/avro-types.js';
import {
  buildCatalog,
  type AggregateDefinition,
  type Catalog,
  type CatalogOptions,
} from '../schemas/catalog.js';
import { EventCodec } from '../schemas/codec.js';
import { PipelineError } from '../schemas/errors.js';
import type { RegistryPort } from '../schemas/registry.js';
import type { AggregateClass, AggregateRoot, StoredAggregate } from './aggregate.js';
import {
  commandHandler,
  type Command,
  type CommandHandlerOptions,
  type CommandResult,
  type DefinedCommand,
} from './command-handler.js';
import type { WriteStore } from './ports.js';
import { Repository } from './repository.js';

/** What the write side needs of the config module: a `CqrsSyncConfig` is one. */
export interface WriteSideConfig {
  readonly aggregates: readonly AggregateDefinition[];
  /** Prefix of default topic names; default `cqrs.`. */
  readonly topicPrefix?: string;
}

export interface WriteSideOptions extends CommandHandlerOptions {
  readonly config: WriteSideConfig;
  /** Borrowed. */
  readonly store: WriteStore;
  /** Every event schema of the config is registered here before the write side is returned. */
  readonly registry: RegistryPort;
}

/** The traces a command may carry whatever its schema says (see `Command`). */
export interface CommandTrace {
  readonly traceparent?: string;
  readonly tracestate?: string;
}

/** The write side, wired: repositories by aggregate class, and commands run by definition. */
export interface WriteSide {
  readonly catalog: Catalog;
  readonly codec: EventCodec;
  readonly store: WriteStore;
  /** The repository of an aggregate class (one per class). */
  repository<D extends AggregateDefinition, A extends AggregateRoot<StateOf<D>, EventOf<D>>>(
    aggregate: AggregateClass<D, A>,
  ): Repository<StateOf<D>, A>;
  /** Runs a command (`commandHandler` over the repository of its aggregate class). */
  handle<
    D extends AggregateDefinition,
    A extends AggregateRoot<StateOf<D>, EventOf<D>>,
    S extends z.ZodType<Command>,
  >(
    command: DefinedCommand<D, A, S>,
    input: z.input<S> & CommandTrace,
  ): Promise<CommandResult>;
  /** Closes what the write side created (nothing here; `connectWriteSide` closes its client). */
  close(): Promise<void>;
}

/**
 * Wires the write side over a store of any kind (no driver here): builds the catalog from the
 * config, registers its schemas and returns repositories and command handling by definition.
 * `connectWriteSide` (write/connect.ts) is the MongoDB case.
 */
export async function createWriteSide(options: WriteSideOptions): Promise<WriteSide> {
  const { config, store } = options;
  const catalogOptions: CatalogOptions =
    config.topicPrefix === undefined ? {} : { topicPrefix: config.topicPrefix };
  const catalog = buildCatalog(config.aggregates, catalogOptions);
  const codec = new EventCodec(catalog, options.registry);
  await codec.registerAll();
  const handlerOptions: CommandHandlerOptions =
    options.maxConflictRetries === undefined
      ? {}
      : { maxConflictRetries: options.maxConflictRetries };
  const repositories = new Map<AggregateClass, Repository<object, AggregateRoot<object>>>();
  const handlers = new WeakMap<object, (input: unknown) => Promise<CommandResult>>();

  const repository = <
    D extends AggregateDefinition,
    A extends AggregateRoot<StateOf<D>, EventOf<D>>,
  >(
    aggregate: AggregateClass<D, A>,
  ): Repository<StateOf<D>, A> => {
    const known = repositories.get(aggregate);
    if (known) return known as unknown as Repository<StateOf<D>, A>;
    // The class's types come from its definition, the codec's schemas from the config's: the same
    // object, or a state the codec checked could be typed from other fields.
    if (!config.aggregates.includes(aggregate.definition)) {
      throw new PipelineError(
        'config_invalid',
        `aggregate class ${aggregate.name} is declared from a definition of "${aggregate.definition.type}" that is not in the config's aggregates; pass the same defineAggregate(...) object to both`,
        { retriable: false, context: { aggregateType: aggregate.definition.type } },
      );
    }
    const created = new Repository<StateOf<D>, A>({
      store,
      codec,
      aggregateType: aggregate.definition.type,
      // Stored state was encoded with this type's schema when it was saved, so it has its fields.
      create: (id, stored) => new aggregate(id, stored as StoredAggregate<StateOf<D>> | undefined),
    });
    repositories.set(aggregate, created);
    return created;
  };

  return {
    catalog,
    codec,
    store,
    repository,
    handle: (command, input) => {
      let handler = handlers.get(command);
      if (!handler) {
        handler = commandHandler(repository(command.aggregate), command, handlerOptions);
        handlers.set(command, handler);
      }
      return handler(input);
    },
    close: () => Promise.resolve(),
  };
}
