/** `cqrs-sync/sink`: the sink, from code or as `cqrs-sync sink`, and its migrations (loads kafkajs
 * and mysql2). Projections are declared with the root entry's `tableProjection` & co. */
export { startSink, type SinkHandle, type SinkState, type StartSinkOptions } from './sink.js';
export { sinkCli, type SinkUser } from './cli.js';
export { loadSinkConfig, type SinkConfig } from './config.js';
export { SINK_MIGRATIONS, runMigrations, type MigrationResult } from './migrations.js';
export { projectionTables } from './validate.js';
// For tools beside a running sink (the demo's web app lists, counts, re-drives and rebuilds with it).
export {
  SinkAdmin,
  type AppliedEvent,
  type DeadLetterView,
  type HeldSummary,
  type ParkedView,
  type SinkAdminOptions,
  type SinkCounts,
} from './admin.js';
export type { DropResult, OutcomeCounts, RedriveResult } from './apply.js';
export { KafkaDeadLetterPublisher } from './dead-letter.js';
