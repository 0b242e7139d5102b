/**
 * Helpers for the sink's tests and benchmark: a database of its own with the migrations applied and
 * the sink's least-privilege account granted on it, and Kafka records built like the relay builds
 * them (`EventCodec.encode` + `toHeaders`).
 */
import { randomUUID } from 'node:crypto';
import type { Kafka, Producer } from 'kafkajs';
import mysql from 'mysql2/promise';
import type { Catalog } from '../schemas/catalog.js';
import type { EventCodec } from '../schemas/codec.js';
import { toHeaders } from '../schemas/envelope.js';
import { shopProjections } from '../test/support/shop-read-model.js';
import { runMigrations, SINK_MIGRATIONS, type MigrationSet } from './migrations.js';
import { defineProjection, type Projection } from './projection.js';
import { createTopicsAndWait } from '../ops/topics.js';

export function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

export interface TestDatabase {
  readonly name: string;
  /** DDL-capable, on this database. */
  readonly adminUrl: string;
  /** Least privilege, on this database. */
  readonly sinkUrl: string;
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  drop(): Promise<void>;
}

export async function createTestDatabase(
  adminUrl: string,
  sinkUrl: string,
  name: string,
  sets: readonly MigrationSet[],
): Promise<TestDatabase> {
  const root = await mysql.createConnection(adminUrl);
  const sink = await mysql.createConnection(sinkUrl);
  try {
    const [who] = await sink.query('SELECT CURRENT_USER() AS u');
    const account = (who as { u: string }[])[0]?.u ?? '';
    const at = account.lastIndexOf('@');
    await root.query(`CREATE DATABASE \`${name}\``);
    await root.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON \`${name}\`.* TO ?@?`, [
      account.slice(0, at),
      account.slice(at + 1),
    ]);
  } finally {
    await sink.end();
    await root.end();
  }
  const dbAdminUrl = withDatabase(adminUrl, name);
  const migrator = await mysql.createConnection(dbAdminUrl);
  try {
    await runMigrations(migrator, [SINK_MIGRATIONS, ...sets]);
  } finally {
    await migrator.end();
  }
  // A pool: it reconnects after a server restart (the outage test).
  const conn = mysql.createPool({ uri: dbAdminUrl, connectionLimit: 2 });
  return {
    name,
    adminUrl: dbAdminUrl,
    sinkUrl: withDatabase(sinkUrl, name),
    query: async <T>(sql: string, params: unknown[] = []) => {
      const [rows] = await conn.query(sql, params);
      return rows as T[];
    },
    drop: async () => {
      await conn.query(`DROP DATABASE \`${name}\``);
      await conn.end();
    },
  };
}

export interface EventSpec {
  readonly aggregateId: string;
  readonly version: number;
  readonly eventType: string;
  readonly payload: Record<string, unknown>;
  readonly state: Record<string, unknown> | null;
  readonly eventId?: string;
}

export interface ProducedRecord {
  readonly topic: string;
  readonly key: string;
  readonly value: Buffer;
  readonly headers: Record<string, string>;
}

export function eventRecord(codec: EventCodec, catalog: Catalog, s: EventSpec): ProducedRecord {
  const ev = catalog.event(s.eventType);
  const value = codec.encode(s.eventType, { event: s.payload, state: s.state });
  return {
    topic: ev.topic,
    key: s.aggregateId,
    value,
    headers: toHeaders({
      eventId: s.eventId ?? randomUUID(),
      eventType: s.eventType,
      aggregateType: ev.aggregateType,
      aggregateId: s.aggregateId,
      version: s.version,
      schemaId: codec.schemaIdOf(s.eventType),
      occurredAt: new Date(),
    }),
  };
}

/** A test catalog's topics, created with `partitions` partitions each. */
export async function createTopics(
  kafka: Kafka,
  topics: readonly string[],
  partitions: number,
): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await createTopicsAndWait(
      admin,
      topics.map((topic) => ({ topic, numPartitions: partitions })),
    );
  } finally {
    await admin.disconnect();
  }
}

export async function produce(
  producer: Producer,
  records: readonly ProducedRecord[],
): Promise<void> {
  const byTopic = new Map<string, ProducedRecord[]>();
  for (const r of records) {
    let list = byTopic.get(r.topic);
    if (!list) byTopic.set(r.topic, (list = []));
    list.push(r);
  }
  await producer.sendBatch({
    acks: -1,
    topicMessages: [...byTopic].map(([topic, list]) => ({
      topic,
      messages: list.map((r) => ({ key: r.key, value: r.value, headers: r.headers })),
    })),
  });
}

