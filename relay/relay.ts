import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { backoffDelay, retryBackoff } from '../ops/backoff.js';
import type { ReadinessCheck } from '../ops/http.js';
import { Lifecycle, type ProcessState } from '../ops/lifecycle.js';
import type { Catalog } from '../schemas/catalog.js';
import type { EventCodec } from '../schemas/codec.js';
import { isPipelineError } from '../schemas/errors.js';
import type { RelayConfig } from './config.js';
import { checkEntry, type BadEntry } from './entry.js';
import { RelayFeed } from './feed.js';
import { LeaseKeeper } from './lease-keeper.js';
import { RelayMetrics } from './metrics.js';
import type {
  EventPublisher,
  Lease,
  LeaseStore,
  OutboxSource,
  OutgoingRecord,
  Backlog,
  EntryRef,
  ScannedEntry,
} from './ports.js';
import { PublishedVersions, aggregateKey, planPage } from './publish-plan.js';

/** The one lifecycle state union of both processes (ops/lifecycle.ts). */
export type RelayState = ProcessState;
export type RelayRole = 'standby' | 'active';

export interface RelayStats {
  readonly published: number;
  readonly failedEntries: number;
  readonly scans: number;
  readonly errors: number;
  readonly leaseToken: number | undefined;
}

export interface RelayHandle {
  readonly state: RelayState;
  /** `active` while it holds the lease. */
  readonly role: RelayRole;
  readonly owner: string;
  readonly metrics: Registry;
  /** The operations endpoint (`/metrics`, `/healthz`, `/readyz`) when `config.opsPort` is set. */
  readonly opsUrl: string | undefined;
  stats(): RelayStats;
  /** What `/readyz` reports: running, the loop turning, MongoDB answering, passes succeeding. */
  readiness(): Promise<Record<string, ReadinessCheck>>;
  /** Idempotent: finishes the batch in flight, marks what was acknowledged, releases the lease,
   * closes what it created. */
  stop(): Promise<void>;
  /** Settles when the relay stopped (resolves) or failed (rejects). */
  readonly done: Promise<void>;
}

export interface RelayParts {
  readonly catalog: Catalog;
  /** Decodes payloads to check them (needs only the registry's schemas by id). */
  readonly codec: EventCodec;
  readonly config: RelayConfig;
  readonly logger: Logger;
  readonly source: OutboxSource;
  readonly publisher: EventPublisher;
  readonly leases: LeaseStore;
  /** Lease owner id; default `<clientId>@<host>/<pid>/<random>`. */
  readonly owner?: string;
  /** Closes what the caller created for this relay (clients), after the relay stopped. */
  readonly closeOwned?: () => Promise<void>;
}

/** Aggregates whose last published version the relay remembers (beyond: their next entry is
 * decided by its predecessor's fate, read in the same document read). */
const REMEMBERED_AGGREGATES = 200_000;

/**
 * The relay: one active instance (lease with fencing token) publishes unrelayed outbox entries in
 * per-aggregate version order. Scans are the only path that publishes; the change streams of the
 * aggregate collections only wake the scan up, so a lost resume token can never skip an entry.
 */
export class Relay implements RelayHandle {
  readonly owner: string;
  readonly metrics: Registry;
  opsUrl: string | undefined;
  readonly done: Promise<void>;
  private lastTurnAt = Date.now();
  private failedPasses = 0;
  /** The code of the last pass's failure (cleared by a pass that succeeds): readiness names it. */
  private lastFailureCode: string | undefined;
  private backlogCache: { at: number; value: Promise<Backlog> } | undefined;
  private readonly lifecycle: Lifecycle;
  private readonly lease: LeaseKeeper;
  private readonly feed: RelayFeed;
  private scanRequested = true;
  private nextScanAt = 0;
  private wake: (() => void) | undefined;
  private stopping = false;
  private loop: Promise<void> | undefined;
  private markChain: Promise<void> = Promise.resolve();
  private readonly lastPublished = new PublishedVersions(REMEMBERED_AGGREGATES);
  private held = new Set<string>();
  private readonly log: Logger;
  private readonly counts = { published: 0, failedEntries: 0, scans: 0, errors: 0 };
  private readonly m: RelayMetrics;

