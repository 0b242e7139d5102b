/**
 * `cqrs_sink_aggregates`: one row per aggregate, the version gate (highest applied version, also
 * after a delete) and the parking state (`ok`, `gap`, `parked`). `cqrs_sink_waiting` holds a row
 * only for the aggregates not `ok` (their status, indexed), written in the same transaction as the
 * aggregate row whenever a status changes: the row written for every event stays narrow, and the
 * gap timeouts, counts and `dlq list` read the small table.
 */
import {
  aggregateKeyOf,
  type AggregateKey,
  type AggregateRecord,
  type AggregateStatus,
} from '../ports.js';
import {
  chunks,
  inKeyRange,
  isDuplicateKey,
  num,
  rowsOf,
  text,
  textOrNull,
  type KeyRange,
  type Queryable,
} from '../sql.js';

export const AGGREGATES_TABLE = 'cqrs_sink_aggregates';
export const WAITING_TABLE = 'cqrs_sink_waiting';

interface AggregateRow {
  aggregate_type: string;
  aggregate_id: string;
  version: string | number;
  deleted: number;
  status: AggregateStatus;
  status_since: Date;
  reason: string | null;
}

/** `type`: when the query selected it as a parameter, not a column. */
function aggregateFromRow(r: AggregateRow, type = r.aggregate_type): AggregateRecord {
  return {
    aggregateType: type,
    aggregateId: r.aggregate_id,
    version: Number(r.version),
    deleted: r.deleted === 1,
    status: r.status,
    statusSince: r.status_since,
    reason: r.reason,
  };
}

/** An aggregate's version gate and status, without the parking details: what verify compares. */
export type AggregateState = Pick<
  AggregateRecord,
  'aggregateId' | 'version' | 'deleted' | 'status'
>;

/** An aggregate not `ok` (parked or waiting for a gap), with its held rows' ids, as `dlq list`
 * shows it: values as mysql2 returns them. */
export type WaitingRow = Record<string, unknown>;

export class AggregatesTable {
  /** `name`, `waitingName`: the quoted physical names of the two tables. */
  constructor(
    private readonly db: Queryable,
    private readonly name: string,
    private readonly waitingName: string,
  ) {}

  /** Reads and locks these aggregates' rows (`FOR UPDATE`); missing ones are absent. */
  async lock(keys: readonly AggregateKey[]): Promise<Map<string, AggregateRecord>> {
    const byType = new Map<string, string[]>();
    for (const k of keys) {
      let ids = byType.get(k.aggregateType);
      if (!ids) byType.set(k.aggregateType, (ids = []));
      ids.push(k.aggregateId);
    }
    const out = new Map<string, AggregateRecord>();
    for (const [type, ids] of byType) {
      for (const part of chunks([...new Set(ids)], 2000)) {
        const rows = await rowsOf<AggregateRow>(
          this.db,
          `SELECT aggregate_id, version, deleted, status, status_since, reason FROM ${this.name}
           WHERE aggregate_type = ? AND aggregate_id IN (?) FOR UPDATE`,
          [type, part],
        );
        for (const r of rows) {
          const rec = aggregateFromRow(r, type);
          out.set(aggregateKeyOf(rec), rec);
        }
      }
    }
    return out;
  }

  /**
   * Records aggregates that have no row yet, all `ok`, and returns true; records none and returns
   * false when any has a row already (then `lock` and `save` decide). The inserted rows stay locked
   * by this transaction, as `lock` would have locked them.
   */
  async insertNew(records: readonly AggregateRecord[]): Promise<boolean> {
    // One statement, so all or nothing: InnoDB rolls back the failed statement, not the
    // transaction (the few rows it wrote until the duplicate are undone).
    try {
      if (records.length > 0) {
        await this.db.query(
          `INSERT INTO ${this.name} (aggregate_type, aggregate_id, version, deleted, status_since) VALUES ?`,
          [records.map(narrowRow)],
        );
      }
      return true;
    } catch (e) {
      if (isDuplicateKey(e)) return false;
      throw e;
    }
  }

