/**
 * `cqrs_sink_held`: records kept in MySQL until their aggregate can take them (raw bytes, decoded
 * again when applied). Kind `dead`: dead-lettered, it parked its aggregate; `parked`: behind a dead
 * one; `gap`: waiting for an earlier version.
 */
import type { AggregateKey, HeldKind, HeldRecord } from '../ports.js';
import { chunks, epochMs, num, rowsOf, text, textOrNull, type Queryable } from '../sql.js';

export const HELD_TABLE = 'cqrs_sink_held';

export interface HeldRow {
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

/** A held record without its bytes, for listings. */
export interface HeldSummary {
  readonly id: number;
  readonly kind: string;
  readonly aggregateType: string;
  readonly aggregateId: string;
  readonly version: number;
  readonly eventId: string;
  readonly eventType: string;
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly errorCode: string | null;
  readonly errorMessage: string | null;
  readonly attempts: number;
  /** ms since the epoch (needs a UTC session, as the sink's). */
  readonly heldAt: number;
}

/** A dead letter as `dlq list` reads it: values as mysql2 returns them. */
export type DeadLetterRow = Record<string, unknown>;

export class HeldTable {
  /** `name`: the quoted physical name. */
  constructor(
    private readonly db: Queryable,
    private readonly name: string,
  ) {}

  /** The held records of these aggregates, in version order. */
  async of(keys: readonly AggregateKey[]): Promise<HeldRecord[]> {
    const out: HeldRecord[] = [];
    for (const k of keys) {
      const rows = await rowsOf<HeldRow>(
        this.db,
        `SELECT * FROM ${this.name} WHERE aggregate_type = ? AND aggregate_id = ? ORDER BY version, id`,
        [k.aggregateType, k.aggregateId],
      );
      out.push(...rows.map(heldFromRow));
    }
    return out;
  }

  /** Holds these records; one already held (same event id) is left as it is. */
  async hold(records: readonly HeldRecord[]): Promise<void> {
    for (const part of chunks(records, 500)) {
      await this.db.query(
        `INSERT IGNORE INTO ${this.name} (kind, aggregate_type, aggregate_id, version, event_id, event_type,
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

  /** Changes kind, error and attempts where given; `firstFailedAt` only where none is set. */
  async update(id: number, c: Partial<HeldRecord>): Promise<void> {
    await this.db.query(
      `UPDATE ${this.name} SET kind = COALESCE(?, kind), error_code = COALESCE(?, error_code),
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
      await this.db.query(`DELETE FROM ${this.name} WHERE id IN (?)`, [part]);
    }
  }

  /** The aggregate a held id, an event id, `Type/aggregateId` or a bare aggregate id names. */
  async findAggregate(target: string): Promise<AggregateKey | undefined> {
    const slash = target.indexOf('/');
    const rows = await rowsOf<{ aggregate_type: string; aggregate_id: string }>(
      this.db,
      `SELECT aggregate_type, aggregate_id FROM ${this.name}
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
    const r = rows[0];
    return r ? { aggregateType: r.aggregate_type, aggregateId: r.aggregate_id } : undefined;
  }

  async byId(id: string | number): Promise<HeldRecord | undefined> {
    const rows = await rowsOf<HeldRow>(this.db, `SELECT * FROM ${this.name} WHERE id = ?`, [id]);
    const row = rows[0];
    return row ? heldFromRow(row) : undefined;
  }

  /** Dead letters: held rows of kind `dead`, the ones `dlq list` shows (the dead-letter topic keeps
   * copies, also of letters since dropped or re-driven, so its record count is not this). */
  async countDead(): Promise<number> {
    const rows = await rowsOf(
      this.db,
      `SELECT COUNT(*) AS n FROM ${this.name} WHERE kind = 'dead'`,
    );
    return num(rows[0]?.n);
  }

  async count(): Promise<number> {
    const rows = await rowsOf(this.db, `SELECT COUNT(*) AS n FROM ${this.name}`);
    return num(rows[0]?.n);
  }

  /** Held rows by kind (kinds with none are absent). */
  async countByKind(): Promise<Map<string, number>> {
    const rows = await rowsOf(
      this.db,
      `SELECT kind, COUNT(*) AS n FROM ${this.name} GROUP BY kind`,
    );
    return new Map(rows.map((r) => [text(r.kind), num(r.n)]));
  }

  /** Dead letters in id order, without their bytes. */
  async dead(): Promise<DeadLetterRow[]> {
    return rowsOf(
      this.db,
      `SELECT id, aggregate_type, aggregate_id, version, event_type, error_code, error_message, attempts, first_failed_at,
         topic, kpartition, koffset FROM ${this.name} WHERE kind = 'dead' ORDER BY id`,
    );
  }

  /** The held rows of these events, or the dead and parked ones; newest first, at most `limit`. */
  async recent(eventIds: readonly string[] | undefined, limit: number): Promise<HeldSummary[]> {
    if (eventIds?.length === 0) return [];
    const where = eventIds ? 'WHERE event_id IN (?)' : "WHERE kind IN ('dead', 'parked')";
    const rows = await rowsOf(
      this.db,
      `SELECT id, kind, aggregate_type, aggregate_id, version, event_id, event_type, topic,
              kpartition, koffset, error_code, error_message, attempts,
              ${epochMs('held_at')} AS held_at
         FROM ${this.name} ${where} ORDER BY id DESC LIMIT ?`,
      eventIds ? [eventIds, limit] : [limit],
    );
    return rows.map((r) => ({
      id: num(r.id),
      kind: text(r.kind),
      aggregateType: text(r.aggregate_type),
      aggregateId: text(r.aggregate_id),
      version: num(r.version),
      eventId: text(r.event_id),
      eventType: text(r.event_type),
      topic: text(r.topic),
      partition: num(r.kpartition),
      offset: text(r.koffset),
      errorCode: textOrNull(r.error_code),
      errorMessage: textOrNull(r.error_message),
      attempts: num(r.attempts),
      heldAt: num(r.held_at),
    }));
  }
}
