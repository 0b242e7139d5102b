/**
 * `cqrs_sink_offsets`: the next offset to apply per consumer group and partition, written in the
 * transaction of the batch before it. The truth the sink starts from; Kafka's commits are a hint.
 */
import type { PartitionOffset } from '../ports.js';
import { num, rowsOf, text, type Queryable } from '../sql.js';

export const OFFSETS_TABLE = 'cqrs_sink_offsets';

export class OffsetsTable {
  /** `name`: the quoted physical name. */
  constructor(
    private readonly db: Queryable,
    private readonly name: string,
  ) {}

  /** Next offset by partition, of one group and topic. */
  async load(group: string, topic: string): Promise<Map<number, string>> {
    const rows = await rowsOf<{ kpartition: number; next_offset: string }>(
      this.db,
      `SELECT kpartition, next_offset FROM ${this.name} WHERE consumer_group = ? AND topic = ?`,
      [group, topic],
    );
    return new Map(rows.map((r) => [r.kpartition, r.next_offset]));
  }

  /** Next offset by `topic:partition`, of every topic of the group. */
  async ofGroup(group: string): Promise<Map<string, bigint>> {
    const rows = await rowsOf(
      this.db,
      `SELECT topic, kpartition, next_offset FROM ${this.name} WHERE consumer_group = ?`,
      [group],
    );
    return new Map(
      rows.map((r) => [`${text(r.topic)}:${num(r.kpartition)}`, BigInt(text(r.next_offset))]),
    );
  }

  /** The sum of the group's next offsets: it changes whenever the group applies anything. */
  async sumOfGroup(group: string): Promise<string> {
    const rows = await rowsOf(
      this.db,
      `SELECT COALESCE(SUM(next_offset), 0) AS o FROM ${this.name} WHERE consumer_group = ?`,
      [group],
    );
    return text(rows[0]?.o);
  }

  /** In a batch's transaction: offsets only move forward (a late, overlapping batch cannot move
   * them back). */
  async saveForward(group: string, offsets: readonly PartitionOffset[]): Promise<void> {
    if (offsets.length === 0) return;
    await this.db.query(
      `INSERT INTO ${this.name} (consumer_group, topic, kpartition, next_offset) VALUES ?
       ON DUPLICATE KEY UPDATE next_offset = GREATEST(next_offset, VALUES(next_offset)), updated_at = CURRENT_TIMESTAMP(3)`,
      [offsets.map((o) => [group, o.topic, o.partition, o.next])],
    );
  }

  /** Overwrites (replay): offsets may move back. */
  async set(group: string, offsets: readonly PartitionOffset[]): Promise<void> {
    for (const o of offsets) {
      await this.db.query(
        `INSERT INTO ${this.name} (consumer_group, topic, kpartition, next_offset) VALUES (?, ?, ?, ?)
         ON DUPLICATE KEY UPDATE next_offset = VALUES(next_offset), updated_at = CURRENT_TIMESTAMP(3)`,
        [group, o.topic, o.partition, o.next],
      );
    }
  }

  async deleteGroup(group: string): Promise<void> {
    await this.db.query(`DELETE FROM ${this.name} WHERE consumer_group = ?`, [group]);
  }

  /** Copies every other group's rows into `target` (a quoted table of the same shape), keeping
   * rows it has: their positions move along when a rebuilt table replaces this one. */
  async copyOtherGroups(target: string, group: string): Promise<void> {
    await this.db.query(
      `INSERT IGNORE INTO ${target} SELECT * FROM ${this.name} WHERE consumer_group <> ?`,
      [group],
    );
  }
}
