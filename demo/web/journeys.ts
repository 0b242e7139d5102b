/**
 * The journey of each event the web app's commands produced: committed in MongoDB (an entry in its
 * aggregate document's `outbox`) -> published (the relay removed the entry after the broker's ack;
 * the relay records no partition or offset, so the journey shows the topic and the document's
 * `relayedAt`) -> applied in MySQL (the sink's dedupe table), with the lag of each step. Kept in
 * memory, newest first, bounded.
 */
import type { Collection, Db } from 'mongodb';
import type { Catalog, AggregateDocument, OutboxEntry } from '../../index.js';
import type { CommandRun } from './commands.js';
import type { ReadModel } from './queries.js';

export type StepState = 'waiting' | 'done' | 'failed';

export interface Journey {
  readonly eventId: string;
  readonly command: string;
  /** From the outbox entry; empty when it was relayed before it was seen (see `refresh`). */
  eventType: string;
  readonly aggregateType: string;
  readonly aggregateId: string;
  readonly version: number;
  readonly topic: string;
  /** When the command returned (ms since epoch). */
  readonly acceptedAt: number;
  committed: { state: StepState; at?: number; outboxStatus?: string };
  published: { state: StepState; at?: number; detail?: string };
  applied: { state: StepState; at?: number; detail?: string };
  /** applied - committed, ms. */
  lagMs?: number;
}

/** What a journey reads of an aggregate document (never the payloads). */
type SeenEntry = Pick<OutboxEntry, 'eventId' | 'type' | 'status' | 'occurredAt' | 'failure'>;
type SeenDocument = Pick<AggregateDocument, '_id' | 'relayedVersion' | 'relayedAt'> & {
  outbox?: Partial<SeenEntry>[];
};

const KEEP = 40;
const GIVE_UP_MS = 15 * 60 * 1000;
const SKIPPED = 'skipped by an operator (relay release --skip): never published';

export class JourneyTracker {
  private readonly journeys: Journey[] = [];
  private readonly collections: ReadonlyMap<string, Collection<SeenDocument>>;
  /** Last problem reaching each database, for the UI (null: fine). */
  readonly problems: { mongodb: string | null; mysql: string | null } = {
    mongodb: null,
    mysql: null,
  };

  constructor(
    db: Db,
    /** The collection of each aggregate type, as the write side and the relay use them. */
    collections: Readonly<Record<string, string>>,
    private readonly readModel: Pick<ReadModel, 'applied' | 'held'>,
    private readonly catalog: Catalog,
  ) {
    this.collections = new Map(
      Object.entries(collections).map(([type, name]) => [type, db.collection<SeenDocument>(name)]),
    );
  }

  /** Starts following the events of a command that ran. */
  track(run: CommandRun, now = Date.now()): Journey[] {
    const r = run.result;
    if (!r.applied) return [];
    const added = r.eventIds.map((eventId, i): Journey => {
      const version = r.version - r.eventIds.length + 1 + i;
      const agg = this.catalog.findAggregate(r.aggregateType);
      return {
        eventId,
        command: run.command,
        eventType: '',
        aggregateType: r.aggregateType,
        aggregateId: r.aggregateId,
        version,
        topic: agg?.topic ?? '',
        acceptedAt: now,
        committed: { state: 'done', at: now },
        published: { state: 'waiting' },
        applied: { state: 'waiting' },
      };
    });
    this.journeys.unshift(...added.reverse());
    this.journeys.splice(KEEP);
    return added;
  }

  list(): readonly Journey[] {
    return this.journeys;
  }

