/** Prometheus metrics of one sink, in a registry of its own (two sinks in a process do not clash). */
import { Counter, Histogram, Registry } from 'prom-client';
import type { OutcomeCounts } from './apply.js';

export class SinkMetrics {
  readonly registry = new Registry();
  readonly events = new Counter({
    name: 'cqrs_sync_sink_events_total',
    help: 'Events by outcome: applied, duplicate, stale, held, dead_lettered, released',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly retries = new Counter({
    name: 'cqrs_sync_sink_retries_total',
    help: 'Batches retried after a retriable failure',
    registers: [this.registry],
  });
  readonly batchSeconds = new Histogram({
    name: 'cqrs_sync_sink_batch_seconds',
    help: 'Time to apply one batch (one MySQL transaction)',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });

  record(c: OutcomeCounts): void {
    for (const [k, v] of Object.entries(c)) if (v > 0) this.events.inc({ outcome: k }, v);
  }
}
