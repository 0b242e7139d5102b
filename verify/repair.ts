/**
 * `cqrs-sync verify --repair`: heals drift through the pipeline, not around it. For each drifted
 * aggregate it publishes a `<Type>Snapshotted` event with the aggregate's current state (read again
 * from MongoDB), on the aggregate's own topic and key, so the sink's order, dedupe and parking still
 * hold; for keys with no aggregate, the same event with a null state, which deletes their rows. The
 * `cqrs-repair: 1` header lets the sink apply it at the version it already has (sink/planner.ts);
 * a version behind the sink's is still stale, so a repair never undoes a newer event.
 */
import type { Kafka } from 'kafkajs';
import { pino, type Logger } from 'pino';
import { v7 as uuidv7 } from 'uuid';
import { KafkaPublisher } from '../relay/kafka-publisher.js';
import type { OutgoingRecord } from '../relay/ports.js';
import { snapshotEventType, type Catalog } from '../schemas/catalog.js';
import { EventCodec } from '../schemas/codec.js';
import { REPAIR_HEADER, toHeaders } from '../schemas/envelope.js';
import { isPipelineError } from '../schemas/errors.js';
import { ConfluentRegistry } from '../schemas/registry.js';
import type { TypeReport } from './report.js';

export interface RepairDoc {
  readonly _id: string;
  readonly version: number;
  readonly deleted: boolean;
  readonly state: Record<string, unknown> | null;
}

export interface RepairDeps {
  readonly catalog: Catalog;
  readonly kafka: Kafka;
  readonly schemaRegistryUrl: string;
  readonly logger: Logger | undefined;
  /** The aggregates' documents now (any order; absent ones are gone). */
  readonly docs: (type: string, ids: readonly string[]) => Promise<readonly RepairDoc[]>;
}

/** Publishes repair events for the reports' drift; counts them in `repaired` / `notRepaired`. */
export async function repairDrift(
  deps: RepairDeps,
  reports: readonly TypeReport[],
  batchSize: number,
  onBatch?: (type: string, done: number, total: number) => void,
): Promise<void> {
  const logger = deps.logger ?? pino({ level: 'silent' });
  const codec = new EventCodec(deps.catalog, new ConfluentRegistry(deps.schemaRegistryUrl));
  await codec.registerAll();
  const publisher = new KafkaPublisher(deps.kafka, {
    topicPartitions: 1,
    topicReplicationFactor: -1,
    minCompactionLagMs: 0,
    sendTimeoutMs: 30_000,
    logger,
  });
  try {
    for (const report of reports) {
      const type = report.aggregateType;
      const { topic } = deps.catalog.aggregate(type);
      const eventType = snapshotEventType(type);
      const schemaId = codec.schemaIdOf(eventType);
      let done = 0;
      for (let i = 0; i < report.drift.length; i += batchSize) {
        const part = report.drift.slice(i, i + batchSize);
        const now = new Map(
          (
            await deps.docs(
              type,
              part.map((d) => d.aggregateId),
            )
          ).map((d) => [d._id, d]),
        );
        const records: OutgoingRecord[] = [];
        const classes: (typeof part)[number]['class'][] = [];
        for (const d of part) {
          const doc = now.get(d.aggregateId);
          const skip = (reason: string): void => {
            report.notRepaired.push({ aggregateId: d.aggregateId, reason });
          };
          if (d.class === 'ahead') {
            skip(
              'MySQL is ahead of MongoDB: a repair at an older version would be stale (a restored MongoDB? replay or fix by hand)',
            );
            continue;
          }
          if (d.class === 'orphan' && doc) {
            skip('has an aggregate in MongoDB now');
            continue;
          }
          if (d.class !== 'orphan' && !doc) {
            skip('gone from MongoDB since it was verified');
            continue;
          }
          const state = !doc || doc.deleted ? null : doc.state;
          // An orphan's delete must not be stale: at the sink's version, or 1 without one.
          const version = doc ? doc.version : Math.max(1, d.mysqlVersion ?? 0);
          try {
            const value = codec.encode(eventType, { event: {}, state });
            records.push({
              topic,
              key: d.aggregateId,
              value,
              headers: {
                ...toHeaders({
                  eventId: uuidv7(),
                  eventType,
                  aggregateType: type,
                  aggregateId: d.aggregateId,
                  version,
                  schemaId,
                  occurredAt: new Date(),
                }),
                [REPAIR_HEADER]: '1',
              },
            });
            classes.push(d.class);
          } catch (e) {
            if (!isPipelineError(e) || e.retriable) throw e;
            skip(`its state does not match its schema: ${e.message}`);
          }
        }
        await publisher.publish(records);
        for (const c of classes) report.repaired[c]++;
        done += part.length;
        onBatch?.(type, done, report.drift.length);
      }
      logger.info(
        { aggregateType: type, repaired: report.repaired, notRepaired: report.notRepaired.length },
        'repair events published',
      );
    }
  } finally {
    await publisher.close();
  }
}
