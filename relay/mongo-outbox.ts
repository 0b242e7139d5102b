import type {
  AnyBulkWriteOperation,
  ChangeStream,
  Collection,
  Db,
  Document,
  FindCursor,
} from 'mongodb';
import { PENDING_MARKER, type OutboxFailure } from '../schemas/outbox-entry.js';
import { mongoKind } from '../write/mongo-server.js';
import { ensureRelayIndexes } from './mongo-indexes.js';
import type {
  Backlog,
  ChangeFeed,
  ChangeFeedHandlers,
  CheckpointStore,
  EntryRef,
  Lease,
  LeaseStore,
  OutboxSource,
  RawEntry,
  ScanKey,
  ScanPage,
  ScannedEntry,
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

export interface MongoOutboxSourceOptions {
  /** The collection of each aggregate type, in scan order. */
  readonly collections: Readonly<Record<string, string>>;
  /** Names the resume token (`resume:<name>`); default `outbox`. */
  readonly name?: string;
  readonly maxAwaitTimeMs?: number;
  /** The least time between the starts of two change-stream reads that came back empty; default
   * `MIN_EMPTY_READ_INTERVAL_MS`. */
  readonly minEmptyReadIntervalMs?: number;
}

/**
 * A real server answers an empty change-stream read only after waiting `maxAwaitTimeMS` for a
 * change, so its empty reads never come back faster than this and nothing waits here: on a real
 * replica set this changes nothing. The mongo-java-server stand-in answers at once, streaming its
 * whole oplog each time, so an idle stream would poll it in a tight loop. A read that brings a
 * change is followed by the next one at once; only a change that lands during the pause after an
 * empty read waits, at most this long, on the stand-in.
 */
export const MIN_EMPTY_READ_INTERVAL_MS = 100;

interface AggregateDoc extends Document {
  _id: string;
  outbox?: unknown;
  relayedVersion?: unknown;
  relayFence?: unknown;
}

/**
 * The outbox as the relay reads it: the unrelayed entries inside the aggregate documents of every
 * aggregate type's collection, found by the scan (the source of truth, on the pending marker) and
 * woken up by a change stream per collection (the fast path). Marks are single-document updates
 * conditional on the document's `relayFence` as read, so no mark can drop an entry appended after
 * the read (writers only append) and a relay whose lease was taken over cannot mark a document the
 * newer relay changed.
 */
export class MongoOutboxSource implements OutboxSource {
  private readonly types: readonly string[];
  private readonly collections: ReadonlyMap<string, Collection<AggregateDoc>>;
  private readonly state: Collection<StateDoc>;
  private readonly tokenKey: string;
  /** The scan's open cursor: its collection and the last document id it returned. */
  private scan: { type: string; lastId: string; cursor: FindCursor<AggregateDoc> } | undefined;
  private scanQueue: Promise<unknown> = Promise.resolve();
  private readonly readTimes: StreamReadTimes;

  constructor(
    private readonly db: Db,
    private readonly options: MongoOutboxSourceOptions,
  ) {
    this.types = Object.keys(options.collections);
    this.collections = new Map(
      Object.entries(options.collections).map(([type, name]) => [type, db.collection(name)]),
    );
    this.state = db.collection<StateDoc>('relay_state');
    this.tokenKey = `resume:${options.name ?? 'outbox'}`;
    this.readTimes = {
      maxAwaitTimeMs: options.maxAwaitTimeMs ?? 500,
      minEmptyReadIntervalMs: options.minEmptyReadIntervalMs ?? MIN_EMPTY_READ_INTERVAL_MS,
    };
  }

  async ensureIndexes(): Promise<void> {
    const kind = await mongoKind(this.db);
    for (const c of this.collections.values()) {
      await ensureRelayIndexes(c as unknown as Collection, kind);
    }
  }

  /**
   * One cursor per pass and collection, not one query per page: a page that continues where the
   * last one ended reads on from the open cursor. A query per page cost the stand-in a scan and
   * sort of the whole collection per page (it ignores the marker index); on a real server the
   * cursor walks the same index, with one round trip per page instead of a new query. Documents
   * are read as they come, so a page is as fresh as before: marks stay conditional on the fence as
   * read, and a pass never reads a document twice. Calls are serialised (the relay reads the next
   * page while it publishes this one).
   */
  scanPending(after: ScanKey | undefined, limit: number): Promise<ScanPage> {
    const page = this.scanQueue.then(() => this.readPage(after, limit));
    this.scanQueue = page.catch(() => undefined);
    return page;
  }

  private async readPage(after: ScanKey | undefined, limit: number): Promise<ScanPage> {
    let start = after ? this.types.indexOf(after.aggregateType) : 0;
    if (start < 0) start = 0;
    for (let t = start; t < this.types.length; t++) {
      const type = this.types[t] as string;
      const from = after && t === start && after.aggregateType === type ? after.aggregateId : '';
      const open = this.scan;
      const continued =
        after !== undefined && open !== undefined && open.type === type && open.lastId === from;
      let cursor = continued ? open.cursor : await this.openScan(type, from, limit);
      let reopened = false;
      // Whole documents: an aggregate's entries are never split across pages.
      const entries: ScannedEntry[] = [];
      let read = 0;
      let lastId = from;
      let exhausted = false;
      while (entries.length < limit && read < limit) {
        let doc: AggregateDoc | null;
        try {
          doc = await cursor.next();
        } catch (e) {
          // A continued cursor the server dropped (timed out while the relay waited on the
          // broker): reopen it once after the last document read.
          if (!continued || reopened) throw e;
          reopened = true;
          cursor = await this.openScan(type, lastId, limit);
          doc = await cursor.next();
        }
        if (!doc) {
          exhausted = true;
          break;
        }
        read++;
        entries.push(...scanned(type, doc));
        if (typeof doc._id === 'string') lastId = doc._id;
      }
      if (exhausted) await this.closeScan();
      else if (this.scan) this.scan.lastId = lastId;
      if (read === 0) continue;
      const next: ScanKey | undefined = !exhausted
        ? { aggregateType: type, aggregateId: lastId }
        : this.types[t + 1] !== undefined
          ? { aggregateType: this.types[t + 1] as string, aggregateId: '' }
          : undefined;
      return { entries, next };
    }
    return { entries: [], next: undefined };
  }

  /** Closes the open cursor (a pass interrupted or done) and opens one after `after`. */
  private async openScan(
    type: string,
    after: string,
    limit: number,
  ): Promise<FindCursor<AggregateDoc>> {
    await this.closeScan();
    const filter: Document = { ...PENDING_MARKER };
    if (after !== '') filter._id = { $gt: after };
    const cursor = this.collection(type)
      .find(filter, {
        promoteBuffers: true,
        projection: { outbox: 1, relayedVersion: 1, relayFence: 1 },
      })
      .sort({ _id: 1 })
      .batchSize(limit);
    this.scan = { type, lastId: after, cursor };
    return cursor;
  }

  private async closeScan(): Promise<void> {
    const open = this.scan;
    this.scan = undefined;
    await open?.cursor.close().catch(() => undefined);
  }

  async heldAggregates(): Promise<string[]> {
    const held: string[] = [];
    for (const [type, c] of this.collections) {
      const ids = await c.distinct('_id', { 'outbox.status': 'failed' });
      for (const id of ids) if (typeof id === 'string') held.push(`${type}/${id}`);
    }
    return held;
  }

  async backlog(): Promise<Backlog> {
    let pending = 0;
    let oldest: Date | undefined;
    for (const c of this.collections.values()) {
      const [row] = await c
        .aggregate<{ n: number; oldest: unknown }>([
          { $match: { ...PENDING_MARKER } },
          { $unwind: '$outbox' },
          { $match: { ...PENDING_MARKER } },
          { $group: { _id: null, n: { $sum: 1 }, oldest: { $min: '$outbox.occurredAt' } } },
        ])
        .toArray();
      if (!row) continue;
      pending += row.n;
      if (row.oldest instanceof Date && (!oldest || row.oldest < oldest)) oldest = row.oldest;
    }
    return { pending, oldest };
  }

  async markRelayed(refs: readonly EntryRef[], fence: number): Promise<number> {
    const byDoc = new Map<string, EntryRef[]>();
    for (const ref of refs) {
      const k = `${ref.aggregateType}\u0000${ref.aggregateId}`;
      const list = byDoc.get(k);
      if (list) list.push(ref);
      else byDoc.set(k, [ref]);
    }
    const now = new Date();
    const perType = new Map<
      string,
      { group: EntryRef[]; op: AnyBulkWriteOperation<AggregateDoc> }[]
    >();
    for (const group of byDoc.values()) {
      const first = group[0] as EntryRef;
      if (first.fence > fence) continue; // a newer relay changed it: not ours to mark
      const ops = perType.get(first.aggregateType) ?? [];
      ops.push({ group, op: { updateOne: relayedUpdate(group, first.fence, fence, now) } });
      perType.set(first.aggregateType, ops);
    }
    let removed = 0;
    for (const [type, ops] of perType) {
      const collection = this.collection(type);
      const res = await collection.bulkWrite(
        ops.map((o) => o.op),
        { ordered: false },
      );
      if (res.matchedCount === ops.length) {
        removed += ops.reduce((n, o) => n + o.group.length, 0);
        continue;
      }
      // Some documents' fence moved since the scan (this relay marked one failed, or an older relay
      // marked it, as a deposed relay does after a takeover): read the fences again, in one query
      // for the whole batch, and retry those documents, unless a newer relay owns them now.
      const fences = await fencesOf(
        collection,
        ops.map((o) => (o.group[0] as EntryRef).aggregateId),
      );
      for (const { group } of ops) {
        const first = group[0] as EntryRef;
        const current = fences.get(first.aggregateId);
        if (current === undefined || current > fence) continue; // gone, or a newer relay's
        // Fences only grow: unchanged since the scan means the bulk write matched.
        if (current !== first.fence) {
          const again = relayedUpdate(group, current, fence, now);
          if ((await collection.updateOne(again.filter, again.update)).matchedCount === 0) continue;
        }
        removed += group.length;
      }
    }
    return removed;
  }

  async markFailed(ref: EntryRef, failure: OutboxFailure, fence: number): Promise<void> {
    if (ref.fence > fence) return;
    const collection = this.collection(ref.aggregateType);
    const path = `outbox.${ref.index}`;
    const filter = { _id: ref.aggregateId, relayFence: ref.fence };
    try {
      await collection.updateOne(filter, {
        $set: { [`${path}.status`]: 'failed', [`${path}.failure`]: failure, relayFence: fence },
      });
    } catch {
      // The entry is not even a document: wrap it, so the aggregate is held with a reason.
      const doc = await collection.findOne({ _id: ref.aggregateId }, { projection: { outbox: 1 } });
      const original = Array.isArray(doc?.outbox) ? (doc.outbox as unknown[])[ref.index] : null;
      await collection.updateOne(filter, {
        $set: { [path]: { status: 'failed', failure, original }, relayFence: fence },
      });
    }
  }

  async release(
    aggregateId: string,
    mode: 'retry' | 'skip',
    aggregateType?: string,
  ): Promise<number> {
    const now = new Date();
    let changed = 0;
    for (const [type, collection] of this.collections) {
      if (aggregateType !== undefined && type !== aggregateType) continue;
      const doc = await collection.findOne({ _id: aggregateId }, { projection: { outbox: 1 } });
      const outbox = Array.isArray(doc?.outbox) ? (doc.outbox as unknown[]) : [];
      const failed = outbox.filter((e) => (e as { status?: unknown } | null)?.status === 'failed');
      if (failed.length === 0) continue;
      // In place (no entry removed): positions stay what a running relay read. `releasedAt` before
      // `status`: the stand-in applies the fields one by one and matches the array filter again for
      // each, so after the status it would find no failed entry to stamp.
      await collection.updateOne(
        { _id: aggregateId },
        {
          $set: {
            'outbox.$[e].releasedAt': now,
            'outbox.$[e].status': mode === 'retry' ? 'pending' : 'skipped',
          },
        },
        { arrayFilters: [{ 'e.status': 'failed' }] },
      );
      changed += failed.length;
    }
    return changed;
  }

  async watch(resumeToken: unknown, handlers: ChangeFeedHandlers): Promise<ChangeFeed> {
    // One stream per collection; the token is theirs together: `{ <collection>: token }`.
    const tokens: Record<string, unknown> =
      resumeToken && typeof resumeToken === 'object' ? { ...resumeToken } : {};
    const feeds: ChangeFeed[] = [];
    let failed = false;
    const onError = (error: unknown, historyLost: boolean): void => {
      if (failed) return;
      failed = true;
      void Promise.all(feeds.map((f) => f.close())).then(() => {
        handlers.onError(error, historyLost);
      });
    };
    try {
      for (const collection of this.collections.values()) {
        const name = collection.collectionName;
        feeds.push(
          await watchOne(collection, tokens[name], this.readTimes, {
            onChange: handlers.onChange,
            onActivity: handlers.onActivity,
            onToken: (token) => {
              tokens[name] = token;
              handlers.onToken({ ...tokens });
            },
            onError,
          }),
        );
      }
    } catch (e) {
      await Promise.all(feeds.map((f) => f.close()));
      throw e;
    }
    return {
      close: async () => {
        failed = true;
        await Promise.all(feeds.map((f) => f.close()));
      },
    };
  }

  isHistoryLost(error: unknown): boolean {
    return isHistoryLost(error);
  }

  async loadResumeToken(): Promise<unknown> {
    return (await this.state.findOne({ _id: this.tokenKey }))?.value;
  }

  /** When the resume token was last saved (for `cqrs-sync status`); undefined when there is none. The document is written by hand at
   * times (a restore, an operator's fix): an `at` that is not a date throws (a TypeError saying what
   * it is) rather than passing for one. */
  async resumeTokenSavedAt(): Promise<Date | undefined> {
    const doc = await this.state.findOne({ _id: this.tokenKey });
    if (doc?.value === null || doc?.value === undefined) return undefined;
    const at: unknown = doc.at;
    if (at instanceof Date && !Number.isNaN(at.getTime())) return at;
    // JSON.stringify gives undefined for undefined (its declared type says string).
    const json = JSON.stringify(at) as string | undefined;
    const shown = at instanceof Date ? 'an invalid date' : (json ?? String(at));
    throw new TypeError(
      `resume token document ${this.tokenKey}: "at" is ${shown.slice(0, 80)}, not a date`,
    );
  }

  async saveResumeToken(token: unknown): Promise<void> {
    await this.state.updateOne(
      { _id: this.tokenKey },
      { $set: { value: token ?? null, at: new Date() } },
      { upsert: true },
    );
  }

  private collection(type: string): Collection<AggregateDoc> {
    const c = this.collections.get(type);
    if (!c) throw new Error(`no collection for aggregate type ${type}`);
    return c;
  }
}

/** The pending entries of one document, with what the relay needs to decide and to mark. */
function scanned(aggregateType: string, doc: AggregateDoc): ScannedEntry[] {
  if (typeof doc._id !== 'string') return [];
  const outbox = Array.isArray(doc.outbox) ? (doc.outbox as unknown[]) : [];
  const relayedVersion = typeof doc.relayedVersion === 'number' ? doc.relayedVersion : 0;
  const fence = typeof doc.relayFence === 'number' ? doc.relayFence : 0;
  const statusOf = new Map<number, VersionStatus>();
  const skipped: { eventId: string; version: number }[] = [];
  let held = false;
  for (const e of outbox) {
    const entry = (e ?? {}) as RawEntry;
    const status = entry.status === undefined ? 'pending' : entry.status;
    if (status === 'failed') held = true;
    if (typeof entry.version === 'number' && typeof status === 'string') {
      statusOf.set(entry.version, status as VersionStatus);
    }
    if (
      status === 'skipped' &&
      typeof entry.eventId === 'string' &&
      typeof entry.version === 'number'
    ) {
      skipped.push({ eventId: entry.eventId, version: entry.version });
    }
  }
  const result: ScannedEntry[] = [];
  outbox.forEach((e, index) => {
    const entry = (e !== null && typeof e === 'object' ? e : { value: e }) as RawEntry;
    const status = entry.status === undefined ? 'pending' : entry.status;
    if (status !== 'pending') return;
    const version = typeof entry.version === 'number' ? entry.version : 0;
    const previous: VersionStatus =
      version - 1 <= relayedVersion ? 'relayed' : (statusOf.get(version - 1) ?? 'absent');
    result.push({
      raw: entry,
      ref: {
        aggregateType,
        aggregateId: doc._id,
        eventId: typeof entry.eventId === 'string' ? entry.eventId : undefined,
        version,
        index,
        fence,
        skipped,
      },
      previous,
      held,
    });
  });
  return result.sort((a, b) => numberOf(a.raw.version) - numberOf(b.raw.version));
}

function numberOf(v: unknown): number {
  return typeof v === 'number' ? v : 0;
}

/** The `relayFence` of each document that exists (0 when it has none). One query: `_id` with `$in`,
 * which the stand-in serves from its `_id` index like a real server. */
async function fencesOf(
  collection: Collection<AggregateDoc>,
  ids: readonly string[],
): Promise<Map<string, number>> {
  const docs = await collection
    .find({ _id: { $in: [...ids] } }, { projection: { relayFence: 1 } })
    .toArray();
  return new Map(docs.map((d) => [d._id, typeof d.relayFence === 'number' ? d.relayFence : 0]));
}

/** Removes the published (and skipped) entries, raises `relayedVersion`, takes the fence. */
function relayedUpdate(
  group: readonly EntryRef[],
  readFence: number,
  fence: number,
  now: Date,
): { filter: Document; update: Document } {
  const first = group[0] as EntryRef;
  const ids = group.map((r) => r.eventId).filter((id): id is string => id !== undefined);
  for (const s of first.skipped) ids.push(s.eventId);
  return {
    // Exactly these two fields: the stand-in serves them from its (_id, relayFence) index.
    filter: { _id: first.aggregateId, relayFence: readFence },
    update: {
      $pull: { outbox: { eventId: { $in: ids } } },
      $max: {
        relayedVersion: Math.max(
          0,
          ...group.map((r) => r.version),
          ...first.skipped.map((s) => s.version),
        ),
      },
      $set: { relayFence: fence, relayedAt: now },
    },
  };
}

interface StreamReadTimes {
  readonly maxAwaitTimeMs: number;
  readonly minEmptyReadIntervalMs: number;
}

async function watchOne(
  collection: Collection<AggregateDoc>,
  resumeToken: unknown,
  times: StreamReadTimes,
  handlers: ChangeFeedHandlers,
): Promise<ChangeFeed> {
  const stream: ChangeStream = collection.watch([], {
    maxAwaitTimeMS: times.maxAwaitTimeMs,
    ...(resumeToken ? { resumeAfter: resumeToken } : {}),
  });
  const feed: { closed: boolean; wake?: () => void } = { closed: false };
  const isClosed = (): boolean => feed.closed;
  /** Waits `ms` (nothing when <= 0), or less when the feed is closed. */
  const pause = (ms: number): Promise<void> =>
    ms <= 0
      ? Promise.resolve()
      : new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, ms);
          feed.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
  // The first call opens the cursor (and fails now on a bad token).
  let asked = Date.now();
  const first = await stream.tryNext().catch(async (e: unknown) => {
    await stream.close().catch(() => undefined);
    throw e;
  });
  if (first) {
    handlers.onActivity();
    handlers.onChange();
  }
  /** When the last read that came back empty was sent; undefined after one that brought a change. */
  let emptySince = first ? undefined : asked;
  const loop = (async () => {
    while (!feed.closed) {
      try {
        // After an empty read faster than a real server answers one (MIN_EMPTY_READ_INTERVAL_MS).
        if (emptySince !== undefined) {
          await pause(times.minEmptyReadIntervalMs - (Date.now() - emptySince));
          if (isClosed()) return;
        }
        asked = Date.now();
        const change = await stream.tryNext();
        emptySince = change ? undefined : asked;
        if (change) handlers.onActivity();
        if (change && isWrite(change)) handlers.onChange();
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
      feed.wake?.();
      await stream.close().catch(() => undefined);
      await loop;
    },
  };
}

/**
 * A writer's change (a new aggregate, or one whose version moved), not a relay's own mark: only
 * those can bring new pending entries. A real server says which fields an update set
 * (`updateDescription`); the stand-in gives them as `fullDocument`. Unknown shapes wake the scan.
 */
function isWrite(change: Document): boolean {
  if (change.operationType !== 'update') return change.operationType !== 'delete';
  const description = change.updateDescription as { updatedFields?: Document } | undefined;
  const fields = (description?.updatedFields ?? change.fullDocument) as Document | undefined;
  return !fields || 'version' in fields || Object.keys(fields).some((k) => k.startsWith('outbox.'));
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
