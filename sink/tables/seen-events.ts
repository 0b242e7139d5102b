/**
 * `cqrs_sink_events`: the ids of every event the sink applied (or saw), its dedupe. A repeat of an
 * id is a `duplicate`; `seen_at` is when the sink applied it.
 */
import { chunks, epochMs, isDuplicateKey, num, rowsOf, text, type Queryable } from '../sql.js';

export const SEEN_EVENTS_TABLE = 'cqrs_sink_events';

export interface AppliedEvent {
  readonly eventId: string;
  /** When the sink applied it, ms since the epoch. */
  readonly appliedAt: number;
}

export class SeenEventsTable {
  /** `name`: the quoted physical name. */
  constructor(
    private readonly db: Queryable,
    private readonly name: string,
  ) {}

  /** All of them recorded, or none (a repeat): see `SinkTransaction.claim`. */
  async claim(eventIds: readonly string[]): Promise<boolean> {
    if (eventIds.length === 0) return true;
    try {
      // One statement, so all or nothing: InnoDB rolls back the failed statement, not the
      // transaction. A plain INSERT, not INSERT IGNORE, which would also turn an over-long id
      // into a truncated one instead of an error.
      await this.db.query(`INSERT INTO ${this.name} (event_id) VALUES ?`, [
        eventIds.map((id) => [id]),
      ]);
      return true;
    } catch (e) {
      if (isDuplicateKey(e)) return false;
      throw e;
    }
  }

  async seen(eventIds: readonly string[]): Promise<Set<string>> {
    const out = new Set<string>();
    for (const part of chunks(eventIds, 5000)) {
      const rows = await rowsOf<{ event_id: string }>(
        this.db,
        `SELECT event_id FROM ${this.name} WHERE event_id IN (?)`,
        [part],
      );
      for (const r of rows) out.add(r.event_id);
    }
    return out;
  }

  async markSeen(eventIds: readonly string[]): Promise<boolean> {
    for (const part of chunks(eventIds, 5000)) {
      try {
        await this.db.query(`INSERT INTO ${this.name} (event_id) VALUES ?`, [
          part.map((id) => [id]),
        ]);
      } catch (e) {
        if (isDuplicateKey(e)) return false;
        throw e;
      }
    }
    return true;
  }

  /** When the sink applied these events; ids it did not apply are absent. */
  async appliedAt(eventIds: readonly string[]): Promise<AppliedEvent[]> {
    if (eventIds.length === 0) return [];
    const rows = await rowsOf(
      this.db,
      `SELECT event_id, ${epochMs('seen_at')} AS at FROM ${this.name}
        WHERE event_id IN (?)`,
      [eventIds],
    );
    return rows.map((r) => ({ eventId: text(r.event_id), appliedAt: num(r.at) }));
  }
}
