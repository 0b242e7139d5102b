/**
 * The query side: every read the web app serves comes from MySQL (the read model and the sink's
 * bookkeeping tables), never from MongoDB, so reads keep working while MongoDB is down. Every value
 * reaches SQL as a placeholder parameter.
 */
import mysql from 'mysql2/promise';
import { SINK_TABLES } from '../../sink/index.js';

export interface CustomerRow {
  readonly id: string;
  readonly name: string;
  readonly email: string;
  readonly version: number;
}

export interface OrderLineRow {
  readonly lineId: string;
  readonly sku: string;
  readonly quantity: number;
  readonly unitPriceCents: number;
}

export interface OrderRow {
  readonly id: string;
  readonly customerId: string;
  readonly customerName: string | null;
  readonly status: string;
  readonly totalCents: number;
  readonly version: number;
  readonly lines: readonly OrderLineRow[];
}

export interface AppliedEvent {
  readonly eventId: string;
  readonly appliedAt: number;
}

export interface HeldEvent {
  readonly id: number;
  readonly kind: string;
  readonly aggregateType: string;
  readonly aggregateId: string;
  readonly version: number;
  readonly eventId: string;
  readonly eventType: string;
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly errorCode: string | null;
  readonly errorMessage: string | null;
  readonly attempts: number;
  readonly heldAt: number;
}

export interface SinkBookkeeping {
  readonly deadLetters: number;
  readonly held: number;
  readonly parked: number;
  readonly applied: number;
  /** Next offset per `topic:partition`, as stored by the sink in MySQL. */
  readonly offsets: ReadonlyMap<string, bigint>;
}

/** What `tamperCustomer` changed. */
export interface TamperResult {
  readonly aggregateType: 'Customer';
  readonly aggregateId: string;
  readonly version: number;
  readonly column: 'name';
  readonly before: string;
  readonly after: string;
}

/** The value a tampered row gets: never one the demo's forms produce by chance. */
export const TAMPERED_NAME = 'tampered by hand';

type Row = Record<string, unknown>;
const num = (v: unknown): number => Number(v ?? 0);
const text = (v: unknown): string => {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  return Buffer.isBuffer(v) ? v.toString('utf8') : '';
};
const textOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : text(v));

export class ReadModel {
  readonly pool: mysql.Pool;

  constructor(
    url: string,
    private readonly group: string,
  ) {
    this.pool = mysql.createPool({
      uri: url,
      connectionLimit: 4,
      connectTimeout: 3000,
      supportBigNumbers: true,
      bigNumberStrings: true,
      enableKeepAlive: true,
    });
    // The sink writes its timestamps in UTC sessions; read them the same way.
    this.pool.pool.on('connection', (conn) => {
      conn.query("SET time_zone = '+00:00'");
    });
  }

  private async rows(sql: string, params: unknown[] = []): Promise<Row[]> {
    const [rows] = await this.pool.query(sql, params);
    return rows as Row[];
  }

  async customers(limit: number): Promise<CustomerRow[]> {
    const rows = await this.rows(
      'SELECT id, name, email, version FROM customers ORDER BY id DESC LIMIT ?',
      [limit],
    );
    return rows.map((r) => ({
      id: text(r.id),
      name: text(r.name),
      email: text(r.email),
      version: num(r.version),
    }));
  }

  async orders(limit: number): Promise<OrderRow[]> {
    const rows = await this.rows(
      `SELECT order_id, customer_id, customer_name, status, total_cents, version
         FROM order_summaries ORDER BY order_id DESC LIMIT ?`,
      [limit],
    );
    const ids = rows.map((r) => text(r.order_id));
    const lines = new Map<string, OrderLineRow[]>();
    if (ids.length > 0) {
      const lineRows = await this.rows(
        `SELECT order_id, line_id, sku, quantity, unit_price_cents FROM order_lines
          WHERE order_id IN (?) ORDER BY order_id, line_id`,
        [ids],
      );
      for (const l of lineRows) {
        const list = lines.get(text(l.order_id)) ?? [];
        list.push({
          lineId: text(l.line_id),
          sku: text(l.sku),
          quantity: num(l.quantity),
          unitPriceCents: num(l.unit_price_cents),
        });
        lines.set(text(l.order_id), list);
      }
    }
    return rows.map((r) => ({
      id: text(r.order_id),
      customerId: text(r.customer_id),
      customerName: textOrNull(r.customer_name),
      status: text(r.status),
      totalCents: num(r.total_cents),
      version: num(r.version),
      lines: lines.get(text(r.order_id)) ?? [],
    }));
  }

