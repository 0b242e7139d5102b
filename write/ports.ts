import type { OutboxEntry } from './outbox.js';

/** The outcome of a command as recorded with it, returned again for a repeated `commandId`. */
export interface CommandOutcome {
  readonly aggregateType: string;
  readonly aggregateId: string;
  /** The aggregate's version after the command. */
  readonly version: number;
  readonly eventIds: readonly string[];
}

/** What the store keeps of one aggregate, as one document read. */
export interface LoadedAggregate<S = Record<string, unknown>> {
  readonly aggregateId: string;
  readonly version: number;
  /** Null once a deleting event was applied (the aggregate is gone but its version stays taken). */
  readonly state: S | null;
  /** The aggregate's recent commands by id (at most the store's `commandIdsKept`). */
  readonly commands: ReadonlyMap<string, CommandOutcome>;
  /** Its outbox entries not yet relayed, when it was read: what backpressure is measured on. */
  readonly unrelayed: Unrelayed;
}

export interface Unrelayed {
  readonly entries: number;
  readonly bytes: number;
}

export const NOTHING_UNRELAYED: Unrelayed = { entries: 0, bytes: 0 };

/** One command's change of one aggregate: new state, its events and the command id, in one write. */
export interface Commit {
  readonly aggregateType: string;
  readonly aggregateId: string;
  /** The version the aggregate had when it was loaded (0: it did not exist). */
  readonly expectedVersion: number;
  readonly version: number;
  readonly state: Record<string, unknown> | null;
  readonly entries: readonly OutboxEntry[];
  readonly commandId: string | undefined;
  readonly outcome: CommandOutcome;
  /** The aggregate's unrelayed entries when it was loaded (the backpressure check). */
  readonly unrelayed: Unrelayed;
}

export type CommitResult =
  { readonly applied: true } | { readonly applied: false; readonly reason: 'duplicate_command' };

/**
 * The write side's storage port. `commit` is one atomic write of one aggregate: it throws
 * `concurrency_conflict` when the stored version is not `expectedVersion` (and writes nothing),
 * `relay_behind` when the aggregate's unrelayed entries would pass the bound, and returns
 * `{ applied: false, reason: 'duplicate_command' }` when the aggregate already recorded the command.
 */
export interface WriteStore {
  load(aggregateType: string, aggregateId: string): Promise<LoadedAggregate | undefined>;
  commit(commit: Commit): Promise<CommitResult>;
}
