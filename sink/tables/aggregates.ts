/**
 * `cqrs_sink_aggregates`: one row per aggregate, the version gate (highest applied version, also
 * after a delete) and the parking state (`ok`, `gap`, `parked`).
 */
import type { AggregateKey, AggregateRecord, AggregateStatus } from '../ports.js';
import { chunks, num, rowsOf, type Queryable } from '../sql.js';

export const AGGREGATES_TABLE = 'cqrs_sink_aggregates';

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
  /** `name`: the quoted physical name. */
  constructor(
    private readonly db: Queryable,
    private readonly name: string,
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

  async save(records: readonly AggregateRecord[]): Promise<void> {
    for (const part of chunks(records, 2000)) {
      await this.db.query(
        `INSERT INTO ${this.name} (aggregate_type, aggregate_id, version, deleted, status, status_since, reason) VALUES ?
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

  /** Locks and returns (at most 1000) aggregates in `status` since before `before`, oldest first. */
  async withStatus(status: AggregateStatus, before: Date): Promise<AggregateRecord[]> {
    const rows = await rowsOf<AggregateRow>(
      this.db,
      `SELECT aggregate_type, aggregate_id, version, deleted, status, status_since, reason FROM ${this.name}
       WHERE status = ? AND status_since < ? ORDER BY status_since LIMIT 1000 FOR UPDATE`,
      [status, before],
    );
    return rows.map(aggregateFromRow);
  }

  /** Aggregates parked behind a dead-lettered event. */
  async countParked(): Promise<number> {
    const rows = await rowsOf(
      this.db,
      `SELECT COUNT(*) AS n FROM ${this.name} WHERE status = 'parked'`,
    );
    return num(rows[0]?.n);
  }

  /** Aggregates parked or waiting for a gap to close. */
  async countNotOk(): Promise<number> {
    const rows = await rowsOf(
      this.db,
      `SELECT COUNT(*) AS n FROM ${this.name} WHERE status <> 'ok'`,
    );
    return num(rows[0]?.n);
  }

  /** Aggregates not `ok`, oldest status first, each with the ids of its rows in `held` (the held
   * table's quoted physical name), in the order a re-drive applies them. */
  async waiting(held: string): Promise<WaitingRow[]> {
    return rowsOf(
      this.db,
      `SELECT a.aggregate_type, a.aggregate_id, a.version, a.status, a.status_since, a.reason,
         GROUP_CONCAT(h.id ORDER BY h.version, h.id) AS held_ids
       FROM ${this.name} a LEFT JOIN ${held} h
         ON h.aggregate_type = a.aggregate_type AND h.aggregate_id = a.aggregate_id
       WHERE a.status <> 'ok' GROUP BY a.aggregate_type, a.aggregate_id, a.version, a.status, a.status_since, a.reason
       ORDER BY a.status_since`,
    );
  }
}