  /**
   * Writes these records. `wasWaiting`: keys (`aggregateKeyOf`) this transaction read with a status
   * other than `ok`. A record `ok` that was not waiting (nearly all of them) writes only its version
   * and `deleted` (the status columns keep what they hold: `ok` for a new row); the others write the
   * whole row and their `cqrs_sink_waiting` row (upserted, or deleted when `ok` again). The version
   * is gated in the statement: a lower one never replaces a higher one.
   */
  async save(
    records: readonly AggregateRecord[],
    wasWaiting: ReadonlySet<string> = new Set(),
  ): Promise<void> {
    const narrow: AggregateRecord[] = [];
    const wide: AggregateRecord[] = [];
    for (const r of records) {
      (r.status === 'ok' && !wasWaiting.has(aggregateKeyOf(r)) ? narrow : wide).push(r);
    }
    // `deleted` before `version`: an assignment sees the columns assigned before it.
    const gated = `deleted = IF(VALUES(version) >= version, VALUES(deleted), deleted)`;
    const version = `version = GREATEST(version, VALUES(version))`;
    for (const part of chunks(narrow, 2000)) {
      await this.db.query(
        `INSERT INTO ${this.name} (aggregate_type, aggregate_id, version, deleted, status_since) VALUES ?
         ON DUPLICATE KEY UPDATE ${gated}, ${version}`,
        [part.map(narrowRow)],
      );
    }
    for (const part of chunks(wide, 2000)) {
      await this.db.query(
        `INSERT INTO ${this.name} (aggregate_type, aggregate_id, version, deleted, status, status_since, reason) VALUES ?
         ON DUPLICATE KEY UPDATE ${gated}, status = VALUES(status), status_since = VALUES(status_since),
           reason = VALUES(reason), ${version}`,
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
      const waiting = part.filter((r) => r.status !== 'ok');
      const ok = part.filter((r) => r.status === 'ok');
      if (waiting.length > 0) {
        await this.db.query(
          `INSERT INTO ${this.waitingName} (aggregate_type, aggregate_id, status, status_since) VALUES ?
           ON DUPLICATE KEY UPDATE status = VALUES(status), status_since = VALUES(status_since)`,
          [waiting.map((r) => [r.aggregateType, r.aggregateId, r.status, r.statusSince])],
        );
      }
      if (ok.length > 0) {
        await this.db.query(
          `DELETE FROM ${this.waitingName} WHERE (aggregate_type, aggregate_id) IN (?)`,
          [ok.map((r) => [r.aggregateType, r.aggregateId])],
        );
      }
    }
  }

  /** Locks and returns (at most 1000) aggregates in `status` since before `before`, oldest first. */
  async withStatus(status: AggregateStatus, before: Date): Promise<AggregateRecord[]> {
    const rows = await rowsOf<AggregateRow>(
      this.db,
      `SELECT a.aggregate_type, a.aggregate_id, a.version, a.deleted, a.status, a.status_since, a.reason
       FROM ${this.waitingName} w JOIN ${this.name} a
         ON a.aggregate_type = w.aggregate_type AND a.aggregate_id = w.aggregate_id
       WHERE w.status = ? AND w.status_since < ? ORDER BY w.status_since LIMIT 1000 FOR UPDATE`,
      [status, before],
    );
    return rows.map((r) => aggregateFromRow(r));
  }

  // `cqrs-sync verify` compares these rows with MongoDB's documents, one aggregate type at a time.

  /**
   * Reads and locks (`FOR UPDATE`) at most `limit` rows of `type` with an id in `range`, in no
   * particular order: verify's merge reads a batch's key range so, orphans included. Only the
   * columns verify compares: this read runs for every aggregate checked.
   */
  async lockRange(type: string, range: KeyRange, limit: number): Promise<AggregateState[]> {
    const r = inKeyRange('aggregate_id', range);
    const rows = await rowsOf<Omit<AggregateRow, 'aggregate_type' | 'status_since' | 'reason'>>(
      this.db,
      `SELECT aggregate_id, version, deleted, status FROM ${this.name}
       WHERE aggregate_type = ? AND ${r.where} LIMIT ? FOR UPDATE`,
      [type, ...r.params, limit],
    );
    return rows.map((row) => ({
      aggregateId: row.aggregate_id,
      version: Number(row.version),
      deleted: row.deleted === 1,
      status: row.status,
    }));
  }

  /** Ids of `type`'s aggregates not deleted, in `range`, in id order, at most `limit`: verify
   * walks a range for orphans in such pages. */
  async liveIds(type: string, range: KeyRange, limit: number): Promise<string[]> {
    const r = inKeyRange('aggregate_id', range);
    const rows = await rowsOf<{ k: unknown }>(
      this.db,
      `SELECT aggregate_id AS k FROM ${this.name}
       WHERE aggregate_type = ? AND deleted = 0 AND ${r.where} ORDER BY aggregate_id LIMIT ?`,
      [type, ...r.params, limit],
    );
    return rows.map((row) => text(row.k));
  }

  /** The recorded version of these aggregates of `type`, by id; ids with no row are absent. */
  async versions(type: string, ids: readonly string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const part of chunks([...new Set(ids)], 2000)) {
      const rows = await rowsOf<{ aggregate_id: unknown; version: unknown }>(
        this.db,
        `SELECT aggregate_id, version FROM ${this.name} WHERE aggregate_type = ? AND aggregate_id IN (?)`,
        [type, part],
      );
      for (const r of rows) out.set(text(r.aggregate_id), num(r.version));
    }
    return out;
  }

