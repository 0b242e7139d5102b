/**
 * The MySQL/MariaDB adapter of the sink's store ports. SQL stays within what MariaDB 10.11 and
 * MySQL 8 both accept (`ON DUPLICATE KEY UPDATE … VALUES(col)`, no RETURNING, no CTE in DML).
 * Transactions run at READ COMMITTED: rows are locked by key (`FOR UPDATE`), no gap locks between
 * partitions applied side by side.
 */
import mysql from 'mysql2/promise';
import { PipelineError, isPipelineError } from '../schemas/errors.js';
import { classifyError } from './mysql-errors.js';
import { render, type Operation } from './projection.js';
import {
  aggregateKeyOf,
  type AggregateKey,
  type AggregateRecord,
  type AggregateStatus,
  type Decision,
  type DecisionRecord,
  type HeldRecord,
  type OffsetStore,
  type PartitionOffset,
  type ReadModelStore,
  type SinkTransaction,
} from './ports.js';
import { chunks, quoteIdentifier } from './sql.js';
import { DecisionsCache, sinkTables, type SinkTables, type VerifyRun } from './tables/index.js';

export interface MysqlStoreOptions {
  /** A URL (the store owns the pool) or a pool it borrows. */
  readonly connection: string | mysql.Pool;
  readonly poolSize?: number;
  readonly lockWaitTimeoutMs?: number;
  /** Physical name of every table, logical -> physical (shadow rebuilds add a suffix). */
  readonly physical?: (table: string) => string;
}

const MAX_PARAMS = 60_000;

const q = quoteIdentifier;

export function createPool(url: string, size = 8): mysql.Pool {
  return mysql.createPool({
    uri: url,
    connectionLimit: size,
    supportBigNumbers: true,
    bigNumberStrings: true,
    dateStrings: false,
    timezone: 'Z',
    enableKeepAlive: true,
  });
}

export class MysqlStore implements ReadModelStore, OffsetStore {
  readonly pool: mysql.Pool;
  private readonly own: boolean;
  private readonly prepared = new WeakSet<object>();
  readonly physical: (table: string) => string;
  private readonly lockWaitS: number;
  /** The sink's tables on the pool (outside transactions). */
  private readonly tables: SinkTables;
  /** The operators' decisions, shared by this store's transactions. */
  private readonly decisionsCache = new DecisionsCache();

  constructor(o: MysqlStoreOptions) {
    this.own = typeof o.connection === 'string';
    this.pool =
      typeof o.connection === 'string' ? createPool(o.connection, o.poolSize) : o.connection;
    this.physical = o.physical ?? ((t) => t);
    this.lockWaitS = Math.max(1, Math.ceil((o.lockWaitTimeoutMs ?? 10_000) / 1000));
    this.tables = sinkTables(this.pool, this.physical);
  }

  async transaction<T>(fn: (tx: SinkTransaction) => Promise<T>): Promise<T> {
    return this.run((tx) => fn(tx), true);
  }

  /**
   * Runs `fn` in a transaction that is always rolled back: `cqrs-sync verify` lets projections write
   * the rows they would make, reads them, and leaves nothing behind. `query` (the read model's own
   * tables) and `tables` (the sink's) read on the same connection.
   */
  async rolledBack<T>(
    fn: (
      tx: SinkTransaction,
      query: (sql: string, params?: unknown[]) => Promise<unknown[]>,
      tables: SinkTables,
    ) => Promise<T>,
  ): Promise<T> {
    return this.run(fn, false);
  }

