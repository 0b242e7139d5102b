import type { ClientSession, Collection, Db, MongoClient } from 'mongodb';
import type { Logger } from 'pino';
import { PipelineError } from '../schemas/errors.js';
import {
  DEFAULT_COMMANDS_COLLECTION,
  DEFAULT_OUTBOX_COLLECTION,
  DEFAULT_OUTBOX_RETENTION_MS,
  ensureOutboxIndexes,
  stateCollectionName,
  type OutboxEntry,
  type StateDocument,
} from './outbox.js';
import type { AggregateRecord, CommandOutcome, Commit, CommitResult, WriteStore } from './ports.js';

export interface MongoWriteStoreOptions {
  /** Borrowed: the store never closes it. */
  readonly client: MongoClient;
  /** The write model's database. */
  readonly database: string;
  /** Default `outbox`. */
  readonly outboxCollection?: string;
  /** Default `commands`. */
  readonly commandsCollection?: string;
  /** State collection per aggregate type; default `stateCollectionName(type)` (`Order` -> `order`). */
  readonly stateCollections?: Readonly<Record<string, string>>;
  /** TTL of relayed outbox entries, ms. Default 7 days. */
  readonly outboxRetentionMs?: number;
  /**
   * Without transactions (a standalone mongod, the test stand-in) `commit` refuses with
   * `transactions_unsupported`. `true` writes command record, state and outbox one after another
   * instead: a crash between them can save a state change without its events. Tests and demos only.
   */
  readonly unsafeAllowNonTransactional?: boolean;
  readonly logger?: Logger;
}

interface CommandDocument extends CommandOutcome {
  _id: string;
  at: Date;
}

const DUPLICATE_KEY = 11000;

/**
 * The write side on MongoDB: one multi-document transaction per commit (command record, state with
 * a version check, outbox entries). Needs a replica set (or sharded cluster).
 */
export class MongoWriteStore implements WriteStore {
  private readonly db: Db;
  private readonly outbox: Collection<OutboxEntry>;
  private readonly commands: Collection<CommandDocument>;
  private ready: Promise<boolean> | undefined;

  constructor(private readonly options: MongoWriteStoreOptions) {
    this.db = options.client.db(options.database);
    this.outbox = this.db.collection<OutboxEntry>(
      options.outboxCollection ?? DEFAULT_OUTBOX_COLLECTION,
    );
    this.commands = this.db.collection<CommandDocument>(
      options.commandsCollection ?? DEFAULT_COMMANDS_COLLECTION,
    );
  }

  /** Creates the outbox indexes and finds out whether the deployment has transactions. Idempotent. */
  init(): Promise<boolean> {
    this.ready ??= (async () => {
      await ensureOutboxIndexes(
        this.outbox as unknown as Collection,
        this.options.outboxRetentionMs ?? DEFAULT_OUTBOX_RETENTION_MS,
      );
      const transactions = await this.probeTransactions();
      if (!transactions && this.options.unsafeAllowNonTransactional) {
        this.options.logger?.warn(
          { component: 'write', database: this.options.database },
          'UNSAFE: this MongoDB has no transactions and unsafeAllowNonTransactional is set: state and outbox are written one after another; a crash between them loses events. Never use this in production.',
        );
      }
      return transactions;
    })();
    this.ready.catch(() => (this.ready = undefined));
    return this.ready;
  }

  /** True when commits are atomic (the deployment has transactions). */
  async transactional(): Promise<boolean> {
    return this.init();
  }

  async load(aggregateType: string, aggregateId: string): Promise<AggregateRecord | undefined> {
    const doc = await this.stateCollection(aggregateType)
      .findOne({ _id: aggregateId })
      .catch(unavailable);
    return doc ? { aggregateId, version: doc.version, state: doc.state } : undefined;
  }

  async findCommand(commandId: string): Promise<CommandOutcome | undefined> {
    const doc = await this.commands.findOne({ _id: commandId }).catch(unavailable);
    return doc ? outcomeOf(doc) : undefined;
  }

  async commit(commit: Commit): Promise<CommitResult> {
    const transactions = await this.init();
    if (transactions) return this.commitInTransaction(commit);
    if (!this.options.unsafeAllowNonTransactional) {
      throw new PipelineError(
        'transactions_unsupported',
        'this MongoDB deployment has no multi-document transactions: the write side needs a replica set (a one-node replica set will do)',
        { retriable: false, context: { database: this.options.database } },
      );
    }
    return this.commitSequentially(commit);
  }