/** The test shop's events (test/support/shop.ts) with the state they carry (the write side's job,
 * done by hand). */
export class ShopHistory {
  private readonly customers = new Map<string, { v: number; s: Record<string, unknown> | null }>();
  private readonly orders = new Map<
    string,
    {
      v: number;
      s: {
        id: string;
        customerId: string;
        status: string;
        lines: Record<string, unknown>[];
        totalCents: number;
      } | null;
    }
  >();

  private next(map: Map<string, { v: number; s: unknown }>, id: string): number {
    return (map.get(id)?.v ?? 0) + 1;
  }

  customerRegistered(id: string, name: string, email: string): EventSpec {
    const version = this.next(this.customers, id);
    const state = { id, name, email };
    this.customers.set(id, { v: version, s: state });
    return {
      aggregateId: id,
      version,
      eventType: 'CustomerRegistered',
      payload: { name, email },
      state,
    };
  }

  customerRenamed(id: string, name: string): EventSpec {
    const c = this.customers.get(id);
    const version = this.next(this.customers, id);
    const state = { ...(c?.s ?? {}), name };
    this.customers.set(id, { v: version, s: state });
    return { aggregateId: id, version, eventType: 'CustomerRenamed', payload: { name }, state };
  }

  customerEmailChangedLike(id: string, email: string): EventSpec {
    const c = this.customers.get(id);
    const version = this.next(this.customers, id);
    const state = { ...(c?.s ?? {}), email };
    this.customers.set(id, { v: version, s: state });
    return {
      aggregateId: id,
      version,
      eventType: 'CustomerEmailChanged',
      payload: { email },
      state,
    };
  }

  customerDeleted(id: string): EventSpec {
    const version = this.next(this.customers, id);
    this.customers.set(id, { v: version, s: null });
    return { aggregateId: id, version, eventType: 'CustomerDeleted', payload: {}, state: null };
  }

  orderCreated(id: string, customerId: string): EventSpec {
    const version = this.next(this.orders, id);
    const state = { id, customerId, status: 'open', lines: [], totalCents: 0 };
    this.orders.set(id, { v: version, s: state });
    return {
      aggregateId: id,
      version,
      eventType: 'OrderCreated',
      payload: { customerId },
      state: { ...state },
    };
  }

  orderLineAdded(
    id: string,
    lineId: string,
    sku: string,
    quantity: number,
    unitPriceCents: number,
  ): EventSpec {
    const o = this.orders.get(id)?.s;
    if (!o) throw new Error(`no order ${id}`);
    const version = this.next(this.orders, id);
    const line = { lineId, sku, quantity, unitPriceCents };
    const state = {
      ...o,
      lines: [...o.lines, line],
      totalCents: o.totalCents + quantity * unitPriceCents,
    };
    this.orders.set(id, { v: version, s: state });
    return { aggregateId: id, version, eventType: 'OrderLineAdded', payload: line, state };
  }

  orderLineRemoved(id: string, lineId: string): EventSpec {
    const o = this.orders.get(id)?.s;
    if (!o) throw new Error(`no order ${id}`);
    const version = this.next(this.orders, id);
    const lines = o.lines.filter((l) => l.lineId !== lineId);
    const totalCents = lines.reduce(
      (t, l) => t + (l.quantity as number) * (l.unitPriceCents as number),
      0,
    );
    const state = { ...o, lines, totalCents };
    this.orders.set(id, { v: version, s: state });
    return { aggregateId: id, version, eventType: 'OrderLineRemoved', payload: { lineId }, state };
  }

  orderPlaced(id: string): EventSpec {
    const o = this.orders.get(id)?.s;
    if (!o) throw new Error(`no order ${id}`);
    const version = this.next(this.orders, id);
    const state = { ...o, status: 'placed' };
    this.orders.set(id, { v: version, s: state });
    return { aggregateId: id, version, eventType: 'OrderPlaced', payload: {}, state };
  }

  orderDeleted(id: string): EventSpec {
    const version = this.next(this.orders, id);
    this.orders.set(id, { v: version, s: null });
    return { aggregateId: id, version, eventType: 'OrderDeleted', payload: {}, state: null };
  }