  /**
   * The type (`varchar(191)`) and collation of the `aggregate_id` column, as the server declares
   * them (verify merges by key range only when ids sort as MongoDB sorts `_id`); undefined when the
   * table does not exist.
   */
  async idColumn(): Promise<{ type: string; collation: string | null } | undefined> {
    try {
      const rows = await rowsOf<{ Type: unknown; Collation: unknown }>(
        this.db,
        `SHOW FULL COLUMNS FROM ${this.name} WHERE Field = 'aggregate_id'`,
      );
      const r = rows[0];
      return r ? { type: text(r.Type), collation: textOrNull(r.Collation) } : undefined;
    } catch (e) {
      // ER_NO_SUCH_TABLE: the reads that need the table say so.
      if ((e as { errno?: number }).errno === 1146) return undefined;
      throw e;
    }
  }

  /** Aggregates parked behind a dead-lettered event. */
  async countParked(): Promise<number> {
    const rows = await rowsOf(
      this.db,
      `SELECT COUNT(*) AS n FROM ${this.waitingName} WHERE status = 'parked'`,
    );
    return num(rows[0]?.n);
  }

  /** Aggregates parked or waiting for a gap to close. */
  async countNotOk(): Promise<number> {
    const rows = await rowsOf(this.db, `SELECT COUNT(*) AS n FROM ${this.waitingName}`);
    return num(rows[0]?.n);
  }

  /** Aggregates not `ok`, oldest status first, each with the ids of its rows in `held` (the held
   * table's quoted physical name), in the order a re-drive applies them. */
  async waiting(held: string): Promise<WaitingRow[]> {
    return rowsOf(
      this.db,
      `SELECT a.aggregate_type, a.aggregate_id, a.version, a.status, a.status_since, a.reason,
         GROUP_CONCAT(h.id ORDER BY h.version, h.id) AS held_ids
       FROM ${this.waitingName} w JOIN ${this.name} a
         ON a.aggregate_type = w.aggregate_type AND a.aggregate_id = w.aggregate_id
       LEFT JOIN ${held} h
         ON h.aggregate_type = a.aggregate_type AND h.aggregate_id = a.aggregate_id
       GROUP BY a.aggregate_type, a.aggregate_id, a.version, a.status, a.status_since, a.reason
       ORDER BY a.status_since`,
    );
  }
}

/** The columns a row without a waiting status writes (status keeps its default, `ok`). */
const narrowRow = (r: AggregateRecord): unknown[] => [
  r.aggregateType,
  r.aggregateId,
  r.version,
  r.deleted ? 1 : 0,
  r.statusSince,
];