  /** When the sink applied these events (its dedupe table), in ms since the epoch. */
  async applied(eventIds: readonly string[]): Promise<AppliedEvent[]> {
    if (eventIds.length === 0) return [];
    const rows = await this.rows(
      `SELECT event_id, ROUND(UNIX_TIMESTAMP(seen_at) * 1000) AS at FROM ${SINK_TABLES.events}
        WHERE event_id IN (?)`,
      [eventIds],
    );
    return rows.map((r) => ({ eventId: text(r.event_id), appliedAt: num(r.at) }));
  }

  /** Dead-lettered and parked events (the sink's held table), newest first. */
  async held(eventIds?: readonly string[], limit = 50): Promise<HeldEvent[]> {
    if (eventIds?.length === 0) return [];
    const where = eventIds ? 'WHERE event_id IN (?)' : "WHERE kind IN ('dead', 'parked')";
    const rows = await this.rows(
      `SELECT id, kind, aggregate_type, aggregate_id, version, event_id, event_type, topic,
              kpartition, koffset, error_code, error_message, attempts,
              ROUND(UNIX_TIMESTAMP(held_at) * 1000) AS held_at
         FROM ${SINK_TABLES.held} ${where} ORDER BY id DESC LIMIT ?`,
      eventIds ? [eventIds, limit] : [limit],
    );
    return rows.map((r) => ({
      id: num(r.id),
      kind: text(r.kind),
      aggregateType: text(r.aggregate_type),
      aggregateId: text(r.aggregate_id),
      version: num(r.version),
      eventId: text(r.event_id),
      eventType: text(r.event_type),
      topic: text(r.topic),
      partition: num(r.kpartition),
      offset: text(r.koffset),
      errorCode: textOrNull(r.error_code),
      errorMessage: textOrNull(r.error_message),
      attempts: num(r.attempts),
      heldAt: num(r.held_at),
    }));
  }

  async bookkeeping(): Promise<SinkBookkeeping> {
    const [held, parked, offsets] = await Promise.all([
      this.rows(`SELECT kind, COUNT(*) AS n FROM ${SINK_TABLES.held} GROUP BY kind`),
      this.rows(`SELECT COUNT(*) AS n FROM ${SINK_TABLES.aggregates} WHERE status = 'parked'`),
      this.rows(
        `SELECT topic, kpartition, next_offset FROM ${SINK_TABLES.offsets} WHERE consumer_group = ?`,
        [this.group],
      ),
    ]);
    const byKind = new Map(held.map((r) => [text(r.kind), num(r.n)]));
    const map = new Map<string, bigint>();
    let applied = 0n;
    for (const r of offsets) {
      const next = BigInt(text(r.next_offset));
      map.set(`${text(r.topic)}:${num(r.kpartition)}`, next);
      applied += next;
    }
    return {
      deadLetters: byKind.get('dead') ?? 0,
      held: [...byKind.values()].reduce((a, b) => a + b, 0),
      parked: num(parked[0]?.n),
      applied: Number(applied),
      offsets: map,
    };
  }

  /** Changes whenever the sink applies, holds or releases anything: the live-update trigger. */
  async watermark(): Promise<string> {
    const rows = await this.rows(
      `SELECT (SELECT COALESCE(SUM(next_offset), 0) FROM ${SINK_TABLES.offsets} WHERE consumer_group = ?) AS o,
              (SELECT COUNT(*) FROM ${SINK_TABLES.held}) AS h,
              (SELECT COUNT(*) FROM ${SINK_TABLES.aggregates} WHERE status <> 'ok') AS p`,
      [this.group],
    );
    const r = rows[0] ?? {};
    return `${text(r.o)}/${text(r.h)}/${text(r.p)}`;
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}

/**
 * Demo only: edits one customer row in the read model by hand (its name, at the same version), as
 * an operator's stray UPDATE would, so that `verify` has something to find. Goes around the sink on
 * purpose and touches the projection's table only, never the sink's bookkeeping. Undefined when no
 * customer row (other than one tampered already) exists.
 */
export async function tamperCustomer(pool: mysql.Pool): Promise<TamperResult | undefined> {
  const [picked] = await pool.query(
    'SELECT id, name, version FROM customers WHERE name <> ? ORDER BY RAND() LIMIT 1',
    [TAMPERED_NAME],
  );
  const row = (picked as Row[])[0];
  if (!row) return undefined;
  const id = text(row.id);
  const version = num(row.version);
  const [res] = await pool.query('UPDATE customers SET name = ? WHERE id = ? AND version = ?', [
    TAMPERED_NAME,
    id,
    version,
  ]);
  // The sink applied a newer event in between: nothing was changed; the caller may try again.
  if ((res as { affectedRows?: number }).affectedRows !== 1) return undefined;
  return {
    aggregateType: 'Customer',
    aggregateId: id,
    version,
    column: 'name',
    before: text(row.name),
    after: TAMPERED_NAME,
  };
}