  constructor(private readonly parts: RelayParts) {
    this.owner =
      parts.owner ??
      `${parts.config.clientId}@${hostname()}/${process.pid}/${randomUUID().slice(0, 8)}`;
    this.log = parts.logger.child({ component: 'relay', owner: this.owner });
    this.lifecycle = new Lifecycle({
      log: this.log,
      graceMs: parts.config.stopGraceMs,
      closeTimeoutMs: parts.config.stopForceMs,
      drain: async () => {
        await this.loop;
        await this.flushMarks().catch((e: unknown) => {
          this.log.warn(
            { err: e },
            'marks not written while draining: those entries will be published again',
          );
        });
      },
      close: async () => {
        try {
          if (this.lifecycle.state === 'draining' && this.lease.current)
            await this.feed.saveToken(true);
        } finally {
          await this.closeAll();
        }
      },
    });
    this.done = this.lifecycle.done;
    this.m = new RelayMetrics({
      backlog: () => this.cachedBacklog(),
      activeToken: () => (this.lease.valid ? this.lease.current?.token : undefined),
      owner: this.owner,
    });
    this.metrics = this.m.registry;
    this.lease = new LeaseKeeper({
      leases: parts.leases,
      owner: this.owner,
      config: parts.config,
      log: this.log,
      active: this.m.active,
      onAcquired: () => {
        // Another relay may have published since we last held it: forget what we knew.
        this.lastPublished.clear();
        this.scanRequested = true;
      },
      onLost: () => {
        void this.feed.close();
        this.wake?.();
      },
    });
    this.feed = new RelayFeed({
      source: parts.source,
      config: parts.config,
      log: this.log,
      registers: [this.metrics],
      requestScan: () => {
        this.scanRequested = true;
        this.wake?.();
      },
    });
  }

  get state(): RelayState {
    return this.lifecycle.state;
  }

  get role(): RelayRole {
    return this.lease.valid ? 'active' : 'standby';
  }

  stats(): RelayStats {
    return { ...this.counts, leaseToken: this.lease.current?.token };
  }

  async readiness(): Promise<Record<string, ReadinessCheck>> {
    const { config } = this.parts;
    // A pass may legitimately take a broker timeout plus a drain; longer than that is stuck.
    const stuckAfter =
      config.sendTimeoutMs +
      config.stopGraceMs +
      2 * Math.max(config.scanIntervalMs, config.standbyPollMs);
    const since = Date.now() - this.lastTurnAt;
    const mongo = await this.cachedBacklog().then(
      (b) => ({ ok: true, detail: `${b.pending} pending` }),
      (e: unknown) => ({ ok: false, detail: e instanceof Error ? e.message : String(e) }),
    );
    return {
      state: { ok: this.state === 'running', detail: `${this.state}, ${this.role}` },
      loop: { ok: since < stuckAfter, detail: `last turn ${since} ms ago` },
      mongodb: mongo,
      passes: {
        ok: this.failedPasses < 3,
        detail: `${this.failedPasses} failed in a row`,
      },
      // One failed publish is enough: a broker that refuses it is down, not slow (the producer has
      // already retried within the send timeout). Idle, the relay does not talk to the broker.
      broker:
        this.lastFailureCode === 'broker_unavailable'
          ? { ok: false, detail: 'the last pass could not publish: broker unavailable' }
          : { ok: true },
      changeStream: this.feed.check(this.role === 'active'),
    };
  }

