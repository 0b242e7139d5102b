/**
 * `cqrs-sync`: the domain toolkit and the declarations a user writes. Nothing imported from here
 * loads a database or broker driver (kafkajs, mysql2, mongodb; checked by
 * index.no-drivers.unit.test.ts). The adapters and processes are subpaths:
 * `cqrs-sync/mongodb` (the write store), `cqrs-sync/relay`, `cqrs-sync/sink`, `cqrs-sync/ops`,
 * `cqrs-sync/verify`.
 */

// Aggregate types and their events, the catalog built from them, the wire format.
export {
  buildCatalog,
  defineAggregate,
  type AggregateDefinition,
  type AvroField,
  type AvroRecordSchema,
  type Catalog,
  type CatalogAggregate,
  type CatalogEvent,
  type CatalogOptions,
  type EventDefinition,
  type WireValue,
} from './schemas/catalog.js';
export type { AvroValue, EventOf, FieldsValue, StateOf } from './schemas/avro-types.js';
export { EventCodec, type DecodedEvent } from './schemas/codec.js';
export { HEADERS, fromHeaders, type EventMetadata } from './schemas/envelope.js';
export { ConfluentRegistry, type Compatibility, type RegistryPort } from './schemas/registry.js';
export type { AggregateDocument, OutboxEntry } from './schemas/outbox-entry.js';

// Errors: a code and whether a retry helps.
export {
  PipelineError,
  isPipelineError,
  type ErrorContext,
  type PipelineErrorCode,
} from './schemas/errors.js';

// Aggregates, commands, the repository (one atomic write of the aggregate document per command),
// the write-store port and its in-memory implementation for unit tests.
export {
  AggregateRoot,
  type AggregateBase,
  type AggregateClass,
  type DomainEvent,
  type PendingEvent,
  type StoredAggregate,
} from './write/aggregate.js';
export {
  commandHandler,
  defineCommand,
  type Command,
  type CommandDefinition,
  type DefinedCommand,
  type CommandHandlerOptions,
  type CommandResult,
} from './write/command-handler.js';
export {
  createWriteSide,
  type CommandTrace,
  type WriteSide,
  type WriteSideConfig,
  type WriteSideOptions,
} from './write/write-side.js';
export {
  Repository,
  type AggregateFactory,
  type Loaded,
  type RepositoryOptions,
  type SaveResult,
} from './write/repository.js';
export type {
  Commit,
  CommitResult,
  CommandOutcome,
  LoadedAggregate,
  Unrelayed,
  WriteStore,
} from './write/ports.js';
export { DEFAULT_AGGREGATE_LIMITS, aggregateLimits, type AggregateLimits } from './write/limits.js';
export { InMemoryWriteStore } from './write/memory-store.js';
export { aggregateCollectionName } from './write/outbox.js';

// The config module (`cqrs-sync.config.ts`): aggregates, projections, read-model migrations.
export {
  defineConfig,
  loadUserConfig,
  type CqrsSyncConfig,
  type LoadedConfig,
} from './bin/user-config.js';
export {
  childTableProjection,
  defineProjection,
  tableProjection,
  type ChildTableProjectionOptions,
  type ColumnSource,
  type DeliveredEvent,
  type Operation,
  type Projection,
  type ProjectionContext,
  type ProjectionDefinition,
  type Statement,
  type TableProjectionOptions,
} from './sink/projection.js';
export { loadMigrations, type Migration, type MigrationSet } from './sink/migrations.js';
