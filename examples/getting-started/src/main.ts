// Runs the whole pipeline in one process: a command writes MongoDB, the relay publishes, the sink
// applies to MySQL, and we wait until the row says the task is done.
import { MongoClient } from 'mongodb';
import mysql from 'mysql2/promise';
import { ConfluentRegistry, EventCodec, Repository, buildCatalog, commandHandler } from 'cqrs-sync';
import { MongoWriteStore } from 'cqrs-sync/mongodb';
import { loadRelayConfig, startRelay } from 'cqrs-sync/relay';
import { SINK_MIGRATIONS, loadSinkConfig, runMigrations, startSink } from 'cqrs-sync/sink';
import config from '../cqrs-sync.config.js';
import { settings } from './config.js';
import { AddTask, CompleteTask, createTask, type Task } from './task.js';

const catalog = buildCatalog(config.aggregates);

// Schemas go to the registry once; the write side encodes events with them.
const codec = new EventCodec(catalog, new ConfluentRegistry(settings.schemaRegistryUrl));
await codec.registerAll();

// The read model's tables: the sink's own bookkeeping, then ours.
const admin = await mysql.createConnection(settings.mysqlAdminUrl);
await runMigrations(admin, [
  SINK_MIGRATIONS,
  { scope: 'getting-started', migrations: config.migrations },
]);

// The write side: one document per aggregate; a command is one atomic single-document write of
// its state, its events (the outbox) and its command id. Any MongoDB will do, standalone included.
const mongo = new MongoClient(settings.mongodbUri);
const store = new MongoWriteStore({ client: mongo, database: settings.database });
await store.init(['Task']);
const tasks = new Repository<object, Task>({
  store,
  codec,
  aggregateType: 'Task',
  create: createTask,
});
const addTask = commandHandler(tasks, AddTask);
const completeTask = commandHandler(tasks, CompleteTask);

// Relay and sink, as `cqrs-sync relay` and `cqrs-sync sink` would run them.
const env = { ...process.env, RELAY_OUTBOX_DATABASE: settings.database };
const relay = await startRelay({ catalog, config: loadRelayConfig(env), mongoClient: mongo });
const sink = await startSink({
  catalog,
  projections: config.projections,
  config: loadSinkConfig(env),
});

const taskId = `task-${Date.now()}`;
await addTask({ commandId: `${taskId}-add`, taskId, title: 'Write the getting-started guide' });
await completeTask({ commandId: `${taskId}-done`, taskId });
await completeTask({ commandId: `${taskId}-done`, taskId }); // a retry: runs once

// The query side: MySQL only.
let row: { title: string; done: number; version: number } | undefined;
for (const deadline = Date.now() + 60_000; Date.now() < deadline && !row?.done;) {
  const [rows] = await admin.query('SELECT title, done, version FROM tasks WHERE id = ?', [taskId]);
  row = (rows as (typeof row)[])[0];
  if (!row?.done) await new Promise((r) => setTimeout(r, 200));
}

await sink.stop();
await relay.stop();
await mongo.close();
await admin.end();

if (!row?.done) {
  console.error(`getting-started: task ${taskId} did not reach MySQL within 60 s`);
  process.exit(1);
}
console.log(
  `getting-started: task ${taskId} "${row.title}" is done in MySQL at version ${row.version}`,
);
