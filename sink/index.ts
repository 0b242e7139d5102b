/** `cqrs-sync/sink`: the sink, from code or as `cqrs-sync sink`, and its migrations (loads kafkajs
 * and mysql2). Projections are declared with the root entry's `tableProjection` & co. */
export { startSink, type SinkHandle, type SinkState, type StartSinkOptions } from './sink.js';
export { sinkCli, type SinkUser } from './cli.js';
export { loadSinkConfig, type SinkConfig } from './config.js';
export { SINK_MIGRATIONS, SINK_TABLES, runMigrations, type MigrationResult } from './migrations.js';
export { projectionTables } from './validate.js';
// Building blocks for tools beside a running sink (the demo's web app re-drives with them).
export {
  Applier,
  type ApplierDeps,
  type DropResult,
  type OutcomeCounts,
  type RedriveResult,
} from './apply.js';
export { MysqlStore, type MysqlStoreOptions } from './mysql-store.js';
export { KafkaDeadLetterPublisher } from './dead-letter.js';
