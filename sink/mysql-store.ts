/**
 * The MySQL/MariaDB adapter of the sink's store ports. SQL stays within what MariaDB 10.11 and
 * MySQL 8 both accept (`ON DUPLICATE KEY UPDATE … VALUES(col)`, no RETURNING, no CTE in DML).
 * Transactions run at READ COMMITTED: rows are locked by key (`FOR UPDATE`), no gap locks between
 * partitions applied side by side.
 */
import mysql from 'mysql2/promise';
import { PipelineError, isPipelineError } from '../schemas/errors.js';
import { classifyError } from './mysql-errors.js';
import { SINK_TABLES } from './migrations.js';
import { render, type Operation } from './projection.js';
import type {
  AggregateKey,
  AggregateRecord,
  AggregateStatus,
  Decision,
  DecisionRecord,
  HeldKind,
  HeldRecord,
  OffsetStore,
  PartitionOffset,
  ReadModelStore,
  SinkTransaction,
} from './ports.js';
import { quoteIdentifier } from './sql.js';

export interface MysqlStoreOptions {
  /** A URL (the store owns the pool) or a pool it borrows. */
  readonly connection: string | mysql.Pool;
  readonly poolSize?: number;
  readonly lockWaitTimeoutMs?: number;
  /** Physical name of every table, logical -> physical (shadow rebuilds add a suffix). */
  readonly physical?: (table: string) => string;
}

const MAX_PARAMS = 60_000;
export const aggregateKey = (k: AggregateKey): string => `${k.aggregateType}\u0000${k.aggregateId}`;

