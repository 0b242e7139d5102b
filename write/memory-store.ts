import type { AggregateDocument } from '../schemas/outbox-entry.js';
import { recordOf } from './aggregate-record.js';
import {
  aggregateLimits,
  conflict,
  refuseWhenRelayBehind,
  type AggregateLimits,
} from './limits.js';
import type { OutboxEntry } from './outbox.js';
import type { LoadedAggregate, Commit, CommitResult, WriteStore } from './ports.js';

/**
 * An in-memory `WriteStore` with the MongoDB one's contract (one document per aggregate, one atomic
 * write per commit, the same limits): for unit tests of domain and command handling (no I/O).
 */
export class InMemoryWriteStore implements WriteStore {
  readonly documents = new Map<string, AggregateDocument>();
  /** Every entry ever committed, in commit order (a relay removes none here). */
  readonly outbox: OutboxEntry[] = [];
  /** Runs before a commit is checked: lets a test commit a competing change first. */
  beforeCommit: ((commit: Commit) => void) | undefined;
  private readonly limits: AggregateLimits;

  constructor(limits: Partial<AggregateLimits> = {}) {
    this.limits = aggregateLimits(limits);
  }

  load(aggregateType: string, aggregateId: string): Promise<LoadedAggregate | undefined> {
    const doc = this.documents.get(key(aggregateType, aggregateId));
    if (!doc) return Promise.resolve(undefined);
    const record = recordOf(aggregateType, doc);
    // A copy: a caller that changes the state it loaded must not change the stored one.
    return Promise.resolve({
      ...record,
      state: record.state === null ? null : structuredClone(record.state),
    });
  }

  /** What a relay does: forgets the aggregate's unrelayed entries (they were published). */
  relayAll(): void {
    for (const doc of this.documents.values()) {
      doc.relayedVersion = doc.outbox.at(-1)?.version ?? doc.relayedVersion;
      doc.outbox = [];
    }
  }

  commit(commit: Commit): Promise<CommitResult> {
    const hook = this.beforeCommit;
    this.beforeCommit = undefined;
    hook?.(commit);
    try {
      refuseWhenRelayBehind(commit, this.limits);
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
    const k = key(commit.aggregateType, commit.aggregateId);
    const stored = this.documents.get(k);
    if (
      commit.commandId !== undefined &&
      stored?.commands.some((c) => c.commandId === commit.commandId)
    ) {
      return Promise.resolve({ applied: false, reason: 'duplicate_command' });
    }
    if ((stored?.version ?? 0) !== commit.expectedVersion) {
      return Promise.reject(conflict(commit, `it is stored at ${stored?.version ?? 0}`));
    }
    const now = new Date();
    const doc: AggregateDocument = stored ?? {
      _id: commit.aggregateId,
      aggregateType: commit.aggregateType,
      version: 0,
      state: null,
      deleted: false,
      updatedAt: now,
      outbox: [],
      commands: [],
      relayedVersion: 0,
      relayedAt: null,
      relayFence: 0,
    };
    doc.version = commit.version;
    doc.state = commit.state === null ? null : structuredClone(commit.state);
    doc.deleted = commit.state === null;
    doc.updatedAt = now;
    doc.outbox.push(...commit.entries);
    if (commit.commandId !== undefined) {
      doc.commands.push({
        commandId: commit.commandId,
        version: commit.version,
        eventIds: commit.outcome.eventIds,
        at: now,
      });
      doc.commands = doc.commands.slice(-this.limits.commandIdsKept);
    }
    this.documents.set(k, doc);
    this.outbox.push(...commit.entries);
    return Promise.resolve({ applied: true });
  }
}

function key(aggregateType: string, aggregateId: string): string {
  return `${aggregateType}\u0000${aggregateId}`;
}
