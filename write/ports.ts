import type { OutboxEntry } from './outbox.js';

/** What the store keeps of one aggregate: its state after its last event and that event's version. */
export interface AggregateRecord<S = Record<string, unknown>> {
  readonly aggregateId: string;
  readonly version: number;
  /** Null once a deleting event was applied (the aggregate is gone but its version stays taken). */
  readonly state: S | null;
}

/** The outcome of a command as recorded with it, returned again for a repeated `commandId`. */
export interface CommandOutcome {
  readonly aggregateType: string;
  readonly aggregateId: string;
  /** The aggregate's version after the command. */
  readonly version: number;
  readonly eventIds: readonly string[];
}

/** One unit of work: the new state, its events for the outbox and the command, saved together. */
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
}

export type CommitResult =
  { readonly applied: true } | { readonly applied: false; readonly reason: 'duplicate_command' };

/**
 * The write side's storage port. `commit` is all or nothing: it throws `concurrency_conflict` when
 * the stored version is not `expectedVersion` (and writes nothing), and returns
 * `{ applied: false, reason: 'duplicate_command' }` when the command id is already recorded.
 */
export interface WriteStore {
  load(aggregateType: string, aggregateId: string): Promise<AggregateRecord | undefined>;
  findCommand(commandId: string): Promise<CommandOutcome | undefined>;
  commit(commit: Commit): Promise<CommitResult>;
}
