/**
 * The query side: every read the web app serves comes from MySQL (the read model, and the sink's
 * bookkeeping through `SinkAdmin`), never from MongoDB, so reads keep working while MongoDB is
 * down. Every value reaches SQL as a placeholder parameter.
 */
import mysql from 'mysql2/promise';
import {
  SinkAdmin,
  type AppliedEvent,
  type HeldSummary,
  type SinkCounts,
} from '../../sink/index.js';

export type { AppliedEvent };
/** A dead-lettered, parked or waiting event (the sink's held table). */
export type HeldEvent = HeldSummary;
export type SinkBookkeeping = SinkCounts;

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
  private readonly sink: SinkAdmin;

  constructor(url: string, group: string) {
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
    this.sink = new SinkAdmin({ connection: this.pool, group });
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
  applied(eventIds: readonly string[]): Promise<AppliedEvent[]> {
    return this.sink.appliedAt(eventIds);
  }

  /** Dead-lettered and parked events (the sink's held table), newest first. */
  held(eventIds?: readonly string[], limit = 50): Promise<HeldEvent[]> {
    return this.sink.heldEvents(eventIds, limit);
  }

  bookkeeping(): Promise<SinkBookkeeping> {
    return this.sink.counts();
  }

  /** Changes whenever the sink applies, holds or releases anything: the live-update trigger. */
  watermark(): Promise<string> {
    return this.sink.watermark();
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
