// Runs the whole pipeline in one process: commands write MongoDB, the relay publishes, the sink
// applies to MySQL, and we wait until the row says the task is done.
import mysql from 'mysql2/promise';
import { connectWriteSide } from 'cqrs-sync/mongodb';
import { loadRelayConfig, startRelay } from 'cqrs-sync/relay';
import { SINK_MIGRATIONS, loadSinkConfig, runMigrations, startSink } from 'cqrs-sync/sink';
import config from '../cqrs-sync.config.js';
import { settings } from './config.js';
import { AddTask, CompleteTask } from './task.js';

// The write side from the config: schemas registered, the MongoDB store ready.
const write = await connectWriteSide({
  config,
  mongodbUri: settings.mongodbUri,
  schemaRegistryUrl: settings.schemaRegistryUrl,
  database: settings.database,
});

const taskId = `task-${Date.now()}`;
await write.handle(AddTask, {
  commandId: `${taskId}-add`,
  taskId,
  title: 'Write the getting-started guide',
});
await write.handle(CompleteTask, { commandId: `${taskId}-done`, taskId });
await write.handle(CompleteTask, { commandId: `${taskId}-done`, taskId }); // a retry: runs once

// The read model's tables: the sink's own bookkeeping, then ours.
const admin = await mysql.createConnection(settings.mysqlAdminUrl);
await runMigrations(admin, [
  SINK_MIGRATIONS,
  { scope: 'getting-started', migrations: config.migrations },
]);

// Relay and sink, as `cqrs-sync relay` and `cqrs-sync sink` would run them.
const env = { ...process.env, RELAY_OUTBOX_DATABASE: settings.database };
const relay = await startRelay({
  catalog: write.catalog,
  config: loadRelayConfig(env),
  mongoClient: write.client,
});
const sink = await startSink({
  catalog: write.catalog,
  projections: config.projections,
  config: loadSinkConfig(env),
});

// The query side: MySQL only.
let row: { title: string; done: number; version: number } | undefined;
for (const deadline = Date.now() + 60_000; Date.now() < deadline && !row?.done;) {
  const [rows] = await admin.query('SELECT title, done, version FROM tasks WHERE id = ?', [taskId]);
  row = (rows as (typeof row)[])[0];
  if (!row?.done) await new Promise((r) => setTimeout(r, 200));
}

await sink.stop();
await relay.stop();
await write.close();
await admin.end();

if (!row?.done) {
  console.error(`getting-started: task ${taskId} did not reach MySQL within 60 s`);
  process.exit(1);
}
console.log(
  `getting-started: task ${taskId} "${row.title}" is done in MySQL at version ${row.version}`,
);
