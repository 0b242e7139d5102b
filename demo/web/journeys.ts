/**
 * The journey of each event the web app's commands produced: committed in MongoDB (its outbox
 * entry) -> published (the relay marked it relayed after the broker's ack; the relay records no
 * partition or offset, so the journey shows the topic and the relayed-at time) -> applied in MySQL
 * (the sink's dedupe table), with the lag of each step. Kept in memory, newest first, bounded.
 */
import type { Collection, Db } from 'mongodb';
import type { Catalog } from '../../schemas/catalog.js';
import type { CommandRun } from './commands.js';
import type { ReadModel } from './queries.js';

export type StepState = 'waiting' | 'done' | 'failed';

export interface Journey {
  readonly eventId: string;
  readonly command: string;
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

interface OutboxDoc {
  _id: string;
  type?: string;
  version?: number;
  status?: string;
  occurredAt?: Date;
  relayedAt?: Date | null;
  failure?: { code?: string; reason?: string } | null;
}

const KEEP = 40;
const GIVE_UP_MS = 15 * 60 * 1000;

export class JourneyTracker {
  private readonly journeys: Journey[] = [];
  private readonly outbox: Collection<OutboxDoc>;
  /** Last problem reaching each database, for the UI (null: fine). */
  readonly problems: { mongodb: string | null; mysql: string | null } = {
    mongodb: null,
    mysql: null,
  };

  constructor(
    db: Db,
    outboxCollection: string,
    private readonly readModel: ReadModel,
    private readonly catalog: Catalog,
  ) {
    this.outbox = db.collection<OutboxDoc>(outboxCollection);
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
    const unpublished = open.filter((j) => j.published.state === 'waiting' || j.eventType === '');
    if (unpublished.length > 0) {
      try {
        const docs = await this.outbox
          .find(
            { _id: { $in: unpublished.map((j) => j.eventId) } },
            {
              projection: {
                type: 1,
                version: 1,
                status: 1,
                occurredAt: 1,
                relayedAt: 1,
                failure: 1,
              },
              maxTimeMS: 2000,
            },
          )
          .toArray();
        this.problems.mongodb = null;
        const byId = new Map(docs.map((d) => [d._id, d]));
        for (const j of unpublished) {
          const d = byId.get(j.eventId);
          if (!d) continue;
          if (d.type && j.eventType !== d.type) {
            j.eventType = d.type;
            changed.add(j);
          }
          const occurred = d.occurredAt?.getTime();
          if (occurred !== undefined && j.committed.at !== occurred) {
            j.committed = { state: 'done', at: occurred, outboxStatus: d.status ?? '' };
            changed.add(j);
          }
          if (d.status === 'relayed' && d.relayedAt && j.published.state !== 'done') {
            j.published = { state: 'done', at: d.relayedAt.getTime(), detail: j.topic };
            changed.add(j);
          } else if (d.status === 'failed' && j.published.state !== 'failed') {
            j.published = {
              state: 'failed',
              detail: `${d.failure?.code ?? 'failed'}: ${d.failure?.reason ?? ''}`,
            };
            changed.add(j);
          }
        }
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
        if (at !== undefined) {
          j.applied = { state: 'done', at, detail: 'applied in MySQL' };
          if (j.published.state === 'waiting') j.published = { state: 'done', detail: j.topic };
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
}
