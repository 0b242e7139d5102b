/**
 * The pipeline panel: which MongoDB the write side uses, relay state, outbox backlog, consumer lag,
 * dead letters and parked aggregates, and the operator's two repairs, re-drive and replay. Each
 * source is asked separately and a source that does not answer is reported as such: one database
 * down never blanks the whole panel.
 */
import type { Admin, Kafka } from 'kafkajs';
import type { Collection, Db, Document } from 'mongodb';
import type { Catalog } from '../../index.js';
import type { RelayHandle } from '../../relay/index.js';
import type { RedriveResult, SinkHandle } from '../../sink/index.js';
import { mongoKind, type MongoKind } from '../../write/mongodb.js';
import type { VerifyReport } from '../../verify/index.js';
import type { HeldEvent, ReadModel, TamperResult } from './queries.js';

export interface PipelineStatus {
  readonly at: number;
  /** What answers as MongoDB (by its `buildInfo`): a real server, or the test harness's stand-in. */
  readonly mongo: { readonly kind: MongoKind | 'unknown' };
  readonly relay:
    | {
        readonly source: 'in-process';
        readonly state: string;
        readonly role: string;
        readonly published: number;
        readonly failedEntries: number;
      }
    | { readonly source: 'lease'; readonly owner: string | null; readonly active: boolean }
    | { readonly source: 'unknown'; readonly error: string };
  /** Unrelayed entries in the aggregate documents' `outbox` arrays (entries, not documents). */
  readonly outbox:
    | { readonly ok: true; readonly pending: number; readonly failed: number }
    | { readonly ok: false; readonly error: string };
  readonly sink:
    | {
        readonly source: 'in-process';
        readonly state: string;
        readonly counts: Readonly<Record<string, number>>;
      }
    | { readonly source: 'external' };
  readonly readModel:
    | {
        readonly ok: true;
        readonly deadLetters: number;
        readonly parked: number;
        readonly held: number;
        readonly applied: number;
      }
    | { readonly ok: false; readonly error: string };
  readonly lag:
    | {
        readonly ok: true;
        readonly total: number;
        readonly partitions: readonly { topic: string; partition: number; lag: number }[];
      }
    | { readonly ok: false; readonly error: string };
  readonly replayAvailable: boolean;
}

export interface ReplayResult {
  readonly tablesCleared: readonly string[];
  readonly partitionsRewound: number;
}

/** What runs the sink's repairs: the in-process sink's applier, or one built for the web app. */
export interface PipelineControl {
  redrive(target: string): Promise<RedriveResult>;
  /** Absent when the sink runs in another process: use `cqrs-sync replay` there. */
  readonly replay?: () => Promise<ReplayResult>;
  /** Demo only: edit one customer row by hand (undefined: no customer to tamper with). */
  readonly tamper?: () => Promise<TamperResult | undefined>;
  /** `verify` over every type; absent when the web app has not the pipeline's settings. */
  readonly verify?: (repair: boolean) => Promise<VerifyReport>;
}

export interface PipelineOptions {
  readonly db: Db;
  /** The collection of each aggregate type, as the write side and the relay use them. */
  readonly aggregateCollections: Readonly<Record<string, string>>;
  /** The relay's name: the `_id` of its lease document (`RELAY_NAME`, default `outbox`). */
  readonly relayName: string;
  readonly readModel: Pick<ReadModel, 'bookkeeping' | 'held'>;
  readonly kafka: Pick<Kafka, 'admin'>;
  readonly catalog: Catalog;
  readonly control: PipelineControl;
  readonly relay?: () => RelayHandle | undefined;
  readonly sink?: () => SinkHandle | undefined;
}

const TIMEOUT_MS = 3000;

function within<T>(what: string, p: Promise<T>, ms = TIMEOUT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`${what}: no answer within ${ms} ms`));
    }, ms);
  });
  return Promise.race([p, timeout]).finally(() => {
    clearTimeout(timer);
  });
}

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** Outbox entries by status, over one collection's aggregate documents. */
const ENTRIES_BY_STATUS: Document[] = [
  { $match: { 'outbox.status': { $in: ['pending', 'failed'] } } },
  { $unwind: '$outbox' },
  { $match: { 'outbox.status': { $in: ['pending', 'failed'] } } },
  { $group: { _id: '$outbox.status', n: { $sum: 1 } } },
];

export class Pipeline {
  private readonly aggregates: readonly Collection[];
  private readonly leases: Collection<{ _id: string; owner?: string; expiresAt?: Date }>;
  private kind: MongoKind | undefined;
  private admin: Admin | undefined;
  private adminConnecting: Promise<Admin> | undefined;

  constructor(private readonly o: PipelineOptions) {
    this.aggregates = Object.values(o.aggregateCollections).map((name) => o.db.collection(name));
    this.leases = o.db.collection('relay_lease');
  }

