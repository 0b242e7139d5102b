/**
 * What the sink needs from the outside world, as small interfaces. `mysql-store.ts` implements the
 * store ports on MySQL/MariaDB, `dead-letter.ts` the publisher on Kafka.
 */
import type { Operation } from './projection.js';

export interface AggregateKey {
  readonly aggregateType: string;
  readonly aggregateId: string;
}

/** One string per aggregate, for maps and sets: the planner's, the store's and the tables' alike. */
export const aggregateKeyOf = (k: AggregateKey): string =>
  `${k.aggregateType}\u0000${k.aggregateId}`;

export type AggregateStatus = 'ok' | 'gap' | 'parked';

/** The sink's record of one aggregate: the version gate and the parking state. */
export interface AggregateRecord extends AggregateKey {
  /** Highest applied version; 0 when none was applied yet. */
  readonly version: number;
  readonly deleted: boolean;
  readonly status: AggregateStatus;
  /** When the status was entered (gap timeouts count from here). */
  readonly statusSince: Date;
  readonly reason: string | null;
}

/** Why an event waits in the held table. `dead`: it was dead-lettered and parked its aggregate. */
export type HeldKind = 'dead' | 'parked' | 'gap';

/** A record kept in MySQL until its aggregate can take it: raw bytes, re-decoded when applied. */
export interface HeldRecord extends AggregateKey {
  /** Assigned by the store. */
  readonly id?: number;
  readonly kind: HeldKind;
  readonly version: number;
  readonly eventId: string;
  readonly eventType: string;
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: Readonly<Record<string, string>>;
  readonly errorCode: string | null;
  readonly errorMessage: string | null;
  readonly attempts: number;
  readonly firstFailedAt: Date | null;
  readonly heldAt: Date;
}

/**
 * What an operator decided about a dead letter. `dropped`: discarded (`dlq drop`); a replay skips
 * the event as the drop did. `redriven`: applied by a re-drive; a replay applies it again, across a
 * version gap if need be, as the re-drive did.
 */
export type Decision = 'dropped' | 'redriven';

export interface DecisionRecord extends AggregateKey {
  readonly eventId: string;
  readonly version: number;
  readonly decision: Decision;
  readonly decidedAt: Date;
  /** Who decided, when known (the operator's login or `--by`). */
  readonly decidedBy: string | null;
}

export interface PartitionOffset {
  readonly topic: string;
  readonly partition: number;
  /** The next offset to read. */
  readonly next: string;
}

/** One MySQL transaction of the sink: all or nothing. */
export interface SinkTransaction {
  /**
   * Records all of these event ids as seen when none was seen before (the common case: one
   * statement instead of a lookup and an insert) and returns true; records none and returns false
   * when any was seen already or repeats in the list (then `seen` and `markSeen` decide).
   */
  claim(eventIds: readonly string[]): Promise<boolean>;
  /** Which of these event ids were applied (or seen) before. Non-locking. */
  seen(eventIds: readonly string[]): Promise<Set<string>>;
  /**
   * Records event ids as seen and returns true. Returns false when another transaction recorded one
   * of them after `seen` looked (two consumers overlapping in a rebalance): the caller must then
   * roll back, and its retry finds the event seen.
   */
  markSeen(eventIds: readonly string[]): Promise<boolean>;
  /** Reads and locks the records of these aggregates (missing ones are absent from the map). */
  lockAggregates(keys: readonly AggregateKey[]): Promise<Map<string, AggregateRecord>>;
  /**
   * Records these aggregates (all `ok`) when none of them has a record yet (a batch of new
   * aggregates: one statement instead of a lock and a save) and returns true; records none and
   * returns false when any has one (then `lockAggregates` and `saveAggregates` decide).
   */
  insertNewAggregates(records: readonly AggregateRecord[]): Promise<boolean>;
  /** Writes these records; a lower version never replaces a higher one. */
  saveAggregates(records: readonly AggregateRecord[]): Promise<void>;
  heldOf(keys: readonly AggregateKey[]): Promise<HeldRecord[]>;
  hold(records: readonly HeldRecord[]): Promise<void>;
  updateHeld(id: number, change: Partial<HeldRecord>): Promise<void>;
  release(ids: readonly number[]): Promise<void>;
  /** Runs the planned operations in order, merging consecutive compatible upserts. */
  execute(ops: readonly Operation[]): Promise<void>;
  saveOffsets(group: string, offsets: readonly PartitionOffset[]): Promise<void>;
  /** The decisions recorded for these event ids (undecided ones are absent). Non-locking. */
  decisions(eventIds: readonly string[]): Promise<Map<string, Decision>>;
  /** Records decisions; a later decision about the same event id replaces the earlier one. */
  decide(records: readonly DecisionRecord[]): Promise<void>;
  /** Locks and returns aggregates in `status` since before `before`. */
  aggregatesWithStatus(status: AggregateStatus, before: Date): Promise<AggregateRecord[]>;
  /** The aggregate a held id, an event id, `Type/aggregateId` or a bare aggregate id names. */
  findHeldAggregate(target: string): Promise<AggregateKey | undefined>;
}

/** The read model's database. */
export interface ReadModelStore {
  transaction<T>(fn: (tx: SinkTransaction) => Promise<T>): Promise<T>;
  /** Throws `config_invalid` naming every missing table or column. */
  checkTables(
    tables: readonly { table: string; columns: readonly string[]; where: string }[],
  ): Promise<void>;
  close(): Promise<void>;
}

/** Where the sink keeps its consumer positions: the truth; Kafka's committed offsets are a hint. */
export interface OffsetStore {
  load(group: string, topic: string): Promise<Map<number, string>>;
}

export interface DeadLetter {
  readonly record: HeldRecord;
  readonly errorCode: string;
  readonly errorMessage: string;
}

export interface DeadLetterPublisher {
  publish(letters: readonly DeadLetter[]): Promise<void>;
}