  /** One backlog query per second at most, however many gauges and probes ask. */
  private cachedBacklog(): Promise<Backlog> {
    const now = Date.now();
    if (!this.backlogCache || now - this.backlogCache.at > 1000) {
      this.backlogCache = { at: now, value: this.parts.source.backlog() };
      this.backlogCache.value.catch(() => undefined);
    }
    return this.backlogCache.value;
  }

  /** Creates topics and indexes, then runs until stopped. Resolves once running. */
  async start(): Promise<void> {
    try {
      await this.parts.publisher.ensureTopics(this.parts.catalog.topics());
      await this.parts.source.ensureIndexes();
    } catch (e) {
      await this.lifecycle.fail(e);
      throw e;
    }
    if (this.lifecycle.ended) return; // stopped meanwhile
    this.lifecycle.running();
    this.loop = this.run().then(
      () => undefined,
      (e: unknown) => this.lifecycle.fail(e),
    );
  }

  /** Ends a relay whose start-up wait (relay/start.ts) failed, before `start()`: `stopped` for a
   * `stopped` error (a signal), else `failed`; closes what it owns either way. */
  async abort(e: unknown): Promise<void> {
    if (isPipelineError(e, 'stopped')) await this.stop();
    else await this.lifecycle.fail(e);
  }

