import type { Collection, Db, MongoClient } from 'mongodb';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { PipelineError, isPipelineError } from '../schemas/errors.js';
import type { AggregateDocument, CommandRecord } from '../schemas/outbox-entry.js';
import { recordOf } from './aggregate-record.js';
import {
  aggregateLimits,
  conflict,
  refuseWhenRelayBehind,
  type AggregateLimits,
} from './limits.js';
import { ensureWriteIndexes, mongoKind } from './mongo-server.js';
import { aggregateCollectionName } from './outbox.js';
import type { LoadedAggregate, Commit, CommitResult, WriteStore } from './ports.js';

export interface MongoWriteStoreOptions {
  /** Borrowed: the store never closes it. */
  readonly client: MongoClient;
  /** The write model's database. */
  readonly database: string;
  /** Collection per aggregate type; default `aggregateCollectionName(type)` (`Order` -> `order`). */
  readonly collections?: Readonly<Record<string, string>>;
  /** Command ids kept per aggregate and the backpressure bound (see `AggregateLimits`). */
  readonly limits?: Partial<AggregateLimits>;
  /** Registers `cqrs_sync_write_refused_total` here when given. */
  readonly metrics?: Registry;
  readonly logger?: Logger;
}

const DUPLICATE_KEY = 11000;

/**
 * The write side on MongoDB: one document per aggregate, and a commit is one conditional
 * single-document write (`insertOne` for a new aggregate, else `updateOne` on `_id` and the loaded
 * version that sets state and version and appends the outbox entries and the command record with
 * `$push`). Atomic on every deployment (standalone, replica set, sharded); no transactions.
 */
export class MongoWriteStore implements WriteStore {
  private readonly db: Db;
  private readonly limits: AggregateLimits;
  private readonly refused: Counter | undefined;
  private readonly indexed = new Map<string, Promise<void>>();
  private readonly byType = new Map<string, Collection<AggregateDocument>>();
  private kind: Promise<'mongod' | 'stand-in'> | undefined;

  constructor(private readonly options: MongoWriteStoreOptions) {
    this.db = options.client.db(options.database);
    this.limits = aggregateLimits(options.limits);
    this.refused = options.metrics
      ? new Counter({
          name: 'cqrs_sync_write_refused_total',
          help: 'Commands refused before anything was written, by reason (relay_behind: the aggregate holds too many unrelayed events)',
          labelNames: ['aggregate_type', 'reason'],
          registers: [options.metrics],
        })
      : undefined;
  }

  /** Creates the indexes of every given aggregate type's collection (the stand-in's; idempotent). */
  async init(aggregateTypes: readonly string[] = []): Promise<void> {
    await Promise.all(aggregateTypes.map((t) => this.ensureIndexes(t)));
  }

  async load(aggregateType: string, aggregateId: string): Promise<LoadedAggregate | undefined> {
    await this.ensureIndexes(aggregateType);
    const doc = await this.collection(aggregateType)
      .findOne({ _id: aggregateId }, { promoteBuffers: true })
      .catch(unavailable);
    return doc ? recordOf(aggregateType, doc) : undefined;
  }

  async commit(commit: Commit): Promise<CommitResult> {
    try {
      refuseWhenRelayBehind(commit, this.limits);
    } catch (e) {
      this.refused?.inc({ aggregate_type: commit.aggregateType, reason: 'relay_behind' });
      throw e;
    }
    await this.ensureIndexes(commit.aggregateType);
    const collection = this.collection(commit.aggregateType);
    const now = new Date();
    const command: CommandRecord[] =
      commit.commandId === undefined
        ? []
        : [
            {
              commandId: commit.commandId,
              version: commit.version,
              eventIds: commit.outcome.eventIds,
              at: now,
            },
          ];
    try {
      if (commit.expectedVersion === 0) {
        try {
          await collection.insertOne({
            _id: commit.aggregateId,
            aggregateType: commit.aggregateType,
            version: commit.version,
            state: commit.state,
            deleted: commit.state === null,
            updatedAt: now,
            outbox: [...commit.entries],
            commands: command.slice(-this.limits.commandIdsKept),
            relayedVersion: 0,
            relayedAt: null,
            relayFence: 0,
          });
        } catch (e) {
          if (codeOf(e) !== DUPLICATE_KEY) throw e;
          // Created concurrently: by a repeat of this very command, or by another one.
          const stored = await this.load(commit.aggregateType, commit.aggregateId);
          if (commit.commandId !== undefined && stored?.commands.has(commit.commandId)) {
            return { applied: false, reason: 'duplicate_command' };
          }
          throw conflict(commit, 'it was created concurrently');
        }
        return { applied: true };
      }
      const res = await collection.updateOne(
        // Exactly these two fields: the stand-in serves them from its (_id, version) index.
        { _id: commit.aggregateId, version: commit.expectedVersion },
        {
          $set: {
            version: commit.version,
            state: commit.state,
            deleted: commit.state === null,
            updatedAt: now,
          },
          // Appends only: a relay mark that lands in between is never undone.
          $push: {
            outbox: { $each: [...commit.entries] },
            commands: { $each: command, $slice: -this.limits.commandIdsKept },
          },
        },
      );
      if (res.matchedCount === 0) throw conflict(commit, 'its stored version changed');
      return { applied: true };
    } catch (e) {
      throw classify(e, commit);
    }
  }

  private ensureIndexes(aggregateType: string): Promise<void> {
    let done = this.indexed.get(aggregateType);
    if (!done) {
      this.kind ??= mongoKind(this.db);
      this.kind.catch(() => (this.kind = undefined));
      done = this.kind.then((kind) =>
        ensureWriteIndexes(this.collection(aggregateType) as unknown as Collection, kind),
      );
      this.indexed.set(aggregateType, done);
      done.catch(() => this.indexed.delete(aggregateType));
    }
    return done.catch(unavailable);
  }

  private collection(aggregateType: string): Collection<AggregateDocument> {
    const name =
      this.options.collections?.[aggregateType] ?? aggregateCollectionName(aggregateType);
    return this.db.collection<AggregateDocument>(name);
  }
}

function codeOf(e: unknown): unknown {
  return (e as { code?: unknown } | null)?.code;
}

function classify(e: unknown, commit: Commit | undefined): unknown {
  if (isPipelineError(e)) return e;
  const name = (e as { name?: unknown } | null)?.name;
  if (
    typeof name === 'string' &&
    /MongoNetwork|MongoServerSelection|MongoNotConnected|MongoTopologyClosed/.test(name)
  ) {
    return new PipelineError('database_unavailable', `MongoDB unavailable: ${String(e)}`, {
      retriable: true,
      cause: e,
      context: commit
        ? { aggregateType: commit.aggregateType, aggregateId: commit.aggregateId }
        : {},
    });
  }
  return e;
}

function unavailable(e: unknown): never {
  throw classify(e, undefined);
}
