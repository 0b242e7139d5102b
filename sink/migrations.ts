/**
 * Versioned SQL migrations, for the sink's own tables (scope `sink`) and for users' read-model tables
 * (their own scope, e.g. `read-model`). Run with a DDL-capable account (`MYSQL_URL`); the sink itself
 * runs with least privilege. Applied versions are recorded in `cqrs_schema_migrations` with a
 * checksum: an edited, already-applied migration is refused. Runners are serialised with GET_LOCK.
 *
 * A migration folder holds `<version>_<name>.sql` files (`001_customers.sql`); statements are
 * separated by a `;` at the end of a line.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type mysql from 'mysql2/promise';
import { MAX_ID_CHARS } from '../schemas/envelope.js';
import { PipelineError } from '../schemas/errors.js';

export interface Migration {
  readonly version: number;
  readonly name: string;
  /** One or more statements. */
  readonly sql: string | readonly string[];
}

export interface MigrationSet {
  /** `sink` is taken by the sink's own tables. */
  readonly scope: string;
  readonly migrations: readonly Migration[];
}

export interface MigrationResult {
  readonly scope: string;
  readonly applied: readonly number[];
  readonly current: number;
}

const FILE = /^(\d+)[_-](.+)\.sql$/;

/** Splits a script on `;` at line ends (no procedures or delimiters). */
export function splitStatements(script: string): string[] {
  return script
    .split(/;[ \t]*(?:\r?\n|$)/)
    .map((s) =>
      s
        .split('\n')
        .filter((l) => !/^\s*--/.test(l))
        .join('\n')
        .trim(),
    )
    .filter((s) => s !== '');
}

export function statementsOf(m: Migration): string[] {
  return typeof m.sql === 'string' ? splitStatements(m.sql) : [...m.sql];
}

export function checksumOf(m: Migration): string {
  return createHash('sha256').update(statementsOf(m).join(';\n')).digest('hex');
}

/** Reads `<version>_<name>.sql` files of a folder, in version order. */
export async function loadMigrations(dir: string): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.sql')).sort();
  const out: Migration[] = [];
  for (const f of files) {
    const m = FILE.exec(f);
    if (!m) {
      throw new PipelineError(
        'config_invalid',
        `migration file ${path.join(dir, f)}: name it <version>_<name>.sql, e.g. 001_customers.sql`,
        { retriable: false },
      );
    }
    out.push({
      version: Number(m[1]),
      name: m[2] ?? f,
      sql: await readFile(path.join(dir, f), 'utf8'),
    });
  }
  return checkSet({ scope: dir, migrations: out }).migrations as Migration[];
}

function checkSet(set: MigrationSet): MigrationSet {
  const seen = new Set<number>();
  for (const m of set.migrations) {
    if (!Number.isSafeInteger(m.version) || m.version < 1) {
      throw new PipelineError(
        'config_invalid',
        `migrations ${set.scope}: version ${m.version} of "${m.name}" must be a positive integer`,
        { retriable: false },
      );
    }
    if (seen.has(m.version)) {
      throw new PipelineError(
        'config_invalid',
        `migrations ${set.scope}: version ${m.version} appears twice`,
        { retriable: false },
      );
    }
    seen.add(m.version);
  }
  return { ...set, migrations: [...set.migrations].sort((a, b) => a.version - b.version) };
}

/** Applies every pending migration of each set, in order. */
export async function runMigrations(
  conn: mysql.Connection,
  sets: readonly MigrationSet[],
  log: (line: string) => void = () => undefined,
): Promise<MigrationResult[]> {
  await conn.query(
    `CREATE TABLE IF NOT EXISTS cqrs_schema_migrations (
       scope VARCHAR(191) NOT NULL, version INT NOT NULL, name VARCHAR(255) NOT NULL,
       checksum CHAR(64) NOT NULL, applied_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
       PRIMARY KEY (scope, version)) ENGINE=InnoDB`,
  );
  const [lock] = await conn.query('SELECT GET_LOCK(?, 60) AS got', ['cqrs_sync_migrations']);
  if ((lock as { got: number | null }[])[0]?.got !== 1) {
    throw new PipelineError('database_unavailable', 'another migration runner holds the lock', {
      retriable: true,
    });
  }
  try {
    const results: MigrationResult[] = [];
    for (const raw of sets) {
      const set = checkSet(raw);
      const [rows] = await conn.query(
        'SELECT version, name, checksum FROM cqrs_schema_migrations WHERE scope = ?',
        [set.scope],
      );
      const done = new Map(
        (rows as { version: number; name: string; checksum: string }[]).map((r) => [r.version, r]),
      );
      const applied: number[] = [];
      for (const m of set.migrations) {
        const sum = checksumOf(m);
        const prior = done.get(m.version);
        if (prior) {
          if (prior.checksum !== sum) {
            throw new PipelineError(
              'config_invalid',
              `migration ${set.scope} ${m.version} (${m.name}) was changed after it was applied: add a new migration instead`,
              { retriable: false },
            );
          }
          continue;
        }
        for (const statement of statementsOf(m)) await conn.query(statement);
        await conn.query(
          'INSERT INTO cqrs_schema_migrations (scope, version, name, checksum) VALUES (?, ?, ?, ?)',
          [set.scope, m.version, m.name, sum],
        );
        applied.push(m.version);
        log(`migrations ${set.scope}: applied ${m.version} ${m.name}`);
      }
      const current = Math.max(0, ...set.migrations.map((m) => m.version));
      results.push({ scope: set.scope, applied, current });
    }
    return results;
  } finally {
    await conn.query('SELECT RELEASE_LOCK(?)', ['cqrs_sync_migrations']);
  }
}