  private async run<T>(
    fn: (
      tx: SinkTransaction,
      query: (sql: string, params?: unknown[]) => Promise<unknown[]>,
      tables: SinkTables,
    ) => Promise<T>,
    commit: boolean,
  ): Promise<T> {
    let conn: mysql.PoolConnection;
    try {
      conn = await this.pool.getConnection();
    } catch (e) {
      throw classifyError(e);
    }
    let broken = false;
    try {
      const core = (conn as unknown as { connection: object }).connection;
      if (!this.prepared.has(core)) {
        await conn.query('SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED');
        await conn.query(
          // Strict: data that does not fit is refused (and dead-lettered), never silently truncated.
          `SET SESSION innodb_lock_wait_timeout = ${this.lockWaitS}, time_zone = '+00:00', sql_mode = CONCAT(@@sql_mode, ',STRICT_TRANS_TABLES')`,
        );
        this.prepared.add(core);
      }
      await conn.beginTransaction();
      try {
        const c = conn;
        const query = async (sql: string, params: unknown[] = []): Promise<unknown[]> =>
          (await c.query(sql, params))[0] as unknown[];
        const tx = new MysqlTransaction(conn, this.physical, this.decisionsCache);
        const result = await fn(tx, query, tx.tables);
        if (commit) await conn.commit();
        else await conn.rollback();
        return result;
      } catch (e) {
        await conn.rollback().catch(() => {
          broken = true;
        });
        throw e;
      }
    } catch (e) {
      const err = classifyError(e);
      // A connection that failed mid-transaction is not given back for reuse.
      if (err.code === 'database_unavailable' && !isPipelineError(e)) broken = true;
      throw err;
    } finally {
      if (broken) conn.destroy();
      else conn.release();
    }
  }

  async checkTables(
    tables: readonly { table: string; columns: readonly string[]; where: string }[],
  ): Promise<void> {
    const names = [...new Set(tables.map((t) => this.physical(t.table)))];
    if (names.length === 0) return;
    let rows: { table_name: string; column_name: string }[];
    try {
      const [r] = await this.pool.query(
        `SELECT TABLE_NAME AS table_name, COLUMN_NAME AS column_name FROM information_schema.COLUMNS
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN (?)`,
        [names],
      );
      rows = r as typeof rows;
    } catch (e) {
      throw classifyError(e);
    }
    const have = new Map<string, Set<string>>();
    for (const r of rows) {
      let s = have.get(r.table_name);
      if (!s) have.set(r.table_name, (s = new Set()));
      s.add(r.column_name.toLowerCase());
    }
    const problems: string[] = [];
    for (const t of tables) {
      const cols = have.get(this.physical(t.table));
      if (!cols) {
        problems.push(`${t.where}: table ${t.table} does not exist`);
        continue;
      }
      const missing = t.columns.filter((c) => !cols.has(c.toLowerCase()));
      if (missing.length > 0) {
        problems.push(`${t.where}: table ${t.table} has no column ${missing.join(', ')}`);
      }
    }
    if (problems.length > 0) {
      throw new PipelineError(
        'config_invalid',
        `the read-model database does not match the projections:\n  ${problems.join('\n  ')}\n(run the migrations: \`cqrs-sync sink migrate\`, or fix the projection)`,
        { retriable: false },
      );
    }
  }

