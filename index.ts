/**
 * cqrs-sync's public API. A service imports the write toolkit; relay and sink run as processes
 * (`cqrs-sync relay`, `cqrs-sync sink`) or are started from code (`startRelay`, `startSink`).
 */

// The contract: aggregate and event types, schemas, wire format, errors.
export {
  buildCatalog,
  defineAggregate,
  kebab,
  snapshotEventType,
  type AggregateDefinition,
  type AvroField,
  type AvroRecordSchema,
  type Catalog,
  type CatalogAggregate,
  type CatalogEvent,
  type EventDefinition,
  type WireValue,
} from './schemas/catalog.js';
export type { AvroValue, EventOf, FieldsValue, StateOf } from './schemas/avro-types.js';
export { EventCodec, MAX_RECORD_BYTES, type DecodedEvent } from './schemas/codec.js';
export { HEADERS, fromHeaders, toHeaders, type EventMetadata } from './schemas/envelope.js';
export {
  PipelineError,
  isPipelineError,
  type ErrorContext,
  type PipelineErrorCode,
} from './schemas/errors.js';
export { ConfluentRegistry, type Compatibility, type RegistryPort } from './schemas/registry.js';

// The config module users write (`cqrs-sync.config.ts`).
export {
  defineConfig,
  loadUserConfig,
  type CqrsSyncConfig,
  type LoadedConfig,
} from './bin/user-config.js';

// Write side: aggregates, a repository whose commit is one atomic write of the aggregate document
// (state, version, outbox, command ids), idempotent command handlers.
export * from './write/index.js';

// Relay.
export { startRelay, type StartRelayOptions } from './relay/start.js';
export { relayCli } from './relay/cli.js';
export { loadRelayConfig, type RelayConfig } from './relay/config.js';
export type { RelayHandle } from './relay/relay.js';

// Sink: projections, migrations, the consumer.
export * from './sink/projection.js';
export {
  SINK_MIGRATIONS,
  loadMigrations,
  runMigrations,
  type Migration,
  type MigrationResult,
  type MigrationSet,
} from './sink/migrations.js';
export { startSink, type SinkHandle, type SinkState, type StartSinkOptions } from './sink/sink.js';
export { sinkCli, type SinkUser } from './sink/cli.js';
export { loadSinkConfig, type SinkConfig } from './sink/config.js';

// Operations.
export { startOpsServer, type OpsServer, type OpsServerOptions } from './ops/http.js';