const q = quoteIdentifier;

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

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

  constructor(o: MysqlStoreOptions) {
    this.own = typeof o.connection === 'string';
    this.pool =
      typeof o.connection === 'string' ? createPool(o.connection, o.poolSize) : o.connection;
    this.physical = o.physical ?? ((t) => t);
    this.lockWaitS = Math.max(1, Math.ceil((o.lockWaitTimeoutMs ?? 10_000) / 1000));
  }

  private t(logical: string): string {
    return q(this.physical(logical));
  }

  async transaction<T>(fn: (tx: SinkTransaction) => Promise<T>): Promise<T> {
    return this.run((tx) => fn(tx), true);
  }

  /**
   * Runs `fn` in a transaction that is always rolled back: `cqrs-sync verify` lets projections write
   * the rows they would make, reads them, and leaves nothing behind. `query` reads on the same
   * connection.
   */
  async rolledBack<T>(
    fn: (
      tx: SinkTransaction,
      query: (sql: string, params?: unknown[]) => Promise<unknown[]>,
    ) => Promise<T>,
  ): Promise<T> {
    return this.run(fn, false);
  }

  private async run<T>(
    fn: (
      tx: SinkTransaction,
      query: (sql: string, params?: unknown[]) => Promise<unknown[]>,
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
        const result = await fn(new MysqlTransaction(conn, (x) => this.t(x), this.physical), query);
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
  async countParked(): Promise<number> {
    const [rows] = await this.pool.query<mysql.RowDataPacket[]>(
      `SELECT COUNT(*) AS n FROM ${this.t(SINK_TABLES.aggregates)} WHERE status = 'parked'`,
    );
    return Number(rows[0]?.n ?? 0);
  }

  /** Dead letters: held rows of kind `dead`, the ones `dlq list` shows (the dead-letter topic keeps
   * copies, also of letters since dropped or re-driven, so its record count is not this). */
  async countDeadLetters(): Promise<number> {
    const [rows] = await this.pool.query<mysql.RowDataPacket[]>(
      `SELECT COUNT(*) AS n FROM ${this.t(SINK_TABLES.held)} WHERE kind = 'dead'`,
    );
    return Number(rows[0]?.n ?? 0);
  }

  async load(group: string, topic: string): Promise<Map<number, string>> {
    try {
      const [rows] = await this.pool.query(
        `SELECT kpartition, next_offset FROM ${this.t(SINK_TABLES.offsets)} WHERE consumer_group = ? AND topic = ?`,
        [group, topic],
      );
      return new Map(
        (rows as { kpartition: number; next_offset: string }[]).map((r) => [
          r.kpartition,
          r.next_offset,
        ]),
      );
    } catch (e) {
      throw classifyError(e);
    }
  }

  /** Overwrites stored offsets (replay); `saveOffsets` in a transaction only moves them forward. */
  async setOffsets(group: string, offsets: readonly PartitionOffset[]): Promise<void> {
    for (const o of offsets) {
      await this.pool.query(
        `INSERT INTO ${this.t(SINK_TABLES.offsets)} (consumer_group, topic, kpartition, next_offset) VALUES (?, ?, ?, ?)
         ON DUPLICATE KEY UPDATE next_offset = VALUES(next_offset), updated_at = CURRENT_TIMESTAMP(3)`,
        [group, o.topic, o.partition, o.next],
      );
    }
  }

  async close(): Promise<void> {
    if (this.own) await this.pool.end();
  }
}

interface AggregateRow {
  aggregate_type: string;
  aggregate_id: string;
  version: string | number;
  deleted: number;
  status: AggregateStatus;
  status_since: Date;
  reason: string | null;
}

function aggregateFromRow(r: AggregateRow): AggregateRecord {
  return {
    aggregateType: r.aggregate_type,
    aggregateId: r.aggregate_id,
    version: Number(r.version),
    deleted: r.deleted === 1,
    status: r.status,
    statusSince: r.status_since,
    reason: r.reason,
  };
}

interface HeldRow {
  id: number | string;
  kind: HeldKind;
  aggregate_type: string;
  aggregate_id: string;
  version: number | string;
  event_id: string;
  event_type: string;
  topic: string;
  kpartition: number;
  koffset: number | string;
  record_key: Buffer | null;
  record_value: Buffer | null;
  record_headers: string;
  error_code: string | null;
  error_message: string | null;
  attempts: number;
  first_failed_at: Date | null;
  held_at: Date;
}

export function heldFromRow(r: HeldRow): HeldRecord {
  return {
    id: Number(r.id),
    kind: r.kind,
    aggregateType: r.aggregate_type,
    aggregateId: r.aggregate_id,
    version: Number(r.version),
    eventId: r.event_id,
    eventType: r.event_type,
    topic: r.topic,
    partition: r.kpartition,
    offset: String(r.koffset),
    key: r.record_key,
    value: r.record_value,
    headers: JSON.parse(r.record_headers) as Record<string, string>,
    errorCode: r.error_code,
    errorMessage: r.error_message,
    attempts: r.attempts,
    firstFailedAt: r.first_failed_at,
    heldAt: r.held_at,
  };
}

class MysqlTransaction implements SinkTransaction {
  constructor(
    private readonly conn: mysql.PoolConnection,
    private readonly t: (logical: string) => string,
    private readonly physical: (table: string) => string,
  ) {}

  async claim(eventIds: readonly string[]): Promise<boolean> {
    if (eventIds.length === 0) return true;
    try {
      // One statement, so all or nothing: InnoDB rolls back the failed statement, not the
      // transaction. A plain INSERT, not INSERT IGNORE, which would also turn an over-long id
      // into a truncated one instead of an error.
      await this.conn.query(`INSERT INTO ${this.t(SINK_TABLES.events)} (event_id) VALUES ?`, [
        eventIds.map((id) => [id]),
      ]);
      return true;
    } catch (e) {
      if ((e as { errno?: number }).errno === 1062) return false;
      throw e;
    }
  }

  async seen(eventIds: readonly string[]): Promise<Set<string>> {
    const out = new Set<string>();
    for (const part of chunks(eventIds, 5000)) {
      const [rows] = await this.conn.query(
        `SELECT event_id FROM ${this.t(SINK_TABLES.events)} WHERE event_id IN (?)`,
        [part],
      );
      for (const r of rows as { event_id: string }[]) out.add(r.event_id);
    }
    return out;
  }

  async markSeen(eventIds: readonly string[]): Promise<boolean> {
    for (const part of chunks(eventIds, 5000)) {
      try {
        await this.conn.query(`INSERT INTO ${this.t(SINK_TABLES.events)} (event_id) VALUES ?`, [
          part.map((id) => [id]),
        ]);
      } catch (e) {
        if ((e as { errno?: number }).errno === 1062) return false;
        throw e;
      }
    }
    return true;
  }

  async lockAggregates(keys: readonly AggregateKey[]): Promise<Map<string, AggregateRecord>> {
    const byType = new Map<string, string[]>();
    for (const k of keys) {
      let ids = byType.get(k.aggregateType);
      if (!ids) byType.set(k.aggregateType, (ids = []));
      ids.push(k.aggregateId);
    }
    const out = new Map<string, AggregateRecord>();
    for (const [type, ids] of byType) {
      for (const part of chunks([...new Set(ids)], 2000)) {
        const [rows] = await this.conn.query(
          `SELECT aggregate_id, version, deleted, status, status_since, reason FROM ${this.t(SINK_TABLES.aggregates)}
           WHERE aggregate_type = ? AND aggregate_id IN (?) FOR UPDATE`,
          [type, part],
        );
        for (const r of rows as AggregateRow[]) {
          const rec = aggregateFromRow({ ...r, aggregate_type: type });
          out.set(aggregateKey(rec), rec);
        }
      }
    }
    return out;
  }

  async saveAggregates(records: readonly AggregateRecord[]): Promise<void> {
    for (const part of chunks(records, 2000)) {
      await this.conn.query(
        `INSERT INTO ${this.t(SINK_TABLES.aggregates)} (aggregate_type, aggregate_id, version, deleted, status, status_since, reason) VALUES ?
         ON DUPLICATE KEY UPDATE version = VALUES(version), deleted = VALUES(deleted), status = VALUES(status),
           status_since = VALUES(status_since), reason = VALUES(reason)`,
        [
          part.map((r) => [
            r.aggregateType,
            r.aggregateId,
            r.version,
            r.deleted ? 1 : 0,
            r.status,
            r.statusSince,
            r.reason,
          ]),
        ],
      );
    }
  }

  async heldOf(keys: readonly AggregateKey[]): Promise<HeldRecord[]> {
    const out: HeldRecord[] = [];
    for (const k of keys) {
      const [rows] = await this.conn.query(
        `SELECT * FROM ${this.t(SINK_TABLES.held)} WHERE aggregate_type = ? AND aggregate_id = ? ORDER BY version, id`,
        [k.aggregateType, k.aggregateId],
      );
      out.push(...(rows as HeldRow[]).map(heldFromRow));
    }
    return out;
  }

  async hold(records: readonly HeldRecord[]): Promise<void> {
    for (const part of chunks(records, 500)) {
      await this.conn.query(
        `INSERT IGNORE INTO ${this.t(SINK_TABLES.held)} (kind, aggregate_type, aggregate_id, version, event_id, event_type,
           topic, kpartition, koffset, record_key, record_value, record_headers, error_code, error_message, attempts,
           first_failed_at, held_at) VALUES ?`,
        [
          part.map((r) => [
            r.kind,
            r.aggregateType,
            r.aggregateId,
            r.version,
            r.eventId,
            r.eventType,
            r.topic,
            r.partition,
            r.offset,
            r.key,
            r.value,
            JSON.stringify(r.headers),
            r.errorCode,
            r.errorMessage,
            r.attempts,
            r.firstFailedAt,
            r.heldAt,
          ]),
        ],
      );
    }
  }

  async updateHeld(id: number, c: Partial<HeldRecord>): Promise<void> {
    await this.conn.query(
      `UPDATE ${this.t(SINK_TABLES.held)} SET kind = COALESCE(?, kind), error_code = COALESCE(?, error_code),
         error_message = COALESCE(?, error_message), attempts = COALESCE(?, attempts),
         first_failed_at = COALESCE(first_failed_at, ?) WHERE id = ?`,
      [
        c.kind ?? null,
        c.errorCode ?? null,
        c.errorMessage ?? null,
        c.attempts ?? null,
        c.firstFailedAt ?? null,
        id,
      ],
    );
  }

  async release(ids: readonly number[]): Promise<void> {
    for (const part of chunks(ids, 5000)) {
      await this.conn.query(`DELETE FROM ${this.t(SINK_TABLES.held)} WHERE id IN (?)`, [part]);
    }
  }

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
          `INSERT INTO ${this.t(op.table)} (${cols}) VALUES ? ON DUPLICATE KEY UPDATE ${updates.join(', ')}`,
          [part],
        );
      }
    }
  }

  async aggregatesWithStatus(status: AggregateStatus, before: Date): Promise<AggregateRecord[]> {
    const [rows] = await this.conn.query(
      `SELECT aggregate_type, aggregate_id, version, deleted, status, status_since, reason FROM ${this.t(SINK_TABLES.aggregates)}
       WHERE status = ? AND status_since < ? ORDER BY status_since LIMIT 1000 FOR UPDATE`,
      [status, before],
    );
    return (rows as AggregateRow[]).map(aggregateFromRow);
  }

  async findHeldAggregate(target: string): Promise<AggregateKey | undefined> {
    const slash = target.indexOf('/');
    const [rows] = await this.conn.query(
      `SELECT aggregate_type, aggregate_id FROM ${this.t(SINK_TABLES.held)}
       WHERE id = ? OR event_id = ? OR (aggregate_type = ? AND aggregate_id = ?) OR aggregate_id = ?
       ORDER BY id LIMIT 1`,
      [
        /^\d+$/.test(target) ? target : -1,
        target,
        slash > 0 ? target.slice(0, slash) : '',
        slash > 0 ? target.slice(slash + 1) : '',
        target,
      ],
    );
    const r = (rows as { aggregate_type: string; aggregate_id: string }[])[0];
    return r ? { aggregateType: r.aggregate_type, aggregateId: r.aggregate_id } : undefined;
  }

  async decisions(eventIds: readonly string[]): Promise<Map<string, Decision>> {
    const out = new Map<string, Decision>();
    for (const part of chunks(eventIds, 5000)) {
      const [rows] = await this.conn.query(
        `SELECT event_id, decision FROM ${this.t(SINK_TABLES.decisions)} WHERE event_id IN (?)`,
        [part],
      );
      for (const r of rows as { event_id: string; decision: Decision }[])
        out.set(r.event_id, r.decision);
    }
    return out;
  }

  async decide(records: readonly DecisionRecord[]): Promise<void> {
    for (const part of chunks(records, 2000)) {
      await this.conn.query(
        `INSERT INTO ${this.t(SINK_TABLES.decisions)} (event_id, aggregate_type, aggregate_id, version, decision, decided_at, decided_by) VALUES ?
         ON DUPLICATE KEY UPDATE version = VALUES(version), decision = VALUES(decision),
           decided_at = VALUES(decided_at), decided_by = VALUES(decided_by)`,
        [
          part.map((r) => [
            r.eventId,
            r.aggregateType,
            r.aggregateId,
            r.version,
            r.decision,
            r.decidedAt,
            r.decidedBy,
          ]),
        ],
      );
    }
  }

  async saveOffsets(group: string, offsets: readonly PartitionOffset[]): Promise<void> {
    if (offsets.length === 0) return;
    await this.conn.query(
      `INSERT INTO ${this.t(SINK_TABLES.offsets)} (consumer_group, topic, kpartition, next_offset) VALUES ?
       ON DUPLICATE KEY UPDATE next_offset = GREATEST(next_offset, VALUES(next_offset)), updated_at = CURRENT_TIMESTAMP(3)`,
      [offsets.map((o) => [group, o.topic, o.partition, o.next])],
    );
  }
}
