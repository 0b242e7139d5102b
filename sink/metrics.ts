/** Prometheus metrics of one sink, in a registry of its own (two sinks in a process do not clash). */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { OutcomeCounts } from './apply.js';

export class SinkMetrics {
  readonly registry = new Registry();
  readonly events = new Counter({
    name: 'cqrs_sync_sink_events_total',
    help: 'Events by outcome: applied, duplicate, stale, held, dead_lettered, released, dropped',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly retries = new Counter({
    name: 'cqrs_sync_sink_retries_total',
    help: 'Batches retried after a retriable failure',
    registers: [this.registry],
  });
  readonly batchSeconds = new Histogram({
    name: 'cqrs_sync_sink_apply_seconds',
    help: 'Time to apply one batch of events (one MySQL transaction, dedupe and version gate included)',
    buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly endToEnd = new Histogram({
    name: 'cqrs_sync_sink_end_to_end_seconds',
    help: "From the event's occurred-at (the command's commit) to its batch committed in MySQL",
    buckets: [0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [this.registry],
  });
  readonly lag = new Gauge({
    name: 'cqrs_sync_sink_consumer_lag',
    help: "Records in the partition after the sink's applied offset (broker high watermark minus next offset), as of the last batch",
    labelNames: ['topic', 'partition'] as const,
    registers: [this.registry],
  });
  readonly lastOffset = new Gauge({
    name: 'cqrs_sync_sink_last_applied_offset',
    help: 'Offset of the last record applied and committed to MySQL',
    labelNames: ['topic', 'partition'] as const,
    registers: [this.registry],
  });
  readonly parked: Gauge;
  readonly deadLetters: Gauge;
  readonly verifyDrift: Gauge<'aggregate_type' | 'class'>;
  readonly verifyRepaired: Gauge<'aggregate_type' | 'class'>;

  /**
   * Both are read from MySQL at scrape time: the sink's aggregates and held tables are the truth
   * (`status` and `dlq list` read the same rows), not a counter of this process's outcomes.
   */
  constructor(counts: BookkeepingCounts = {}) {
    this.parked = scrapedGauge(this.registry, {
      name: 'cqrs_sync_sink_parked_aggregates',
      help: 'Aggregates parked behind a dead-lettered event (waiting for re-drive)',
      read: counts.parked,
    });
    this.deadLetters = scrapedGauge(this.registry, {
      name: 'cqrs_sync_sink_dead_letters',
      help: 'Dead letters held in MySQL (the ones dlq list shows; drop or re-drive them)',
      read: counts.deadLetters,
    });
    // The verify CLI is short-lived and serves no /metrics: its runs are recorded in MySQL and
    // exposed here, as of the last run.
    const runs = verifyGauges(this.registry, counts.lastVerify);
    this.verifyDrift = runs.drift;
    this.verifyRepaired = runs.repaired;
    collectDefaultMetrics({ register: this.registry });
  }

  record(c: OutcomeCounts): void {
    for (const [k, v] of Object.entries(c)) if (v > 0) this.events.inc({ outcome: k }, v);
  }
}

/** Where the scrape-time gauges read their values; absent ones stay 0. */
export interface BookkeepingCounts {
  readonly parked?: () => Promise<number>;
  readonly deadLetters?: () => Promise<number>;
  /** The last `cqrs-sync verify` run (verify/runs.ts); undefined when none ran. */
  readonly lastVerify?: () => Promise<LastVerify | undefined>;
}

/** Per aggregate type, per class. */
export interface LastVerify {
  readonly finishedAt: Date;
  readonly drift: Readonly<Record<string, Readonly<Record<string, number>>>>;
  readonly repaired: Readonly<Record<string, Readonly<Record<string, number>>>>;
}

function verifyGauges(
  registry: Registry,
  read: (() => Promise<LastVerify | undefined>) | undefined,
): { drift: Gauge<'aggregate_type' | 'class'>; repaired: Gauge<'aggregate_type' | 'class'> } {
  // One read per scrape for all three: the first gauge collected reads, the others reuse it.
  let pending: Promise<LastVerify | undefined> | undefined;
  const last = (): Promise<LastVerify | undefined> => {
    pending ??= (read ? read() : Promise.resolve(undefined))
      .catch(() => undefined)
      .finally(() => {
        setImmediate(() => (pending = undefined));
      });
    return pending;
  };
  const labelled = (
    name: string,
    help: string,
    pick: (r: LastVerify) => LastVerify['drift'],
  ): Gauge<'aggregate_type' | 'class'> =>
    new Gauge({
      name,
      help,
      labelNames: ['aggregate_type', 'class'] as const,
      registers: [registry],
      async collect() {
        const r = await last();
        if (!r) return;
        this.reset();
        for (const [type, byClass] of Object.entries(pick(r)))
          for (const [cls, n] of Object.entries(byClass))
            this.set({ aggregate_type: type, class: cls }, n);
      },
    });
  new Gauge({
    name: 'cqrs_sync_sink_verify_last_run_timestamp_seconds',
    help: 'When the last cqrs-sync verify run finished (Unix time)',
    registers: [registry],
    async collect() {
      const r = await last();
      if (r) this.set(r.finishedAt.getTime() / 1000);
    },
  });
  return {
    drift: labelled(
      'cqrs_sync_sink_verify_drift_aggregates',
      'Aggregates the last cqrs-sync verify found drifted, by aggregate type and class (missing, behind, ahead, deleted_present, content, orphan)',
      (r) => r.drift,
    ),
    repaired: labelled(
      'cqrs_sync_sink_verify_repaired_aggregates',
      'Repair events the last cqrs-sync verify --repair published, by aggregate type and class',
      (r) => r.repaired,
    ),
  };
}

function scrapedGauge(
  registry: Registry,
  o: { name: string; help: string; read: (() => Promise<number>) | undefined },
): Gauge {
  const read = o.read;
  return new Gauge({
    name: o.name,
    help: o.help,
    registers: [registry],
    async collect() {
      // MySQL down: keep the last value rather than fail the whole scrape.
      const n = read ? await read().catch(() => undefined) : 0;
      if (n !== undefined) this.set(n);
    },
  });
}
