/** Prometheus metrics of one relay, in a registry of its own (two relays in a process do not clash).
 * The change feed's own metrics are registered by relay/feed.ts into the same registry. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Backlog, OutgoingRecord } from './ports.js';

/** What the scrape-time gauges read. */
export interface RelayReadings {
  /** The backlog (cached by the relay: one query per second at most). */
  readonly backlog: () => Promise<Backlog>;
  /** The fencing token while this relay holds the lease; undefined while standby. */
  readonly activeToken: () => number | undefined;
  readonly owner: string;
}

export class RelayMetrics {
  readonly registry = new Registry();
  readonly published = new Counter({
    name: 'cqrs_sync_relay_published_total',
    help: 'Outbox entries published and acknowledged by the broker',
    labelNames: ['topic'] as const,
    registers: [this.registry],
  });
  readonly failed = new Counter({
    name: 'cqrs_sync_relay_failed_entries_total',
    help: 'Outbox entries marked failed (their aggregate is held)',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  readonly errors = new Counter({
    name: 'cqrs_sync_relay_errors_total',
    help: 'Scan passes that failed and were retried with backoff, by reason (error code)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly batch = new Histogram({
    name: 'cqrs_sync_relay_publish_batch_seconds',
    help: 'Time from send to broker ack of one batch',
    registers: [this.registry],
  });
  readonly held = new Gauge({
    name: 'cqrs_sync_relay_held_aggregates',
    help: 'Aggregates held behind a failed entry',
    registers: [this.registry],
  });
  readonly active = new Gauge({
    name: 'cqrs_sync_relay_active',
    help: '1 while this relay holds the lease',
    registers: [this.registry],
  });

  constructor(read: RelayReadings) {
    const registers = [this.registry];
    // Read at scrape time: the outbox is the truth, a counter kept here could drift from it.
    new Gauge({
      name: 'cqrs_sync_relay_outbox_backlog',
      help: 'Outbox entries not yet relayed (status pending)',
      registers,
      async collect() {
        const b = await read.backlog().catch(() => undefined);
        if (b) this.set(b.pending);
      },
    });
    new Gauge({
      name: 'cqrs_sync_relay_outbox_oldest_pending_age_seconds',
      help: 'Age of the oldest unrelayed outbox entry (0 when none): how far behind the relay is',
      registers,
      async collect() {
        const b = await read.backlog().catch(() => undefined);
        if (b) this.set(b.oldest ? Math.max(0, Date.now() - b.oldest.getTime()) / 1000 : 0);
      },
    });
    new Gauge({
      name: 'cqrs_sync_relay_lease_fencing_token',
      help: 'Fencing token of the lease this relay holds (0 when standby); grows with every takeover',
      registers,
      collect() {
        this.set(read.activeToken() ?? 0);
      },
    });
    new Gauge({
      name: 'cqrs_sync_relay_lease_holder',
      help: '1 when the relay with this owner id holds the lease, 0 when it is standby',
      labelNames: ['owner'],
      registers,
      collect() {
        this.set({ owner: read.owner }, read.activeToken() !== undefined ? 1 : 0);
      },
    });
    collectDefaultMetrics({ register: this.registry });
  }

  /** One acknowledged batch: counted per topic. */
  recordPublished(records: readonly OutgoingRecord[]): void {
    const perTopic = new Map<string, number>();
    for (const r of records) perTopic.set(r.topic, (perTopic.get(r.topic) ?? 0) + 1);
    for (const [topic, n] of perTopic) this.published.inc({ topic }, n);
  }
}