  private async commitInTransaction(commit: Commit): Promise<CommitResult> {
    const session = this.options.client.startSession();
    try {
      let result: CommitResult = { applied: true };
      await session.withTransaction(async () => {
        result = { applied: true };
        if (commit.commandId !== undefined) {
          if (!(await this.recordCommand(commit, session))) {
            result = { applied: false, reason: 'duplicate_command' };
            await session.abortTransaction();
            return;
          }
        }
        await this.writeState(commit, session);
        await this.writeOutbox(commit, session);
      });
      return result;
    } catch (e) {
      throw classify(e, commit);
    } finally {
      await session.endSession().catch(() => undefined);
    }
  }

  /** Unsafe, explicit opt-in: command record, then state (version-checked), then outbox. */
  private async commitSequentially(commit: Commit): Promise<CommitResult> {
    try {
      if (commit.commandId !== undefined && !(await this.recordCommand(commit, undefined))) {
        return { applied: false, reason: 'duplicate_command' };
      }
      try {
        await this.writeState(commit, undefined);
      } catch (e) {
        if (commit.commandId !== undefined) {
          await this.commands.deleteOne({ _id: commit.commandId }).catch(() => undefined);
        }
        throw e;
      }
      await this.writeOutbox(commit, undefined);
      return { applied: true };
    } catch (e) {
      throw classify(e, commit);
    }
  }

  /** False when the command id is already recorded. */
  private async recordCommand(
    commit: Commit,
    session: ClientSession | undefined,
  ): Promise<boolean> {
    try {
      await this.commands.insertOne(
        { _id: commit.commandId ?? '', ...commit.outcome, at: new Date() },
        session ? { session } : {},
      );
      return true;
    } catch (e) {
      if (codeOf(e) === DUPLICATE_KEY) return false;
      throw e;
    }
  }

  private async writeState(commit: Commit, session: ClientSession | undefined): Promise<void> {
    const states = this.stateCollection(commit.aggregateType);
    const doc: StateDocument = {
      _id: commit.aggregateId,
      aggregateType: commit.aggregateType,
      version: commit.version,
      state: commit.state,
      deleted: commit.state === null,
      updatedAt: new Date(),
    };
    const opts = session ? { session } : {};
    if (commit.expectedVersion === 0) {
      try {
        await states.insertOne(doc, opts);
      } catch (e) {
        if (codeOf(e) === DUPLICATE_KEY) throw conflict(commit, 'it was created concurrently');
        throw e;
      }
      return;
    }
    const { _id: _ignored, ...fields } = doc;
    const res = await states.updateOne(
      { _id: commit.aggregateId, version: commit.expectedVersion },
      { $set: fields },
      opts,
    );
    if (res.matchedCount === 0) throw conflict(commit, 'its stored version changed');
  }

  private async writeOutbox(commit: Commit, session: ClientSession | undefined): Promise<void> {
    if (commit.entries.length === 0) return;
    try {
      await this.outbox.insertMany([...commit.entries], session ? { session } : {});
    } catch (e) {
      if (codeOf(e) === DUPLICATE_KEY) throw conflict(commit, 'its outbox versions are taken');
      throw e;
    }
  }

  private stateCollection(aggregateType: string): Collection<StateDocument> {
    const name =
      this.options.stateCollections?.[aggregateType] ?? stateCollectionName(aggregateType);
    return this.db.collection<StateDocument>(name);
  }

  private async probeTransactions(): Promise<boolean> {
    const session = this.options.client.startSession();
    try {
      await session.withTransaction(async () => {
        await this.commands.findOne({ _id: '__cqrs_sync_probe__' }, { session });
      });
      return true;
    } catch (e) {
      if (noTransactions(e)) return false;
      throw classify(e, undefined);
    } finally {
      await session.endSession().catch(() => undefined);
    }
  }
}

function outcomeOf(doc: CommandDocument): CommandOutcome {
  return {
    aggregateType: doc.aggregateType,
    aggregateId: doc.aggregateId,
    version: doc.version,
    eventIds: doc.eventIds,
  };
}

function codeOf(e: unknown): unknown {
  return (e as { code?: unknown } | null)?.code;
}

/** The stand-in refuses sessions; a standalone mongod refuses transaction numbers (code 20). */
export function noTransactions(e: unknown): boolean {
  const err = e as { name?: unknown; message?: unknown; code?: unknown } | null;
  if (err?.name === 'MongoCompatibilityError') return true;
  const message = typeof err?.message === 'string' ? err.message : '';
  return (
    codeOf(e) === 20 ||
    /does not support sessions|Transaction numbers are only allowed|transactions are not supported/i.test(
      message,
    )
  );
}

function conflict(commit: Commit, why: string): PipelineError {
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

function classify(e: unknown, commit: Commit | undefined): unknown {
  if (e instanceof PipelineError) return e;
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
