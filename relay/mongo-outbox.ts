import type { ChangeStream, Collection, Db, Document, Filter } from 'mongodb';
import { ensureOutboxIndexes, type OutboxFailure } from '../write/outbox.js';
import type {
  Backlog,
  ChangeFeed,
  ChangeFeedHandlers,
  CheckpointStore,
  Lease,
  LeaseStore,
  OutboxSource,
  RawEntry,
  ScanKey,
  VersionStatus,
} from './ports.js';

/** Error codes of a change stream that cannot resume from its token. */
const HISTORY_LOST = new Set([
  286, // ChangeStreamHistoryLost
  280, // ChangeStreamFatalError
  260, // InvalidResumeToken
  9, // FailedToParse (a corrupted token)
]);

export function isHistoryLost(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'number' && HISTORY_LOST.has(code);
}

interface StateDoc {
  _id: string;
  value: unknown;
  at: Date;
}

/** The outbox collection in MongoDB, read through scans and a change stream of inserts. */
export class MongoOutboxSource implements OutboxSource {
  private readonly outbox: Collection;
  private readonly state: Collection<StateDoc>;
  private readonly tokenKey: string;

  constructor(
    db: Db,
    outboxCollection: string,
    private readonly options: { readonly maxAwaitTimeMs?: number } = {},
  ) {
    this.outbox = db.collection(outboxCollection);
    this.state = db.collection<StateDoc>('relay_state');
    this.tokenKey = `resume:${outboxCollection}`;
  }

  ensureIndexes(retentionMs: number): Promise<void> {
    return ensureOutboxIndexes(this.outbox, retentionMs);
  }

  async scanPending(after: ScanKey | undefined, limit: number): Promise<RawEntry[]> {
    const filter: Filter<Document> = { status: 'pending' };
    if (after) {
      filter.$or = [
        { aggregateId: { $gt: after.aggregateId } },
        { aggregateId: after.aggregateId, version: { $gt: after.version } },
      ];
    }
    const docs = await this.outbox
      .find(filter, { promoteBuffers: true })
      .sort({ aggregateId: 1, version: 1 })
      .limit(limit)
      .toArray();
    return docs;
  }

  async heldAggregates(): Promise<string[]> {
    const ids = await this.outbox.distinct('aggregateId', { status: 'failed' });
    return ids.filter((id): id is string => typeof id === 'string');
  }

  async backlog(): Promise<Backlog> {
    const pending = await this.outbox.countDocuments({ status: 'pending' });
    if (pending === 0) return { pending, oldest: undefined };
    const first = await this.outbox
      .find({ status: 'pending' }, { projection: { occurredAt: 1 } })
      .sort({ occurredAt: 1 })
      .limit(1)
      .next();
    const at = first?.occurredAt as unknown;
    return { pending, oldest: at instanceof Date ? at : undefined };
  }

  async versionStatus(aggregateId: string, version: number): Promise<VersionStatus> {
    const doc = await this.outbox.findOne({ aggregateId, version }, { projection: { status: 1 } });
    const status = doc?.status as unknown;
    return status === 'pending' ||
      status === 'relayed' ||
      status === 'skipped' ||
      status === 'failed'
      ? status
      : doc
        ? 'pending'
        : 'absent';
  }

  async markRelayed(ids: readonly unknown[], fence: number): Promise<number> {
    if (ids.length === 0) return 0;
    const res = await this.outbox.updateMany(
      { _id: { $in: [...ids] }, status: 'pending', ...notFencedOut(fence) } as Filter<Document>,
      { $set: { status: 'relayed', relayedAt: new Date(), fence }, $inc: { attempts: 1 } },
    );
    return res.modifiedCount;
  }

  async markFailed(id: unknown, failure: OutboxFailure, fence: number): Promise<void> {
    await this.outbox.updateOne(
      { _id: id, status: 'pending', ...notFencedOut(fence) } as Filter<Document>,
      { $set: { status: 'failed', failure, fence }, $inc: { attempts: 1 } },
    );
  }

  async release(aggregateId: string, mode: 'retry' | 'skip'): Promise<number> {
    const now = new Date();
    const res = await this.outbox.updateMany(
      { aggregateId, status: 'failed' },
      mode === 'retry'
        ? { $set: { status: 'pending', releasedAt: now } }
        : { $set: { status: 'skipped', relayedAt: now, releasedAt: now } },
    );
    return res.modifiedCount;
  }

