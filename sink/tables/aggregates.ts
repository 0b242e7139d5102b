/**
 * `cqrs_sink_aggregates`: one row per aggregate, the version gate (highest applied version, also
 * after a delete) and the parking state (`ok`, `gap`, `parked`). `cqrs_sink_waiting` holds a row
 * only for the aggregates not `ok` (their status, indexed), written in the same transaction as the
 * aggregate row whenever a status changes: the row written for every event stays narrow, and the
 * gap timeouts, counts and `dlq list` read the small table.
 */
import type { AggregateKey, AggregateRecord, AggregateStatus } from '../ports.js';
import { chunks, isDuplicateKey, num, rowsOf, type Queryable } from '../sql.js';

export const AGGREGATES_TABLE = 'cqrs_sink_aggregates';
export const WAITING_TABLE = 'cqrs_sink_waiting';

export const aggregateKey = (k: AggregateKey): string => `${k.aggregateType}\u0000${k.aggregateId}`;

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
          const rec = aggregateFromRow({ ...r, aggregate_type: type });
          out.set(aggregateKey(rec), rec);
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
          [
            records.map((r) => [
              r.aggregateType,
              r.aggregateId,
              r.version,
              r.deleted ? 1 : 0,
              r.statusSince,
            ]),
          ],
        );
      }
      return true;
    } catch (e) {
      if (isDuplicateKey(e)) return false;
      throw e;
    }
  }

  /**
   * Writes these records. `wasWaiting`: keys (`aggregateKey`) this transaction read with a status
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
      (r.status === 'ok' && !wasWaiting.has(aggregateKey(r)) ? narrow : wide).push(r);
    }
    // `deleted` before `version`: an assignment sees the columns assigned before it.
    const gated = `deleted = IF(VALUES(version) >= version, VALUES(deleted), deleted)`;
    const version = `version = GREATEST(version, VALUES(version))`;
    for (const part of chunks(narrow, 2000)) {
      await this.db.query(
        `INSERT INTO ${this.name} (aggregate_type, aggregate_id, version, deleted, status_since) VALUES ?
         ON DUPLICATE KEY UPDATE ${gated}, ${version}`,
        [
          part.map((r) => [
            r.aggregateType,
            r.aggregateId,
            r.version,
            r.deleted ? 1 : 0,
            r.statusSince,
          ]),
        ],
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
    return rows.map(aggregateFromRow);
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
