/**
 * Helpers for the relay's int tests (real broker, registry and MongoDB): a config with short timings,
 * a catalog with topics of its own, and a reader of everything on a topic.
 */
import { Kafka, logLevel } from 'kafkajs';
import type { Db, Document, ObjectId } from 'mongodb';
import { aggregateCollectionName } from '../write/outbox.js';
import { buildCatalog, type Catalog } from '../schemas/catalog.js';
import type { EventCodec } from '../schemas/codec.js';
import { HEADERS } from '../schemas/envelope.js';
import { shopAggregates } from '../test/support/shop.js';
import { checkRelayConfig, type RelayConfig } from './config.js';

export interface TestServerUrls {
  readonly kafkaBrokers: readonly string[];
  readonly schemaRegistryUrl: string;
  readonly mongodbUri: string;
}

/** Relay settings for tests: small batches, fast lease and retries. */
export function testRelayConfig(
  servers: TestServerUrls,
  database: string,
  overrides: Partial<RelayConfig> = {},
): RelayConfig {
  return checkRelayConfig({
    mongodbUri: servers.mongodbUri,
    kafkaBrokers: servers.kafkaBrokers,
    kafkaSasl: null,
    kafkaSsl: false,
    schemaRegistryUrl: servers.schemaRegistryUrl,
    database,
    name: 'outbox',
    clientId: 'relay-test',
    batchSize: 200,
    scanIntervalMs: 1000,
    leaseTtlMs: 3000,
    leaseRenewMs: 1000,
    standbyPollMs: 300,
    retryInitialMs: 100,
    retryMaxMs: 2000,
    retryFactor: 2,
    tokenSaveIntervalMs: 200,
    changeStreamTries: 3,
    changeStreamDeafMs: 15_000,
    stopGraceMs: 10_000,
    stopForceMs: 10_000,
    sendTimeoutMs: 10_000,
    topicPartitions: 3,
    topicReplicationFactor: -1,
    minCompactionLagMs: 0,
    aggregateCollections: {},
    logLevel: 'warn',
    startupTimeoutMs: 0,
    ...overrides,
  });
}

/** The test shop's catalog (test/support/shop.ts) with topics no other test uses: `<prefix>.customer`,
 * `<prefix>.order`. */
export function testCatalog(prefix: string): Catalog {
  return buildCatalog(shopAggregates, { topicPrefix: `${prefix}.` });
}

export interface ReadRecord {
  readonly topic: string;
  readonly partition: number;
  readonly key: string;
  readonly eventId: string;
  readonly eventType: string;
  readonly version: number;
  readonly value: Buffer;
}

