// The config module the `cqrs-sync` bin loads: aggregate types, projections, read-model migrations.
import { defineConfig, tableProjection } from 'cqrs-sync';
import { TaskType } from './src/task.js';

export default defineConfig({
  aggregates: [TaskType],
  // One row per task, version-gated: a late or repeated event never overwrites newer data.
  projections: [
    tableProjection({
      aggregateType: TaskType,
      table: 'tasks',
      columns: { title: 'state.title', done: 'state.done' },
    }),
  ],
  migrations: [
    {
      version: 1,
      name: 'tasks',
      sql: `CREATE TABLE tasks (
              id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin PRIMARY KEY,
              title VARCHAR(200) NOT NULL,
              done BOOLEAN NOT NULL,
              version BIGINT NOT NULL
            )`,
    },
  ],
});
