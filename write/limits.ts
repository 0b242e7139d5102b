import { PipelineError } from '../schemas/errors.js';
import { payloadBytes } from './aggregate-record.js';
import type { Commit } from './ports.js';

/**
 * What one aggregate document may hold, far below MongoDB's 16 MB document limit: how many command
 * ids it keeps for idempotency, and how much unrelayed outbox it may carry before new commands on it
 * are refused (the relay is behind).
 */
export interface AggregateLimits {
  /** Command ids kept per aggregate (the newest); a repeat of an older one runs again. Default 100. */
  readonly commandIdsKept: number;
  /** Unrelayed entries an aggregate may hold. Default 1,000. */
  readonly maxUnrelayedEntries: number;
  /** Unrelayed payload bytes an aggregate may hold. Default 4 MiB. */
  readonly maxUnrelayedBytes: number;
}

export const DEFAULT_AGGREGATE_LIMITS: AggregateLimits = {
  commandIdsKept: 100,
  maxUnrelayedEntries: 1_000,
  maxUnrelayedBytes: 4 * 1024 * 1024,
};

export function aggregateLimits(overrides: Partial<AggregateLimits> = {}): AggregateLimits {
  const limits = { ...DEFAULT_AGGREGATE_LIMITS, ...overrides };
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isInteger(value) || value < 1) {
      throw new PipelineError(
        'config_invalid',
        `${name} must be a positive integer, got ${value}`,
        {
          retriable: false,
        },
      );
    }
  }
  if (limits.maxUnrelayedBytes > 12 * 1024 * 1024) {
    throw new PipelineError(
      'config_invalid',
      `maxUnrelayedBytes must stay well below MongoDB's 16 MB document limit (at most 12 MiB), got ${limits.maxUnrelayedBytes}`,
      { retriable: false },
    );
  }
  return limits;
}

/**
 * Refuses a commit that would leave the aggregate with more unrelayed entries than its bound, with a
 * retriable `relay_behind`: nothing is written, and the same command succeeds once the relay caught
 * up. Measured on what was loaded: the relay only removes entries, and any other write changes the
 * version, which the commit's condition catches.
 */
export function refuseWhenRelayBehind(commit: Commit, limits: AggregateLimits): void {
  const entries = commit.unrelayed.entries + commit.entries.length;
  const bytes = commit.unrelayed.bytes + payloadBytes(commit.entries);
  if (entries <= limits.maxUnrelayedEntries && bytes <= limits.maxUnrelayedBytes) return;
  throw new PipelineError(
    'relay_behind',
    `${commit.aggregateType} ${commit.aggregateId} holds ${commit.unrelayed.entries} events the relay has not published yet (${commit.unrelayed.bytes} bytes; bound ${limits.maxUnrelayedEntries} events, ${limits.maxUnrelayedBytes} bytes): retry once the relay caught up`,
    {
      retriable: true,
      context: {
        aggregateType: commit.aggregateType,
        aggregateId: commit.aggregateId,
        unrelayedEntries: commit.unrelayed.entries,
        unrelayedBytes: commit.unrelayed.bytes,
      },
    },
  );
}

export function conflict(commit: Commit, why: string): PipelineError {
  return new PipelineError(
    'concurrency_conflict',
    `${commit.aggregateType} ${commit.aggregateId}: expected version ${commit.expectedVersion} but ${why}; load it again and retry the command`,
    {
      retriable: true,
      context: {
        aggregateType: commit.aggregateType,
        aggregateId: commit.aggregateId,
        version: commit.expectedVersion,
      },
    },
  );
}