/** Every record on the topics (from the beginning), once the topics hold `atLeast` records. */
export async function readTopics(
  brokers: readonly string[],
  topics: readonly string[],
  atLeast: number,
  timeoutMs = 60_000,
): Promise<ReadRecord[]> {
  const kafka = new Kafka({
    clientId: 'relay-test-reader',
    brokers: [...brokers],
    logLevel: logLevel.NOTHING,
  });
  const admin = kafka.admin();
  await admin.connect();
  const deadline = Date.now() + timeoutMs;
  let total = 0;
  try {
    for (;;) {
      total = 0;
      for (const t of topics) {
        const offsets = await admin.fetchTopicOffsets(t).catch(() => []);
        for (const o of offsets) total += Number(o.high);
      }
      if (total >= atLeast) break;
      if (Date.now() > deadline) {
        throw new Error(`timed out: ${total} of ${atLeast} records on ${topics.join(', ')}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    await admin.disconnect();
  }
  const consumer = kafka.consumer({ groupId: `reader-${Date.now()}-${Math.random()}` });
  const records: ReadRecord[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [...topics], fromBeginning: true });
    let resolve!: () => void;
    const all = new Promise<void>((r) => (resolve = r));
    await consumer.run({
      eachMessage: ({ topic, partition, message }) => {
        const h = (name: string): string => message.headers?.[name]?.toString() ?? '';
        records.push({
          topic,
          partition,
          key: message.key?.toString() ?? '',
          eventId: h(HEADERS.eventId),
          eventType: h(HEADERS.eventType),
          version: Number(h(HEADERS.version)),
          value: message.value ?? Buffer.alloc(0),
        });
        if (records.length >= total) resolve();
        return Promise.resolve();
      },
    });
    // Cleared once read: a pending timer would keep the test's worker alive after the run.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      all,
      new Promise((_, reject) => {
        timer = setTimeout(() => {
          reject(new Error(`read ${records.length} of ${total} records`));
        }, timeoutMs);
      }),
    ]).finally(() => {
      clearTimeout(timer);
    });
  } finally {
    await consumer.disconnect();
  }
  return records;
}

export interface OrderCheck {
  /** Records that repeat a version already seen for their key (allowed: at-least-once). */
  readonly duplicates: number;
  /** Keys where a version came before its predecessor. */
  readonly outOfOrder: string[];
  /** Versions per key, without repeats. */
  readonly versions: ReadonlyMap<string, number[]>;
}

/** Per key: every version arrives after its predecessor; repeats are counted. */
export function checkOrder(records: readonly ReadRecord[]): OrderCheck {
  const max = new Map<string, number>();
  const versions = new Map<string, number[]>();
  const outOfOrder = new Set<string>();
  let duplicates = 0;
  for (const r of records) {
    const seen = max.get(r.key) ?? 0;
    if (r.version <= seen) {
      duplicates++;
      continue;
    }
    if (r.version !== seen + 1) outOfOrder.add(r.key);
    max.set(r.key, r.version);
    let list = versions.get(r.key);
    if (!list) versions.set(r.key, (list = []));
    list.push(r.version);
  }
  return { duplicates, outOfOrder: [...outOfOrder], versions };
}

/** Valid outbox documents for customers `ids`, versions `from`..`to` (Registered, then Renamed). */
export function customerEntries(
  codec: EventCodec,
  ids: readonly string[],
  from: number,
  to: number,
): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const id of ids) {
    for (let v = from; v <= to; v++) {
      const type = v === 1 ? 'CustomerRegistered' : 'CustomerRenamed';
      const state = { id, name: `name-${v}`, email: `${id}@x.io` };
      const event = v === 1 ? { name: state.name, email: state.email } : { name: state.name };
      const eventId = `${id}-v${v}-${Math.random().toString(36).slice(2, 10)}`;
      out.push({
        eventId,
        aggregateType: 'Customer',
        aggregateId: id,
        version: v,
        type,
        occurredAt: new Date(),
        schemaId: codec.schemaIdOf(type),
        payload: codec.encode(type, { event, state }),
        commandId: null,
        traceparent: null,
        tracestate: null,
        status: 'pending',
        failure: null,
      });
    }
  }
  return out;
}

/** An outbox entry, whatever it is, and the aggregate document it goes into. */
export interface PlacedEntry {
  readonly aggregateType: string;
  readonly aggregateId: string;
  readonly entry: unknown;
}

/**
 * Appends outbox entries to their aggregates' documents as the write side would (`$push`, creating
 * a document at version 0 if there is none), without touching state or version: for relay tests
 * that need entries of their own making, malformed ones included. Entries go to
 * `collectionOf(aggregateType)`, default `aggregateCollectionName`; entries without a string
 * `aggregateId` go to the document `'?'` of `Customer` (place them with `appendPlaced` instead).
 */
export async function appendEntries(
  db: Db,
  entries: readonly Record<string, unknown>[],
  collectionOf: (aggregateType: string) => string = aggregateCollectionName,
): Promise<void> {
  await appendPlaced(
    db,
    entries.map((entry) => ({
      aggregateType: typeof entry.aggregateType === 'string' ? entry.aggregateType : 'Customer',
      aggregateId: typeof entry.aggregateId === 'string' ? entry.aggregateId : '?',
      entry,
    })),
    collectionOf,
  );
}

/** Appends each entry, in order, to the document it names (see `appendEntries`). */
export async function appendPlaced(
  db: Db,
  placed: readonly PlacedEntry[],
  collectionOf: (aggregateType: string) => string = aggregateCollectionName,
): Promise<void> {
  const groups = new Map<string, { type: string; id: string; list: unknown[] }>();
  for (const p of placed) {
    const k = `${p.aggregateType}\u0000${p.aggregateId}`;
    const g = groups.get(k) ?? { type: p.aggregateType, id: p.aggregateId, list: [] };
    g.list.push(p.entry);
    groups.set(k, g);
  }
  for (const g of groups.values()) {
    const maxVersion = Math.max(
      0,
      ...g.list.map((e) => {
        const v = (e as { version?: unknown } | null)?.version;
        return typeof v === 'number' && Number.isFinite(v) ? v : 0;
      }),
    );
    await db.collection(collectionOf(g.type)).updateOne(
      { _id: g.id as unknown as ObjectId },
      {
        $push: { outbox: { $each: g.list } } as Document,
        $max: { version: maxVersion },
        $setOnInsert: {
          aggregateType: g.type,
          state: null,
          deleted: false,
          updatedAt: new Date(),
          commands: [],
          relayedVersion: 0,
          relayedAt: null,
          relayFence: 0,
        },
      },
      { upsert: true },
    );
  }
}

/** The unrelayed entries of every document of `collections` (default the shop's), flat, with the
 * document they are in. */
export async function outboxEntries(
  db: Db,
  collections: readonly string[] = ['customer', 'order'],
): Promise<(Record<string, unknown> & { readonly documentId: unknown })[]> {
  const out: (Record<string, unknown> & { documentId: unknown })[] = [];
  for (const name of collections) {
    for (const doc of await db
      .collection(name)
      .find({}, { projection: { outbox: 1 } })
      .sort({ _id: 1 })
      .toArray()) {
      for (const e of Array.isArray(doc.outbox) ? (doc.outbox as unknown[]) : []) {
        out.push({
          ...(e !== null && typeof e === 'object' ? (e as Record<string, unknown>) : { value: e }),
          documentId: doc._id,
        });
      }
    }
  }
  return out;
}