/** The sink's own tables: named in sink/tables/ (one module each), created below. */
export { SINK_TABLES } from './tables/index.js';

/**
 * Widths (in characters) of the identifiers the bookkeeping tables below store. A record whose ids
 * are longer cannot be deduplicated or parked under its own ids: the sink dead-letters it under a
 * hash of them instead (sink/decode.ts).
 */
export const SINK_ID_WIDTHS = {
  eventId: MAX_ID_CHARS,
  aggregateId: MAX_ID_CHARS,
  aggregateType: 128,
  eventType: 255,
} as const;

/** A string column compared byte for byte (but for trailing spaces), on MariaDB and MySQL 8 alike. */
const bin = (chars: number): string =>
  `VARCHAR(${chars}) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`;

export const SINK_MIGRATIONS: MigrationSet = {
  scope: 'sink',
  migrations: [
    {
      version: 1,
      name: 'sink bookkeeping',
      sql: [
        `CREATE TABLE IF NOT EXISTS cqrs_sink_events (
           event_id VARCHAR(191) NOT NULL PRIMARY KEY,
           seen_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)) ENGINE=InnoDB`,
        `CREATE TABLE IF NOT EXISTS cqrs_sink_aggregates (
           aggregate_type VARCHAR(128) NOT NULL, aggregate_id VARCHAR(191) NOT NULL,
           version BIGINT NOT NULL, deleted TINYINT(1) NOT NULL DEFAULT 0,
           status VARCHAR(8) NOT NULL DEFAULT 'ok', status_since DATETIME(3) NOT NULL,
           reason TEXT NULL,
           PRIMARY KEY (aggregate_type, aggregate_id), KEY by_status (status, status_since)) ENGINE=InnoDB`,
        `CREATE TABLE IF NOT EXISTS cqrs_sink_held (
           id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, kind VARCHAR(8) NOT NULL,
           aggregate_type VARCHAR(128) NOT NULL, aggregate_id VARCHAR(191) NOT NULL,
           version BIGINT NOT NULL, event_id VARCHAR(191) NOT NULL, event_type VARCHAR(255) NOT NULL,
           topic VARCHAR(249) NOT NULL, kpartition INT NOT NULL, koffset BIGINT NOT NULL,
           record_key BLOB NULL, record_value LONGBLOB NULL, record_headers TEXT NOT NULL,
           error_code VARCHAR(64) NULL, error_message TEXT NULL, attempts INT NOT NULL DEFAULT 0,
           first_failed_at DATETIME(3) NULL, held_at DATETIME(3) NOT NULL,
           UNIQUE KEY one_per_event (event_id), KEY by_aggregate (aggregate_type, aggregate_id, version)) ENGINE=InnoDB`,
        `CREATE TABLE IF NOT EXISTS cqrs_sink_offsets (
           consumer_group VARCHAR(191) NOT NULL, topic VARCHAR(249) NOT NULL, kpartition INT NOT NULL,
           next_offset BIGINT NOT NULL, updated_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
           PRIMARY KEY (consumer_group, topic, kpartition)) ENGINE=InnoDB`,
      ],
    },
    {
      // Ids, types, topics and groups compare exactly. Under the servers' default collations
      // (case- and accent-insensitive) two event ids differing in case were one "duplicate", and two
      // such aggregates shared one version row: an event was dropped as stale, or, when both ids
      // were in one batch, the partition retried forever. utf8mb4_bin exists on MariaDB and MySQL 8;
      // it still ignores trailing spaces, so the sink refuses ids that end in one (sink/decode.ts).
      version: 2,
      name: 'exact ids',
      sql: [
        `ALTER TABLE cqrs_sink_events MODIFY event_id ${bin(191)} NOT NULL`,
        `ALTER TABLE cqrs_sink_aggregates MODIFY aggregate_type ${bin(128)} NOT NULL,
           MODIFY aggregate_id ${bin(191)} NOT NULL`,
        `ALTER TABLE cqrs_sink_held MODIFY aggregate_type ${bin(128)} NOT NULL,
           MODIFY aggregate_id ${bin(191)} NOT NULL, MODIFY event_id ${bin(191)} NOT NULL,
           MODIFY event_type ${bin(255)} NOT NULL, MODIFY topic ${bin(249)} NOT NULL`,
        `ALTER TABLE cqrs_sink_offsets MODIFY consumer_group ${bin(191)} NOT NULL,
           MODIFY topic ${bin(249)} NOT NULL`,
      ],
    },
    {
      // A `dlq drop` or a successful re-drive is a decision about an event id that a replay must
      // honour: without it, `replay --to earliest` dead-lettered the dropped poison again, parked
      // its aggregate and left its later events unapplied. Not part of what a replay empties.
      version: 3,
      name: 'dead-letter decisions',
      sql: [
        `CREATE TABLE IF NOT EXISTS cqrs_sink_decisions (
           event_id ${bin(191)} NOT NULL PRIMARY KEY,
           aggregate_type ${bin(128)} NOT NULL, aggregate_id ${bin(191)} NOT NULL,
           version BIGINT NOT NULL, decision VARCHAR(8) NOT NULL, decided_at DATETIME(3) NOT NULL,
           decided_by VARCHAR(255) NULL) ENGINE=InnoDB`,
      ],
    },
    {
      // One row per `cqrs-sync verify`: `status` shows the last, the sink's /metrics its counts.
      // Counts are JSON, `{ "<Type>": { "<class>": n } }`, so a new class needs no migration.
      version: 4,
      name: 'verify runs',
      sql: [
        `CREATE TABLE IF NOT EXISTS cqrs_sink_verify_runs (
           id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
           started_at DATETIME(3) NOT NULL, finished_at DATETIME(3) NOT NULL,
           repair TINYINT(1) NOT NULL, clean TINYINT(1) NOT NULL,
           checked BIGINT NOT NULL, in_flight BIGINT NOT NULL,
           drift_counts TEXT NOT NULL, repaired_counts TEXT NOT NULL,
           KEY by_finished (finished_at)) ENGINE=InnoDB`,
      ],
    },
    {
      // The aggregate row is written for every event; its index on (status, status_since) cost more
      // than half of that upsert (docs/benchmarks.md). The index moves to a table holding only the
      // aggregates not `ok` (parked or waiting for a gap), written when a status changes; the
      // aggregate row keeps its status columns, with the same meaning, for every reader. The copy
      // is an upsert so that a run interrupted before the DROP INDEX can be repeated.
      version: 5,
      name: 'waiting aggregates',
      sql: [
        `CREATE TABLE IF NOT EXISTS cqrs_sink_waiting (
           aggregate_type ${bin(128)} NOT NULL, aggregate_id ${bin(191)} NOT NULL,
           status VARCHAR(8) NOT NULL, status_since DATETIME(3) NOT NULL,
           PRIMARY KEY (aggregate_type, aggregate_id), KEY by_status (status, status_since)) ENGINE=InnoDB`,
        `INSERT INTO cqrs_sink_waiting (aggregate_type, aggregate_id, status, status_since)
           SELECT aggregate_type, aggregate_id, status, status_since FROM cqrs_sink_aggregates
           WHERE status <> 'ok'
           ON DUPLICATE KEY UPDATE status = VALUES(status), status_since = VALUES(status_since)`,
        `ALTER TABLE cqrs_sink_aggregates DROP INDEX by_status`,
      ],
    },
    {
      // Every batch looked up its event ids in the decisions table: thousands of parameters for a
      // table that is nearly always empty. Sinks now keep the decisions in memory and read this
      // one row per batch, raised in the transaction of every decision (sink/tables/decisions.ts).
      version: 6,
      name: 'decisions generation',
      sql: [
        `CREATE TABLE IF NOT EXISTS cqrs_sink_decisions_generation (
           id TINYINT NOT NULL PRIMARY KEY, generation BIGINT NOT NULL) ENGINE=InnoDB`,
      ],
    },
  ],
};