  /** Idempotent (ops/lifecycle.ts): drains for `stopGraceMs`, saves the token, closes anyway. */
  stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    return this.lifecycle.stop();
  }

  private async closeAll(): Promise<void> {
    await this.feed.close();
    await this.lease.release();
    await this.parts.publisher.close().catch(() => undefined);
    await this.parts.closeOwned?.().catch((e: unknown) => {
      this.log.warn({ err: e }, 'closing clients failed');
    });
  }

  // ---- main loop -------------------------------------------------------------------------------

  private async run(): Promise<void> {
    const { config } = this.parts;
    let failures = 0;
    while (!this.stopping) {
      this.lastTurnAt = Date.now();
      if (this.role === 'standby') {
        this.lease.lose('lease expired before it could be renewed');
        if (!(await this.lease.acquire())) {
          await this.sleep(config.standbyPollMs);
          continue;
        }
      }
      await this.feed.turn();
      await this.feed.saveToken(false);
      if (this.scanRequested || Date.now() >= this.nextScanAt) {
        this.scanRequested = false;
        try {
          await this.scanPass();
          this.failedPasses = 0;
          this.lastFailureCode = undefined;
          failures = 0;
          this.nextScanAt = Date.now() + config.scanIntervalMs;
        } catch (e) {
          await this.flushMarks().catch(() => undefined);
          if (isPipelineError(e, 'lease_lost')) {
            this.lease.lose(e.message);
            continue;
          }
          this.counts.errors++;
          this.failedPasses++;
          this.lastFailureCode = isPipelineError(e) ? e.code : 'unexpected';
          this.m.errors.inc({ reason: this.lastFailureCode });
          const backoff = backoffDelay(++failures, retryBackoff(config));
          this.log.warn({ err: e, retryInMs: backoff }, 'scan pass failed; retrying');
          this.scanRequested = true;
          await this.sleep(backoff);
        }
        continue;
      }
      await this.sleep(Math.max(10, Math.min(this.nextScanAt, this.feed.dueAt()) - Date.now()));
    }
  }

  /** Waits `ms`, or less when woken (change, lease lost, stop). */
  private sleep(ms: number): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      const wake = this.wake;
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wake = () => {
        wake?.();
        done();
      };
    }).then(() => {
      this.wake = undefined;
    });
  }

  // ---- scan and publish ------------------------------------------------------------------------

  /** Publishes every publishable pending entry, page by page (next page read while this one sends). */
  private async scanPass(): Promise<void> {
    const { source, config } = this.parts;
    const lease = this.lease.require();
    this.counts.scans++;
    this.held = new Set(await source.heldAggregates());
    this.m.held.set(this.held.size);
    let next = source.scanPending(undefined, config.batchSize);
    // More than a page's worth moved in one pass: a backlog, which the scan drains without the
    // feed's help (held entries, which stay, do not count).
    let moved = 0;
    let backlog = false;
    for (;;) {
      const page = await next;
      if (page.next) {
        next = source.scanPending(page.next, config.batchSize);
        next.catch(() => undefined);
      }
      if (page.entries.length > 0) moved += await this.processPage(page.entries, lease);
      if (!backlog && moved > config.batchSize) {
        backlog = true;
        await this.feed.drainStarted();
      }
      if (!page.next || this.stopping) break;
    }
    await this.flushMarks();
    // After a backlog the next pass follows at once and finds what came during this one; a pass
    // that moves a page or less means the backlog is gone, and the feed reopens.
    if (backlog) this.scanRequested = true;
    else this.feed.drained();
  }

  /** Publishes and marks what it can of one page; returns how many entries it moved. */
  private async processPage(page: readonly ScannedEntry[], lease: Lease): Promise<number> {
    const { catalog, codec } = this.parts;
    const checked = await Promise.all(page.map((s) => checkEntry(s, catalog, codec)));
    const plan = planPage({
      entries: checked.map((c, i) => ({
        checked: c,
        documentHeld: (page[i] as ScannedEntry).held,
      })),
      lastPublished: this.lastPublished,
      held: this.held,
    });
    for (const key of plan.held) this.held.add(key);
    if (plan.fail.length > 0) await this.failAll(plan.fail, lease);

    if (plan.publish.length > 0) {
      this.lease.require();
      const records = plan.publish.map((e) => e.record);
      const timer = this.m.batch.startTimer();
      await this.parts.publisher.publish(records);
      timer();
      this.lastPublished.remember(plan.versions);
      this.counts.published += records.length;
      this.m.recordPublished(records);
    }
    const refs = [...plan.publish.map((e) => e.ref), ...plan.remark];
    if (refs.length > 0) this.enqueueMark(refs, lease);
    if (plan.waiting) {
      // An earlier version is still pending behind a held one: look again soon.
      this.nextScanAt = Math.min(this.nextScanAt, Date.now() + 250);
    }
    return refs.length;
  }

  /** Marks a page's bad entries failed: one flush of the marks before them and one lease check
   * for the page (each mark is fenced on its document as well), then one write per entry. */
  private async failAll(bad: readonly BadEntry[], lease: Lease): Promise<void> {
    await this.flushMarks();
    await this.lease.confirm(lease, 'lease taken over before marking a failed entry');
    for (const b of bad) await this.fail(b, lease);
  }

  private async fail(bad: BadEntry, lease: Lease): Promise<void> {
    await this.parts.source.markFailed(
      bad.ref,
      { code: bad.code, reason: bad.reason, at: new Date() },
      lease.token,
    );
    this.held.add(aggregateKey(bad.ref));
    this.m.held.set(this.held.size);
    this.counts.failedEntries++;
    this.m.failed.inc({ code: bad.code });
    this.log.warn(
      {
        eventId: bad.ref.eventId,
        aggregateType: bad.ref.aggregateType,
        aggregateId: bad.ref.aggregateId,
        code: bad.code,
        reason: bad.reason,
      },
      'outbox entry failed: aggregate held',
    );
  }

  /** Marks run in order behind the publishes; the first failure stops the chain until flushed. */
  private enqueueMark(refs: readonly EntryRef[], lease: Lease): void {
    this.markChain = this.markChain.then(async () => {
      await this.lease.confirm(lease, 'lease taken over: not marking');
      if ((await this.parts.source.markRelayed(refs, lease.token)) > 0) this.feed.marked();
    });
    this.markChain.catch(() => undefined);
  }

  private async flushMarks(): Promise<void> {
    const chain = this.markChain;
    this.markChain = Promise.resolve();
    await chain;
  }
}

export type { OutgoingRecord };
