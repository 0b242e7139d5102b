import { PipelineError } from '../schemas/errors.js';
import type { OutboxEntry } from './outbox.js';
import type { AggregateRecord, CommandOutcome, Commit, CommitResult, WriteStore } from './ports.js';

/**
 * An in-memory `WriteStore` with the same all-or-nothing contract as the MongoDB one: for unit
 * tests of domain and command handling (no I/O).
 */
export class InMemoryWriteStore implements WriteStore {
  readonly states = new Map<string, AggregateRecord>();
  readonly outbox: OutboxEntry[] = [];
  readonly commands = new Map<string, CommandOutcome>();
  /** Runs before a commit is checked: lets a test commit a competing change first. */
  beforeCommit: ((commit: Commit) => void) | undefined;

  load(aggregateType: string, aggregateId: string): Promise<AggregateRecord | undefined> {
    return Promise.resolve(this.states.get(key(aggregateType, aggregateId)));
  }

  findCommand(commandId: string): Promise<CommandOutcome | undefined> {
    return Promise.resolve(this.commands.get(commandId));
  }

  commit(commit: Commit): Promise<CommitResult> {
    const hook = this.beforeCommit;
    this.beforeCommit = undefined;
    hook?.(commit);
    if (commit.commandId !== undefined && this.commands.has(commit.commandId)) {
      return Promise.resolve({ applied: false, reason: 'duplicate_command' });
    }
    const k = key(commit.aggregateType, commit.aggregateId);
    const stored = this.states.get(k)?.version ?? 0;
    if (stored !== commit.expectedVersion) {
      return Promise.reject(
        new PipelineError(
          'concurrency_conflict',
          `${commit.aggregateType} ${commit.aggregateId}: expected version ${commit.expectedVersion}, stored ${stored}`,
          {
            retriable: true,
            context: { aggregateType: commit.aggregateType, aggregateId: commit.aggregateId },
          },
        ),
      );
    }
    this.states.set(k, {
      aggregateId: commit.aggregateId,
      version: commit.version,
      state: commit.state === null ? null : structuredClone(commit.state),
    });
    this.outbox.push(...commit.entries);
    if (commit.commandId !== undefined) this.commands.set(commit.commandId, commit.outcome);
    return Promise.resolve({ applied: true });
  }
}

function key(aggregateType: string, aggregateId: string): string {
  return `${aggregateType}\u0000${aggregateId}`;
}