  /** A cheap round trip for readiness checks; rejects after `timeoutMs`. */
  async ping(timeoutMs = 2000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    // The query timeout does not cover getting a connection, which is what hangs when MySQL is down.
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(new Error(`MySQL did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
    });
    try {
      await Promise.race([this.pool.query({ sql: 'SELECT 1', timeout: timeoutMs }), late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Aggregates parked behind a dead-lettered event. */
  countParked(): Promise<number> {
    return this.tables.aggregates.countParked();
  }

  /** Dead letters: held rows of kind `dead` (sink/tables/held.ts). */
  countDeadLetters(): Promise<number> {
    return this.tables.held.countDead();
  }

  /** The last `cqrs-sync verify` run (sink/tables/verify-runs.ts); undefined when none ran. */
  lastVerifyRun(): Promise<VerifyRun | undefined> {
    return this.tables.verifyRuns.last();
  }

  async load(group: string, topic: string): Promise<Map<number, string>> {
    try {
      return await this.tables.offsets.load(group, topic);
    } catch (e) {
      throw classifyError(e);
    }
  }

  /** Overwrites stored offsets (replay); `saveOffsets` in a transaction only moves them forward. */
  setOffsets(group: string, offsets: readonly PartitionOffset[]): Promise<void> {
    return this.tables.offsets.set(group, offsets);
  }

  async close(): Promise<void> {
    if (this.own) await this.pool.end();
  }
}

/** One transaction: the port's methods, each on the table module that holds its table's SQL. */
class MysqlTransaction implements SinkTransaction {
  /** The sink's tables on this transaction's connection. */
  readonly tables: SinkTables;
  private readonly waiting = new Set<string>();

  constructor(
    private readonly conn: mysql.PoolConnection,
    private readonly physical: (table: string) => string,
    private readonly decisionsCache: DecisionsCache,
  ) {
    this.tables = sinkTables(conn, physical);
  }

  claim(eventIds: readonly string[]): Promise<boolean> {
    return this.tables.events.claim(eventIds);
  }

  seen(eventIds: readonly string[]): Promise<Set<string>> {
    return this.tables.events.seen(eventIds);
  }

  markSeen(eventIds: readonly string[]): Promise<boolean> {
    return this.tables.events.markSeen(eventIds);
  }

  async lockAggregates(keys: readonly AggregateKey[]): Promise<Map<string, AggregateRecord>> {
    const read = await this.tables.aggregates.lock(keys);
    this.noteWaiting(read.values());
    return read;
  }

  insertNewAggregates(records: readonly AggregateRecord[]): Promise<boolean> {
    return this.tables.aggregates.insertNew(records);
  }

  saveAggregates(records: readonly AggregateRecord[]): Promise<void> {
    return this.tables.aggregates.save(records, this.waiting);
  }

  heldOf(keys: readonly AggregateKey[]): Promise<HeldRecord[]> {
    return this.tables.held.of(keys);
  }

  hold(records: readonly HeldRecord[]): Promise<void> {
    return this.tables.held.hold(records);
  }

  updateHeld(id: number, change: Partial<HeldRecord>): Promise<void> {
    return this.tables.held.update(id, change);
  }

  release(ids: readonly number[]): Promise<void> {
    return this.tables.held.release(ids);
  }

  async aggregatesWithStatus(status: AggregateStatus, before: Date): Promise<AggregateRecord[]> {
    const read = await this.tables.aggregates.withStatus(status, before);
    this.noteWaiting(read);
    return read;
  }

  /** Remembers which aggregates this transaction read (and locked) not `ok`: saving them writes
   * their status, the others' saves only their version. */
  private noteWaiting(read: Iterable<AggregateRecord>): void {
    for (const a of read) if (a.status !== 'ok') this.waiting.add(aggregateKeyOf(a));
  }

  findHeldAggregate(target: string): Promise<AggregateKey | undefined> {
    return this.tables.held.findAggregate(target);
  }

  decisions(eventIds: readonly string[]): Promise<Map<string, Decision>> {
    return this.decisionsCache.of(this.tables.decisions, eventIds);
  }

  decide(records: readonly DecisionRecord[]): Promise<void> {
    return this.tables.decisions.decide(records);
  }

  saveOffsets(group: string, offsets: readonly PartitionOffset[]): Promise<void> {
    return this.tables.offsets.saveForward(group, offsets);
  }

  /** The projections' operations: SQL on the read model's own tables, rendered from the plan. */
  async execute(ops: readonly Operation[]): Promise<void> {
    let i = 0;
    while (i < ops.length) {
      const op = ops[i];
      if (!op) break;
      if (op.op === 'statement') {
        const { sql, params } = render(op.statement, this.physical);
        await this.conn.query(sql, params);
        i++;
        continue;
      }
      // Merge consecutive upserts into the same table with the same columns.
      const rows: (readonly unknown[])[] = [...op.rows];
      let j = i + 1;
      for (; j < ops.length; j++) {
        const next = ops[j];
        if (
          next?.op !== 'upsert' ||
          next.table !== op.table ||
          next.versionColumn !== op.versionColumn ||
          next.columns.join() !== op.columns.join()
        )
          break;
        rows.push(...next.rows);
      }
      i = j;
      const cols = op.columns.map(q).join(', ');
      const vc = op.versionColumn;
      const updates = op.columns
        .filter((c) => c !== vc)
        .map((c) =>
          vc
            ? `${q(c)} = IF(VALUES(${q(vc)}) > ${q(vc)}, VALUES(${q(c)}), ${q(c)})`
            : `${q(c)} = VALUES(${q(c)})`,
        );
      if (vc) updates.push(`${q(vc)} = GREATEST(${q(vc)}, VALUES(${q(vc)}))`);
      const size = Math.max(1, Math.min(2000, Math.floor(MAX_PARAMS / op.columns.length)));
      for (const part of chunks(rows, size)) {
        await this.conn.query(
          `INSERT INTO ${q(this.physical(op.table))} (${cols}) VALUES ? ON DUPLICATE KEY UPDATE ${updates.join(', ')}`,
          [part],
        );
      }
    }
  }
}
