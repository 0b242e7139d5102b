/**
 * The demo's projections, written with the sink's public projection API only: three declarative
 * ones (customers, orders, order_lines) and one general projection for the denormalised
 * `order_summaries` that the queries use (fed by both Order and Customer events).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CustomerState, OrderLineState, OrderState } from '../domain/definitions.js';
import {
  loadMigrations,
  type MigrationSet,
  childTableProjection,
  defineProjection,
  tableProjection,
  type Projection,
} from '../../index.js';

export const customers = tableProjection({
  aggregateType: 'Customer',
  table: 'customers',
  columns: { name: 'state.name', email: 'state.email' },
});

export const orders = tableProjection({
  aggregateType: 'Order',
  table: 'orders',
  columns: {
    customer_id: 'state.customerId',
    status: 'state.status',
    total_cents: 'state.totalCents',
  },
});

export const orderLines = childTableProjection({
  aggregateType: 'Order',
  table: 'order_lines',
  parentKey: 'order_id',
  items: 'state.lines',
  columns: {
    line_id: 'item.lineId',
    sku: 'item.sku',
    quantity: 'item.quantity',
    unit_price_cents: 'item.unitPriceCents',
  },
});

/** Runs after `customers` (projections run in list order), so it reads the customer's name as of
 * this batch. */
export const orderSummaries = defineProjection({
  name: 'order_summaries',
  handles: ['Order', 'Customer'],
  tables: [
    {
      name: 'order_summaries',
      columns: [
        'order_id',
        'customer_id',
        'customer_name',
        'line_count',
        'total_cents',
        'status',
        'version',
      ],
    },
    { name: 'customers', columns: ['id', 'name'] },
  ],
  owns: [{ aggregateType: 'Order', table: 'order_summaries', key: 'order_id' }],
  apply: (e, { sql, table }) => {
    const summaries = table('order_summaries');
    const id = e.metadata.aggregateId;
    if (e.metadata.aggregateType === 'Customer') {
      const name = e.state ? (e.state as unknown as CustomerState).name : null;
      return sql`UPDATE ${summaries} SET customer_name = ${name} WHERE customer_id = ${id}`;
    }
    if (!e.state) return sql`DELETE FROM ${summaries} WHERE order_id = ${id}`;
    const o = e.state as unknown as OrderState;
    const lines: OrderLineState[] = o.lines;
    return sql`INSERT INTO ${summaries} (order_id, customer_id, customer_name, line_count, total_cents, status, version)
      VALUES (${id}, ${o.customerId}, (SELECT name FROM ${table('customers')} WHERE id = ${o.customerId}),
              ${lines.length}, ${o.totalCents}, ${o.status}, ${e.metadata.version})
      ON DUPLICATE KEY UPDATE customer_id = VALUES(customer_id), customer_name = VALUES(customer_name),
        line_count = VALUES(line_count), total_cents = VALUES(total_cents), status = VALUES(status),
        version = VALUES(version)`;
  },
});

export const demoProjections: readonly Projection[] = [
  customers,
  orders,
  orderLines,
  orderSummaries,
];

export const MIGRATIONS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'migrations');

export async function demoMigrations(): Promise<MigrationSet> {
  return { scope: 'demo-read-model', migrations: await loadMigrations(MIGRATIONS_DIR) };
}
