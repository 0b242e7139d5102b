import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { backoffDelay, retryBackoff } from '../ops/backoff.js';
import type { ReadinessCheck } from '../ops/http.js';
import { Lifecycle, type ProcessState } from '../ops/lifecycle.js';
import type { Catalog } from '../schemas/catalog.js';
import type { EventCodec } from '../schemas/codec.js';
import { PipelineError, isPipelineError } from '../schemas/errors.js';
import type { RelayConfig } from './config.js';
import { checkEntry, type BadEntry, type ReadyEntry } from './entry.js';
import { RelayFeed } from './feed.js';
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

/** Aggregates whose last published version the relay remembers (beyond: one lookup each). */
const REMEMBERED_AGGREGATES = 200_000;

/**
 * The relay: one active instance (lease with fencing token) publishes unrelayed outbox entries in
 * per-aggregate version order. Scans are the only path that publishes; the change streams of the
 * aggregate collections only wake the scan up, so a lost resume token can never skip an entry.
 */
export class Relay implements RelayHandle {
  readonly owner: string;
  readonly metrics = new Registry();
  opsUrl: string | undefined;
  readonly done: Promise<void>;
  private lastTurnAt = Date.now();
  private failedPasses = 0;
  /** The code of the last pass's failure (cleared by a pass that succeeds): readiness names it. */
  private lastFailureCode: string | undefined;
  private backlogCache: { at: number; value: Promise<Backlog> } | undefined;
  private readonly lifecycle: Lifecycle;
  private lease: Lease | undefined;
  private leaseValidUntil = 0;
  private renewTimer: NodeJS.Timeout | undefined;
  private readonly feed: RelayFeed;
  private scanRequested = true;
  private nextScanAt = 0;
  private wake: (() => void) | undefined;
  private stopping = false;
  private loop: Promise<void> | undefined;
  private markChain: Promise<void> = Promise.resolve();
  private readonly lastPublished = new Map<string, number>();
  private held = new Set<string>();
  private readonly log: Logger;
  private readonly counts = { published: 0, failedEntries: 0, scans: 0, errors: 0 };
  private readonly m: {
    published: Counter;
    failed: Counter;
    errors: Counter;
    batch: Histogram;
    held: Gauge;
    active: Gauge;
  };