  /** The rows the shop's read model must hold after every event was applied once, in order. */
  expected(): { customers: unknown[]; orders: unknown[]; lines: unknown[] } {
    const customers = [...this.customers]
      .filter(([, c]) => c.s)
      .map(([id, c]) => ({ id, name: c.s?.name, email: c.s?.email, version: c.v }))
      .sort((a, b) => a.id.localeCompare(b.id));
    const orders = [...this.orders]
      .filter(([, o]) => o.s)
      .map(([id, o]) => ({
        id,
        customer_id: o.s?.customerId,
        status: o.s?.status,
        total_cents: o.s?.totalCents,
        version: o.v,
      }))
      .sort((a, b) => a.id.localeCompare(b.id));
    const lines = [...this.orders]
      .flatMap(([id, o]) =>
        (o.s?.lines ?? []).map((l) => ({
          order_id: id,
          line_id: l.lineId,
          sku: l.sku,
          quantity: l.quantity,
          unit_price_cents: l.unitPriceCents,
        })),
      )
      .sort((a, b) =>
        `${a.order_id}/${a.line_id as string}`.localeCompare(
          `${b.order_id}/${b.line_id as string}`,
        ),
      );
    return { customers, orders, lines };
  }
}

/** The shop's tables as plain sorted rows (BIGINTs as numbers), to compare with
 * `ShopHistory.expected()`. */
export async function shopTables(
  db: TestDatabase,
): Promise<{ customers: unknown[]; orders: unknown[]; lines: unknown[] }> {
  const customers = await db.query(
    'SELECT id, name, email, CAST(version AS SIGNED) AS version FROM customers ORDER BY id',
  );
  const orders = await db.query(
    'SELECT id, customer_id, status, CAST(total_cents AS DOUBLE) AS total_cents, CAST(version AS DOUBLE) AS version FROM orders ORDER BY id',
  );
  const lines = await db.query(
    'SELECT order_id, line_id, sku, quantity, CAST(unit_price_cents AS DOUBLE) AS unit_price_cents FROM order_lines ORDER BY order_id, line_id',
  );
  return {
    customers: customers.map((r) => ({ ...r, version: Number(r.version) })),
    orders,
    lines,
  };
}

/** Exactly-once witness: one row per applied event (no key, so a second apply adds a second row). */
export const appliedLog = defineProjection({
  name: 'applied_log',
  handles: ['Customer', 'Order'],
  tables: [{ name: 'applied_log', columns: ['event_id', 'aggregate_id', 'version'] }],
  apply: (e, { sql, table }) =>
    sql`INSERT INTO ${table('applied_log')} (event_id, aggregate_id, version) VALUES (${e.metadata.eventId}, ${e.metadata.aggregateId}, ${e.metadata.version})`,
});

export const APPLIED_LOG_MIGRATIONS: MigrationSet = {
  scope: 'test-applied-log',
  migrations: [
    {
      version: 1,
      name: 'applied log',
      sql: 'CREATE TABLE applied_log (n BIGINT AUTO_INCREMENT PRIMARY KEY, event_id VARCHAR(64) NOT NULL, aggregate_id VARCHAR(64) NOT NULL, version BIGINT NOT NULL)',
    },
  ],
};

export const testProjections: readonly Projection[] = [...shopProjections, appliedLog];

/** A mixed workload of the shop: customers renamed and deleted, orders with lines. */
export function shopWorkload(h: ShopHistory, n: number, tag: string): EventSpec[] {
  const out: EventSpec[] = [];
  for (let i = 0; i < n; i++) {
    const c = `${tag}-c${i}`;
    const o = `${tag}-o${i}`;
    out.push(h.customerRegistered(c, `Customer ${i}`, `c${i}@example.com`));
    out.push(h.orderCreated(o, c));
    out.push(h.orderLineAdded(o, 'l1', `sku-${i}`, 1 + (i % 3), 100 + i));
    out.push(h.orderLineAdded(o, 'l2', `sku-${i + 1}`, 2, 250));
    out.push(h.customerRenamed(c, `Customer ${i} renamed`));
    if (i % 4 === 0) out.push(h.orderLineRemoved(o, 'l1'));
    out.push(h.orderPlaced(o));
    if (i % 7 === 0) out.push(h.customerDeleted(c));
    if (i % 11 === 0) out.push(h.orderDeleted(o));
  }
  return out;
}

/** Every applied event once: [rows, distinct event ids]. */
export async function appliedOnce(db: TestDatabase): Promise<{ rows: number; distinct: number }> {
  const [r] = await db.query<{ rows: number; distinct: number }>(
    'SELECT COUNT(*) AS `rows`, COUNT(DISTINCT event_id) AS `distinct` FROM applied_log',
  );
  return { rows: Number(r?.rows), distinct: Number(r?.distinct) };
}
