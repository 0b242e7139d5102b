/**
 * The write side as the web app uses it: the demo's command handlers over the MongoDB store, with an
 * optional optimistic check against the version the user saw on the query side. Touches MongoDB only.
 */
import { v7 as uuidv7 } from 'uuid';
import {
  type EventCodec,
  isPipelineError,
  PipelineError,
  type CommandResult,
  type WriteStore,
} from '../../index.js';
import { demoCommands, type DemoCommandName } from '../domain/commands.js';

export interface CommandRun {
  readonly command: DemoCommandName;
  readonly result: CommandResult;
}

export interface DemoWriter {
  run(
    command: DemoCommandName,
    input: Record<string, unknown>,
    expectedVersion?: number,
  ): Promise<CommandRun>;
}

export function newCommandId(): string {
  return uuidv7();
}

/** Ids sort by creation time (UUID v7), so "newest first" is "id descending" on the query side. */
export function newAggregateId(prefix: 'c' | 'o' | 'l'): string {
  return `${prefix}-${uuidv7()}`;
}

/**
 * A store that refuses to commit unless the aggregate is at `expected` when loaded. The underlying
 * commit is itself conditional on the loaded version, so the check and the write are one atomic
 * step: a concurrent change in between is a `concurrency_conflict` too. Either way the message
 * names the version the client sent, and nothing was saved.
 */
function expecting(store: WriteStore, expected: number): WriteStore {
  return {
    commit: async (commit) => {
      try {
        return await store.commit(commit);
      } catch (e) {
        if (!isPipelineError(e, 'concurrency_conflict')) throw e;
        throw stale(
          commit.aggregateType,
          commit.aggregateId,
          expected,
          'was changed by another command meanwhile',
          e,
        );
      }
    },
    load: async (aggregateType, aggregateId) => {
      const record = await store.load(aggregateType, aggregateId);
      const actual = record?.version ?? 0;
      if (actual !== expected) {
        throw stale(
          aggregateType,
          aggregateId,
          expected,
          `is at version ${actual} (it changed since, or the query side has not caught up)`,
        );
      }
      return record;
    },
  };
}

function stale(
  aggregateType: string,
  aggregateId: string,
  expected: number,
  why: string,
  cause?: unknown,
): PipelineError {
  return new PipelineError(
    'concurrency_conflict',
    `${aggregateType} ${aggregateId} ${why}, but you saw version ${expected}: nothing was saved; reload and try again`,
    {
      retriable: false,
      context: { aggregateType, aggregateId, version: expected },
      ...(cause === undefined ? {} : { cause }),
    },
  );
}

export function demoWriter(store: WriteStore, codec: EventCodec): DemoWriter {
  const plain = demoCommands(store, codec);
  return {
    run: async (command, input, expectedVersion) => {
      const commands =
        expectedVersion === undefined
          ? plain
          : demoCommands(expecting(store, expectedVersion), codec, { maxConflictRetries: 0 });
      const result = await commands[command]({ commandId: newCommandId(), ...input });
      return { command, result };
    },
  };
}
