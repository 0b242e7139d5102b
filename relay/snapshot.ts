import type { Db } from 'mongodb';
import type { Logger } from 'pino';
import { v7 as uuidv7 } from 'uuid';
import { snapshotEventType, type Catalog } from '../schemas/catalog.js';
import type { EventCodec } from '../schemas/codec.js';
import { toHeaders } from '../schemas/envelope.js';
import { isPipelineError } from '../schemas/errors.js';
import { aggregateCollectionName, type AggregateDocument } from '../write/outbox.js';
import type { CheckpointStore, EventPublisher, OutgoingRecord } from './ports.js';

export interface SnapshotOptions {
  readonly catalog: Catalog;
  /** Encodes the snapshot events: call `registerAll()` first. */
  readonly codec: EventCodec;
  readonly db: Db;
  readonly publisher: EventPublisher;
  readonly checkpoints: CheckpointStore;
  readonly logger: Logger;
  readonly batchSize: number;
  /** State collection per aggregate type; default the write side's naming. */
  readonly collections?: Readonly<Record<string, string>>;
  /** Names the checkpoint (one per outbox). */
  readonly name: string;
  /** Start again from the beginning instead of the checkpoint. */
  readonly restart?: boolean;
}

interface Checkpoint {
  lastId: string | null;
  published: number;
  done: boolean;
}

export interface SnapshotResult {
  readonly published: number;
  readonly skipped: number;
  readonly byType: Readonly<Record<string, number>>;
}

/**
 * The initial load: publishes the current state of every existing aggregate as `<Type>Snapshotted`
 * (version = the aggregate's current version), in `_id` order, with a checkpoint after every
 * acknowledged batch, so a crashed run resumes where it stopped. Deleted aggregates are left out.
 */
export async function runSnapshot(options: SnapshotOptions): Promise<SnapshotResult> {
  const log = options.logger.child({ component: 'relay', task: 'snapshot' });
  let published = 0;
  let skipped = 0;
  const byType: Record<string, number> = {};
  for (const aggregate of options.catalog.aggregates) {
    const key = `snapshot:${options.name}:${aggregate.type}`;
    if (options.restart) await options.checkpoints.delete(key);
    const cp = ((await options.checkpoints.get(key)) as Checkpoint | undefined) ?? {
      lastId: null,
      published: 0,
      done: false,
    };
    if (cp.done) {
      log.info({ aggregateType: aggregate.type }, 'snapshot already done (use --restart to redo)');
      continue;
    }
    const eventType = snapshotEventType(aggregate.type);
    const schemaId = options.codec.schemaIdOf(eventType);
    const collection = options.db.collection<AggregateDocument>(
      options.collections?.[aggregate.type] ?? aggregateCollectionName(aggregate.type),
    );
    let count = 0;
    for (;;) {
      const filter = {
        deleted: { $ne: true },
        ...(cp.lastId === null ? {} : { _id: { $gt: cp.lastId } }),
      };
      const docs = await collection
        .find(filter, { projection: { state: 1, version: 1 } })
        .sort({ _id: 1 })
        .limit(options.batchSize)
        .toArray();
      if (docs.length === 0) break;
      const records: OutgoingRecord[] = [];
      for (const doc of docs) {
        if (doc.state === null) continue;
        try {
          const value = options.codec.encode(eventType, { event: {}, state: doc.state });
          const eventId = uuidv7();
          records.push({
            topic: aggregate.topic,
            key: doc._id,
            value,
            headers: toHeaders({
              eventId,
              eventType,
              aggregateType: aggregate.type,
              aggregateId: doc._id,
              version: doc.version,
              schemaId,
              occurredAt: new Date(),
            }),
          });
        } catch (e) {
          if (!isPipelineError(e) || e.retriable) throw e;
          skipped++;
          log.warn(
            { aggregateId: doc._id, err: e },
            'state does not match its schema: not snapshotted',
          );
        }
      }
      await options.publisher.publish(records);
      const last = docs[docs.length - 1];
      cp.lastId = last ? last._id : cp.lastId;
      cp.published += records.length;
      count += records.length;
      await options.checkpoints.set(key, cp);
    }
    cp.done = true;
    await options.checkpoints.set(key, cp);
    published += count;
    byType[aggregate.type] = cp.published;
    log.info({ aggregateType: aggregate.type, published: cp.published }, 'snapshot done');
  }
  return { published, skipped, byType };
}