  /** Checks unfinished journeys against MongoDB and MySQL; returns those that changed. */
  async refresh(now = Date.now()): Promise<Journey[]> {
    const open = this.journeys.filter(
      (j) => j.applied.state === 'waiting' && now - j.acceptedAt < GIVE_UP_MS,
    );
    if (open.length === 0) return [];
    const changed = new Set<Journey>();
    const unpublished = open.filter((j) => j.published.state !== 'done');
    if (unpublished.length > 0) {
      try {
        await this.refreshOutbox(unpublished, changed);
        this.problems.mongodb = null;
      } catch (e) {
        this.problems.mongodb = (e as Error).message;
      }
    }
    try {
      const ids = open.map((j) => j.eventId);
      const [applied, held] = await Promise.all([
        this.readModel.applied(ids),
        this.readModel.held(ids),
      ]);
      this.problems.mysql = null;
      const appliedAt = new Map(applied.map((a) => [a.eventId, a.appliedAt]));
      const heldBy = new Map(held.map((h) => [h.eventId, h]));
      for (const j of open) {
        const at = appliedAt.get(j.eventId);
        const h = heldBy.get(j.eventId);
        // The sink's held table names the type; its dedupe table does not.
        if (h?.eventType && j.eventType === '') {
          j.eventType = h.eventType;
          changed.add(j);
        }
        if (at !== undefined) {
          j.applied = { state: 'done', at, detail: 'applied in MySQL' };
          if (j.published.state !== 'done') j.published = { state: 'done', detail: j.topic };
          j.lagMs = Math.max(0, at - (j.committed.at ?? j.acceptedAt));
          changed.add(j);
        } else if (h) {
          const detail = `held by the sink: ${h.kind}${h.errorCode ? ` (${h.errorCode})` : ''}`;
          if (j.applied.detail === detail) continue;
          j.applied = { state: h.kind === 'gap' ? 'waiting' : 'failed', detail };
          changed.add(j);
        }
      }
    } catch (e) {
      this.problems.mysql = (e as Error).message;
    }
    return [...changed];
  }

  /**
   * Reads the journeys' aggregate documents, by `_id`, one query per collection. An event is pending
   * while its entry is in the document's `outbox` (status `pending`, or `failed` with the relay's
   * reason), and published once the entry is gone and its version is at most `relayedVersion`.
   */
  private async refreshOutbox(journeys: readonly Journey[], changed: Set<Journey>): Promise<void> {
    const byType = new Map<string, Journey[]>();
    for (const j of journeys) {
      const list = byType.get(j.aggregateType);
      if (list) list.push(j);
      else byType.set(j.aggregateType, [j]);
    }
    for (const [type, list] of byType) {
      const collection = this.collections.get(type);
      if (!collection) continue;
      const docs = await collection
        .find(
          { _id: { $in: [...new Set(list.map((j) => j.aggregateId))] } },
          {
            projection: {
              relayedVersion: 1,
              relayedAt: 1,
              'outbox.eventId': 1,
              'outbox.type': 1,
              'outbox.status': 1,
              'outbox.occurredAt': 1,
              'outbox.failure': 1,
            },
            maxTimeMS: 2000,
          },
        )
        .toArray();
      const byId = new Map(docs.map((d) => [d._id, d]));
      for (const j of list) {
        const doc = byId.get(j.aggregateId);
        if (doc && seen(j, doc)) changed.add(j);
      }
    }
  }
}

/** Updates a journey from its aggregate document; true when something changed. */
function seen(j: Journey, doc: SeenDocument): boolean {
  const entry = doc.outbox?.find((e) => e.eventId === j.eventId);
  const before = JSON.stringify([j.eventType, j.committed, j.published]);
  if (entry) {
    if (entry.type) j.eventType = entry.type;
    j.committed = {
      state: 'done',
      at: entry.occurredAt?.getTime() ?? j.committed.at ?? j.acceptedAt,
      outboxStatus: entry.status ?? 'pending',
    };
    if (entry.status === 'failed') {
      j.published = {
        state: 'failed',
        detail: `${entry.failure?.code ?? 'failed'}: ${entry.failure?.reason ?? ''}`,
      };
    } else if (entry.status === 'skipped') {
      j.published = { state: 'failed', detail: SKIPPED };
    } else {
      // Pending again after `relay release`: waiting, not failed.
      j.published = { state: 'waiting' };
    }
  } else if (j.version <= doc.relayedVersion && j.committed.outboxStatus !== 'skipped') {
    // `relayedAt` is the time of the mark that removed the entry, or of a later mark of this
    // aggregate when one came before this read: the publish happened at or before it.
    j.published = {
      state: 'done',
      ...(doc.relayedAt ? { at: doc.relayedAt.getTime() } : {}),
      detail: j.topic,
    };
  }
  return JSON.stringify([j.eventType, j.committed, j.published]) !== before;
}
