/**
 * `cqrs_sink_decisions`: operators' decisions about dead letters (drop, re-drive), by event id,
 * kept across replays (a replay honours them). `cqrs_sink_decisions_generation` holds one number,
 * raised in the transaction of every decision, so that a sink keeps the (small) table in memory and
 * reads that one row per batch instead of looking up every event id of the batch
 * (`DecisionsCache`).
 */
import type { Decision, DecisionRecord } from '../ports.js';
import { chunks, num, rowsOf, text, type Queryable } from '../sql.js';

export const DECISIONS_TABLE = 'cqrs_sink_decisions';
export const DECISIONS_GENERATION_TABLE = 'cqrs_sink_decisions_generation';

export class DecisionsTable {
  /** `name`, `generationName`: the quoted physical names of the two tables. */
  constructor(
    private readonly db: Queryable,
    private readonly name: string,
    private readonly generationName: string,
  ) {}

  /** Every decision, by event id. */
  async all(): Promise<Map<string, Decision>> {
    const rows = await rowsOf<{ event_id: unknown; decision: Decision }>(
      this.db,
      `SELECT event_id, decision FROM ${this.name}`,
    );
    return new Map(rows.map((r) => [text(r.event_id), r.decision]));
  }

  /** Raised by every `decide`; 0 before the first. */
  async generation(): Promise<number> {
    const rows = await rowsOf<{ generation: unknown }>(
      this.db,
      `SELECT generation FROM ${this.generationName} WHERE id = 1`,
    );
    return rows[0] ? num(rows[0].generation) : 0;
  }

  /** A later decision about the same event id replaces the earlier one. */
  async decide(records: readonly DecisionRecord[]): Promise<void> {
    if (records.length === 0) return;
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
    await this.db.query(
      `INSERT INTO ${this.generationName} (id, generation) VALUES (1, 1)
       ON DUPLICATE KEY UPDATE generation = generation + 1`,
    );
  }
}

/** The decisions table as of one generation. */
interface DecisionsSnapshot {
  readonly generation: number;
  readonly byEvent: ReadonlyMap<string, Decision>;
}

/**
 * The decisions of one store, in memory, shared by its transactions. A batch reads the generation
 * (one row by primary key) where it used to read its event ids (thousands of parameters a batch:
 * 429 ms of statement time in a 2 s bench:sink many-events run, measured 2026-12-04), and
 * reloads the table when the generation moved. The lookup sees what it saw before: the decisions
 * committed when the generation is read.
 */
export class DecisionsCache {
  private snapshot: DecisionsSnapshot = { generation: -1, byEvent: new Map() };

  async of(table: DecisionsTable, eventIds: readonly string[]): Promise<Map<string, Decision>> {
    const generation = await table.generation();
    let s = this.snapshot;
    if (s.generation !== generation) {
      // The generation first, then the rows: each statement reads what was committed when it ran
      // (READ COMMITTED), so the rows hold at least that generation's decisions; a newer one
      // committed in between raises the generation again, and the next batch reloads.
      s = { generation, byEvent: await table.all() };
      // Transactions of several partitions may reload at once; any snapshot is correct for the
      // generation it is labelled with.
      this.snapshot = s;
    }
    const out = new Map<string, Decision>();
    if (s.byEvent.size === 0) return out;
    for (const id of eventIds) {
      const d = s.byEvent.get(id);
      if (d) out.set(id, d);
    }
    return out;
  }
}