  async watch(resumeToken: unknown, handlers: ChangeFeedHandlers): Promise<ChangeFeed> {
    const stream: ChangeStream = this.outbox.watch([], {
      maxAwaitTimeMS: this.options.maxAwaitTimeMs ?? 500,
      ...(resumeToken ? { resumeAfter: resumeToken } : {}),
    });
    const feed = { closed: false };
    const isClosed = (): boolean => feed.closed;
    // The first call opens the cursor (and fails now on a bad token).
    const first = await stream.tryNext().catch(async (e: unknown) => {
      await stream.close().catch(() => undefined);
      throw e;
    });
    if (first) handlers.onChange();
    const loop = (async () => {
      while (!feed.closed) {
        try {
          const change = await stream.tryNext();
          // Only inserts matter; on the stand-in updates carry a wrong documentKey anyway.
          if (change && change.operationType === 'insert') handlers.onChange();
          if (stream.resumeToken) handlers.onToken(stream.resumeToken);
        } catch (e) {
          if (isClosed()) return;
          feed.closed = true;
          await stream.close().catch(() => undefined);
          handlers.onError(e, isHistoryLost(e));
          return;
        }
      }
    })();
    return {
      close: async () => {
        feed.closed = true;
        await stream.close().catch(() => undefined);
        await loop;
      },
    };
  }

  isHistoryLost(error: unknown): boolean {
    return isHistoryLost(error);
  }

  async loadResumeToken(): Promise<unknown> {
    return (await this.state.findOne({ _id: this.tokenKey }))?.value;
  }

  /** When the resume token was last saved (for `cqrs-sync status`); undefined when there is none. */
  async resumeTokenSavedAt(): Promise<Date | undefined> {
    const doc = await this.state.findOne({ _id: this.tokenKey });
    return doc?.value === null || doc?.value === undefined ? undefined : doc.at;
  }

  async saveResumeToken(token: unknown): Promise<void> {
    await this.state.updateOne(
      { _id: this.tokenKey },
      { $set: { value: token ?? null, at: new Date() } },
      { upsert: true },
    );
  }
}

/** An entry is fenced out once a relay with a newer token touched it. */
function notFencedOut(fence: number): Filter<Document> {
  return { $or: [{ fence: { $exists: false } }, { fence: { $lte: fence } }] };
}

export interface LeaseDoc {
  _id: string;
  owner: string;
  token: number;
  expiresAt: Date;
  acquiredAt?: Date;
}

/** One lease document per outbox; single-document atomic updates, no transactions. Times come from
 * the relays' clocks: keep them in sync (NTP) to well under the TTL. */
export class MongoLeaseStore implements LeaseStore {
  private readonly leases: Collection<LeaseDoc>;

  constructor(
    db: Db,
    private readonly name: string,
  ) {
    this.leases = db.collection<LeaseDoc>('relay_lease');
  }

  async tryAcquire(owner: string, ttlMs: number): Promise<Lease | undefined> {
    const now = Date.now();
    try {
      await this.leases.updateOne(
        { _id: this.name, $or: [{ expiresAt: { $lte: new Date(now) } }, { owner }] },
        {
          $set: { owner, expiresAt: new Date(now + ttlMs), acquiredAt: new Date(now) },
          $inc: { token: 1 },
        },
        { upsert: true },
      );
    } catch (e) {
      if ((e as { code?: unknown }).code === 11000) return undefined; // held by another owner
      throw e;
    }
    const doc = await this.leases.findOne({ _id: this.name });
    return doc?.owner === owner ? { owner, token: doc.token } : undefined;
  }

  /** The lease as stored, for `cqrs-sync status` (read-only). */
  async current(): Promise<LeaseDoc | undefined> {
    return (await this.leases.findOne({ _id: this.name })) ?? undefined;
  }

  async renew(lease: Lease, ttlMs: number): Promise<boolean> {
    const res = await this.leases.updateOne(
      { _id: this.name, owner: lease.owner, token: lease.token },
      { $set: { expiresAt: new Date(Date.now() + ttlMs) } },
    );
    return res.matchedCount === 1;
  }

  async isCurrent(lease: Lease): Promise<boolean> {
    const doc = await this.leases.findOne({ _id: this.name });
    return doc?.owner === lease.owner && doc.token === lease.token;
  }

  async release(lease: Lease): Promise<void> {
    await this.leases.updateOne(
      { _id: this.name, owner: lease.owner, token: lease.token },
      { $set: { expiresAt: new Date(0) } },
    );
  }
}

export class MongoCheckpointStore implements CheckpointStore {
  private readonly state: Collection<StateDoc>;

  constructor(db: Db) {
    this.state = db.collection<StateDoc>('relay_state');
  }

  async get(key: string): Promise<unknown> {
    return (await this.state.findOne({ _id: key }))?.value;
  }

  async set(key: string, value: unknown): Promise<void> {
    await this.state.updateOne({ _id: key }, { $set: { value, at: new Date() } }, { upsert: true });
  }

  async delete(key: string): Promise<void> {
    await this.state.deleteOne({ _id: key });
  }
}
