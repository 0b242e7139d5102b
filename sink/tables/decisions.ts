/**
 * `cqrs_sink_decisions`: operators' decisions about dead letters (drop, re-drive), by event id,
 * kept across replays (a replay honours them).
 */
import type { Decision, DecisionRecord } from '../ports.js';
import { chunks, rowsOf, type Queryable } from '../sql.js';

export const DECISIONS_TABLE = 'cqrs_sink_decisions';

export class DecisionsTable {
  /** `name`: the quoted physical name. */
  constructor(
    private readonly db: Queryable,
    private readonly name: string,
  ) {}

  async of(eventIds: readonly string[]): Promise<Map<string, Decision>> {
    const out = new Map<string, Decision>();
    for (const part of chunks(eventIds, 5000)) {
      const rows = await rowsOf<{ event_id: string; decision: Decision }>(
        this.db,
        `SELECT event_id, decision FROM ${this.name} WHERE event_id IN (?)`,
        [part],
      );
      for (const r of rows) out.set(r.event_id, r.decision);
    }
    return out;
  }

  /** A later decision about the same event id replaces the earlier one. */
  async decide(records: readonly DecisionRecord[]): Promise<void> {
    for (const part of chunks(records, 2000)) {
      await this.db.query(
        `INSERT INTO ${this.name} (event_id, aggregate_type, aggregate_id, version, decision, decided_at, decided_by) VALUES ?
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
}