  constructor(private readonly parts: RelayParts) {
    this.owner =
      parts.owner ??
      `${parts.config.clientId}@${hostname()}/${process.pid}/${randomUUID().slice(0, 8)}`;
    this.log = parts.logger.child({ component: 'relay', owner: this.owner });
    this.lifecycle = new Lifecycle({
      log: this.log,
      graceMs: parts.config.stopGraceMs,
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
          if (this.lifecycle.state === 'draining' && this.lease) await this.feed.saveToken(true);
        } finally {
          await this.closeAll();
        }
      },
    });
    this.done = this.lifecycle.done;
    const registers = [this.metrics];
    this.m = {
      published: new Counter({
        name: 'cqrs_sync_relay_published_total',
        help: 'Outbox entries published and acknowledged by the broker',
        labelNames: ['topic'],
        registers,
      }),
      failed: new Counter({
        name: 'cqrs_sync_relay_failed_entries_total',
        help: 'Outbox entries marked failed (their aggregate is held)',
        labelNames: ['code'],
        registers,
      }),
      errors: new Counter({
        name: 'cqrs_sync_relay_errors_total',
        help: 'Scan passes that failed and were retried with backoff, by reason (error code)',
        labelNames: ['reason'],
        registers,
      }),
      batch: new Histogram({
        name: 'cqrs_sync_relay_publish_batch_seconds',
        help: 'Time from send to broker ack of one batch',
        registers,
      }),
      held: new Gauge({
        name: 'cqrs_sync_relay_held_aggregates',
        help: 'Aggregates held behind a failed entry',
        registers,
      }),
      active: new Gauge({
        name: 'cqrs_sync_relay_active',
        help: '1 while this relay holds the lease',
        registers,
      }),
    };
    this.feed = new RelayFeed({
      source: parts.source,
      config: parts.config,
      log: this.log,
      registers,
      requestScan: () => {
        this.scanRequested = true;
        this.wake?.();
      },
    });
    // Read at scrape time: the outbox is the truth, a counter kept here could drift from it.
    const relay = {
      cachedBacklog: () => this.cachedBacklog(),
      role: () => this.role,
      lease: () => this.lease,
      owner: this.owner,
    };
    new Gauge({
      name: 'cqrs_sync_relay_outbox_backlog',
      help: 'Outbox entries not yet relayed (status pending)',
      registers,
      async collect() {
        const b = await relay.cachedBacklog().catch(() => undefined);
        if (b) this.set(b.pending);
      },
    });
    new Gauge({
      name: 'cqrs_sync_relay_outbox_oldest_pending_age_seconds',
      help: 'Age of the oldest unrelayed outbox entry (0 when none): how far behind the relay is',
      registers,
      async collect() {
        const b = await relay.cachedBacklog().catch(() => undefined);
        if (b) this.set(b.oldest ? Math.max(0, Date.now() - b.oldest.getTime()) / 1000 : 0);
      },
    });
    new Gauge({
      name: 'cqrs_sync_relay_lease_fencing_token',
      help: 'Fencing token of the lease this relay holds (0 when standby); grows with every takeover',
      registers,
      collect() {
        this.set(relay.role() === 'active' ? (relay.lease()?.token ?? 0) : 0);
      },
    });
    new Gauge({
      name: 'cqrs_sync_relay_lease_holder',
      help: '1 when the relay with this owner id holds the lease, 0 when it is standby',
      labelNames: ['owner'],
      registers,
      collect() {
        this.set({ owner: relay.owner }, relay.role() === 'active' ? 1 : 0);
      },
    });
    collectDefaultMetrics({ register: this.metrics });
  }

  get state(): RelayState {
    return this.lifecycle.state;
  }

  get role(): RelayRole {
    return this.lease && Date.now() < this.leaseValidUntil ? 'active' : 'standby';
  }

  stats(): RelayStats {
    return { ...this.counts, leaseToken: this.lease?.token };
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
    clearInterval(this.renewTimer);
    this.renewTimer = undefined;
    await this.feed.close();
    const lease = this.lease;
    this.dropLease();
    if (lease) await this.parts.leases.release(lease).catch(() => undefined);
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
        if (this.lease) this.loseLease('lease expired before it could be renewed');
        if (!(await this.acquire())) {
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
            this.loseLease(e.message);
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

  // ---- lease -----------------------------------------------------------------------------------

  private async acquire(): Promise<boolean> {
    const { config } = this.parts;
    let lease: Lease | undefined;
    const asked = Date.now();
    try {
      lease = await this.parts.leases.tryAcquire(this.owner, config.leaseTtlMs);
    } catch (e) {
      this.log.warn({ err: e }, 'lease store unavailable');
      return false;
    }
    if (!lease) return false;
    this.lease = lease;
    this.leaseValidUntil = asked + config.leaseTtlMs - config.leaseRenewMs / 2;
    // Another relay may have published since we last held it: forget what we knew.
    this.lastPublished.clear();
    this.scanRequested = true;
    this.m.active.set(1);
    this.log.info({ token: lease.token }, 'lease acquired: active');
    clearInterval(this.renewTimer);
    this.renewTimer = setInterval(() => void this.renew(), config.leaseRenewMs);
    this.renewTimer.unref();
    return true;
  }

  private async renew(): Promise<void> {
    const lease = this.lease;
    if (!lease) return;
    const asked = Date.now();
    try {
      if (await this.parts.leases.renew(lease, this.parts.config.leaseTtlMs)) {
        if (this.lease === lease) {
          this.leaseValidUntil =
            asked + this.parts.config.leaseTtlMs - this.parts.config.leaseRenewMs / 2;
        }
      } else if (this.lease === lease) {
        this.loseLease('another relay took the lease over');
      }
    } catch (e) {
      this.log.warn({ err: e }, 'lease renewal failed');
    }
  }

  private loseLease(why: string): void {
    if (!this.lease) return;
    this.log.warn({ token: this.lease.token, why }, 'lease lost: standby');
    this.dropLease();
    void this.feed.close();
    this.wake?.();
  }

  private dropLease(): void {
    this.lease = undefined;
    this.leaseValidUntil = 0;
    clearInterval(this.renewTimer);
    this.renewTimer = undefined;
    this.m.active.set(0);
  }

  private requireLease(): Lease {
    const lease = this.lease;
    if (!lease || Date.now() >= this.leaseValidUntil) {
      throw new PipelineError('lease_lost', 'the relay no longer holds the lease', {
        retriable: true,
      });
    }
    return lease;
  }

  // ---- scan and publish ------------------------------------------------------------------------

  /** Publishes every publishable pending entry, page by page (next page read while this one sends). */
  private async scanPass(): Promise<void> {
    const { source, config } = this.parts;
    const lease = this.requireLease();
    this.counts.scans++;
    this.held = new Set(await source.heldAggregates());
    this.m.held.set(this.held.size);
    let next = source.scanPending(undefined, config.batchSize);
    for (;;) {
      const page = await next;
      if (page.next) {
        next = source.scanPending(page.next, config.batchSize);
        next.catch(() => undefined);
      }
      if (page.entries.length > 0) await this.processPage(page.entries, lease);
      if (!page.next || this.stopping) break;
    }
    await this.flushMarks();
  }

  private async processPage(page: readonly ScannedEntry[], lease: Lease): Promise<void> {
    const { catalog, codec } = this.parts;
    const checked = await Promise.all(page.map((s) => checkEntry(s, catalog, codec)));
    const tentative = new Map<string, number>();
    const blocked = new Set<string>();
    const toPublish: ReadyEntry[] = [];
    const remark: EntryRef[] = [];

    for (const [i, item] of checked.entries()) {
      const ref = item.ok ? item.entry.ref : item.bad.ref;
      const key = aggregateKey(ref);
      if ((page[i] as ScannedEntry).held) this.held.add(key);
      if (this.held.has(key) || blocked.has(key)) continue;
      if (!item.ok) {
        await this.fail(item.bad, lease);
        continue;
      }
      const e = item.entry;
      const known = tentative.get(key) ?? this.lastPublished.get(key);
      if (known !== undefined && e.version <= known) {
        remark.push(e.ref); // published already; its mark was lost
        continue;
      }
      const contiguous = known !== undefined && e.version === known + 1;
      if (!contiguous) {
        const verdict = this.predecessorVerdict(e);
        if (verdict === 'wait') {
          blocked.add(key);
          continue;
        }
        if (verdict === 'held') {
          this.held.add(key);
          continue;
        }
        if (verdict === 'gap') {
          await this.fail(
            {
              ref: e.ref,
              code: 'version_gap',
              reason: `version ${e.version - 1} of ${e.aggregateType} ${e.aggregateId} is missing (relayed up to ${known ?? 'an earlier version'}); release to publish anyway`,
            },
            lease,
          );
          continue;
        }
      }
      tentative.set(key, e.version);
      toPublish.push(e);
    }

    if (toPublish.length > 0) {
      this.requireLease();
      const timer = this.m.batch.startTimer();
      await this.parts.publisher.publish(toPublish.map((e) => e.record));
      timer();
      for (const [key, version] of tentative) this.remember(key, version);
      this.counts.published += toPublish.length;
      const perTopic = new Map<string, number>();
      for (const e of toPublish)
        perTopic.set(e.record.topic, (perTopic.get(e.record.topic) ?? 0) + 1);
      for (const [topic, n] of perTopic) this.m.published.inc({ topic }, n);
    }
    const refs = [...toPublish.map((e) => e.ref), ...remark];
    if (refs.length > 0) this.enqueueMark(refs, lease);
    if (blocked.size > 0) {
      // An earlier version is still pending behind a held one: look again soon.
      this.nextScanAt = Math.min(this.nextScanAt, Date.now() + 250);
    }
  }

  /**
   * Version v of an aggregate whose v-1 this relay did not publish, decided on the same document
   * read: publish if v-1 was relayed or skipped; hold if it failed; wait while it is pending; a
   * missing v-1 is a gap (held) unless an operator released the entry.
   */
  private predecessorVerdict(e: ReadyEntry): 'ok' | 'wait' | 'held' | 'gap' {
    switch (e.previous) {
      case 'relayed':
      case 'skipped':
        return 'ok';
      case 'failed':
        return 'held';
      case 'pending':
        return 'wait';
      case 'absent':
        return e.released ? 'ok' : 'gap';
    }
  }

  private async fail(bad: BadEntry, lease: Lease): Promise<void> {
    await this.flushMarks();
    if (!(await this.parts.leases.isCurrent(lease))) {
      throw new PipelineError('lease_lost', 'lease taken over before marking a failed entry', {
        retriable: true,
      });
    }
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

  private remember(key: string, version: number): void {
    this.lastPublished.delete(key);
    this.lastPublished.set(key, version);
    if (this.lastPublished.size > REMEMBERED_AGGREGATES) {
      const oldest = this.lastPublished.keys().next().value;
      if (oldest !== undefined) this.lastPublished.delete(oldest);
    }
  }

  /** Marks run in order behind the publishes; the first failure stops the chain until flushed. */
  private enqueueMark(refs: readonly EntryRef[], lease: Lease): void {
    this.markChain = this.markChain.then(async () => {
      if (!(await this.parts.leases.isCurrent(lease))) {
        throw new PipelineError('lease_lost', 'lease taken over: not marking', { retriable: true });
      }
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

/** `Type/id`: how the relay names an aggregate (ids are unique per type only). */
function aggregateKey(ref: Pick<EntryRef, 'aggregateType' | 'aggregateId'>): string {
  return `${ref.aggregateType}/${ref.aggregateId}`;
}

export type { OutgoingRecord };