  get control(): PipelineControl {
    return this.o.control;
  }

  async status(): Promise<PipelineStatus> {
    const [kind, relay, outbox, readModel, lag] = await Promise.all([
      this.mongoKind(),
      this.relayStatus(),
      this.outboxStatus(),
      this.readModelStatus(),
      this.lagStatus(),
    ]);
    const sink = this.o.sink?.();
    return {
      at: Date.now(),
      mongo: { kind },
      relay,
      outbox,
      sink: sink
        ? { source: 'in-process', state: sink.state, counts: { ...sink.counts } }
        : { source: 'external' },
      readModel,
      lag,
      replayAvailable: this.o.control.replay !== undefined,
    };
  }

  deadLetters(): Promise<HeldEvent[]> {
    return this.o.readModel.held();
  }

  /** Asked once it answers: a server does not change kind under a running demo. */
  private async mongoKind(): Promise<MongoKind | 'unknown'> {
    try {
      this.kind ??= await within('MongoDB', mongoKind(this.o.db));
      return this.kind;
    } catch {
      return 'unknown';
    }
  }

  private async relayStatus(): Promise<PipelineStatus['relay']> {
    const relay = this.o.relay?.();
    if (relay) {
      const s = relay.stats();
      return {
        source: 'in-process',
        state: relay.state,
        role: relay.role,
        published: s.published,
        failedEntries: s.failedEntries,
      };
    }
    try {
      const lease = await this.leases.findOne({ _id: this.o.relayName }, { maxTimeMS: TIMEOUT_MS });
      return {
        source: 'lease',
        owner: lease?.owner ?? null,
        active: (lease?.expiresAt?.getTime() ?? 0) > Date.now(),
      };
    } catch (e) {
      return { source: 'unknown', error: `MongoDB: ${message(e)}` };
    }
  }

  private async outboxStatus(): Promise<PipelineStatus['outbox']> {
    try {
      const rows = await within(
        'MongoDB',
        Promise.all(
          this.aggregates.map((c) =>
            c
              .aggregate<{ _id: unknown; n: number }>(ENTRIES_BY_STATUS, { maxTimeMS: TIMEOUT_MS })
              .toArray(),
          ),
        ),
      );
      const count = (status: string): number =>
        rows.flat().reduce((n, r) => n + (r._id === status ? r.n : 0), 0);
      return { ok: true, pending: count('pending'), failed: count('failed') };
    } catch (e) {
      return { ok: false, error: `MongoDB: ${message(e)}` };
    }
  }

  private async readModelStatus(): Promise<PipelineStatus['readModel']> {
    try {
      const b = await within('MySQL', this.o.readModel.bookkeeping());
      return {
        ok: true,
        deadLetters: b.deadLetters,
        parked: b.parked,
        held: b.held,
        applied: b.applied,
      };
    } catch (e) {
      return { ok: false, error: `MySQL: ${message(e)}` };
    }
  }

  /** Per partition: the topic's end offset minus the next offset the sink stored in MySQL. */
  private async lagStatus(): Promise<PipelineStatus['lag']> {
    try {
      const [admin, book] = await Promise.all([
        within('Kafka', this.connectAdmin()),
        within('MySQL', this.o.readModel.bookkeeping()),
      ]);
      const partitions: { topic: string; partition: number; lag: number }[] = [];
      for (const topic of this.o.catalog.topics()) {
        const ends = await within('Kafka', admin.fetchTopicOffsets(topic)).catch((e: unknown) => {
          // A topic the relay has not created yet has no lag.
          if (/does not host this topic-partition|UNKNOWN_TOPIC/i.test(message(e))) return [];
          throw e;
        });
        for (const p of ends) {
          const next = book.offsets.get(`${topic}:${p.partition}`) ?? BigInt(p.low);
          const lag = BigInt(p.high) - next;
          partitions.push({ topic, partition: p.partition, lag: Number(lag > 0n ? lag : 0n) });
        }
      }
      return { ok: true, total: partitions.reduce((a, p) => a + p.lag, 0), partitions };
    } catch (e) {
      return { ok: false, error: message(e) };
    }
  }

  private connectAdmin(): Promise<Admin> {
    if (this.admin) return Promise.resolve(this.admin);
    this.adminConnecting ??= (async () => {
      const admin = this.o.kafka.admin({ retry: { retries: 1 } });
      try {
        await admin.connect();
      } catch (e) {
        this.adminConnecting = undefined;
        throw e;
      }
      this.admin = admin;
      return admin;
    })();
    return this.adminConnecting;
  }

  async close(): Promise<void> {
    const admin = this.admin ?? (await this.adminConnecting?.catch(() => undefined));
    await admin?.disconnect().catch(() => undefined);
  }
}
