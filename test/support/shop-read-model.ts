/**
 * The read model of the library tests' shop (`shop.ts`): three declarative projections (customers,
 * orders, order_lines) and one general projection fed by both aggregate types, `order_summaries`,
 * with the tables they need.
 */
import type { MigrationSet } from '../../sink/migrations.js';
import {
  childTableProjection,
  defineProjection,
  tableProjection,
  type Projection,
} from '../../sink/projection.js';

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

interface OrderState {
  readonly customerId: string;
  readonly status: string;
  readonly lines: readonly unknown[];
  readonly totalCents: number;
}

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
      const name = e.state ? (e.state as { name: string }).name : null;
      return sql`UPDATE ${summaries} SET customer_name = ${name} WHERE customer_id = ${id}`;
    }
    if (!e.state) return sql`DELETE FROM ${summaries} WHERE order_id = ${id}`;
    const o = e.state as unknown as OrderState;
    return sql`INSERT INTO ${summaries} (order_id, customer_id, customer_name, line_count, total_cents, status, version)
      VALUES (${id}, ${o.customerId}, (SELECT name FROM ${table('customers')} WHERE id = ${o.customerId}),
              ${o.lines.length}, ${o.totalCents}, ${o.status}, ${e.metadata.version})
      ON DUPLICATE KEY UPDATE customer_id = VALUES(customer_id), customer_name = VALUES(customer_name),
        line_count = VALUES(line_count), total_cents = VALUES(total_cents), status = VALUES(status),
        version = VALUES(version)`;
  },
});

export const shopProjections: readonly Projection[] = [
  customers,
  orders,
  orderLines,
  orderSummaries,
];

// Ids compare exactly (utf8mb4_bin): under the servers' default collations, case- and
// accent-insensitive, the orders of customers "c-Ada" and "c-ada" would share one customer row.
const ID = 'VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL';

export const SHOP_MIGRATIONS: MigrationSet = {
  scope: 'test-shop-read-model',
  migrations: [
    {
      version: 1,
      name: 'shop read model',
      sql: [
        `CREATE TABLE customers (id ${ID} PRIMARY KEY, name VARCHAR(255) NOT NULL,
          email VARCHAR(255) NOT NULL, version BIGINT NOT NULL) ENGINE=InnoDB`,
        `CREATE TABLE orders (id ${ID} PRIMARY KEY, customer_id ${ID}, status VARCHAR(16) NOT NULL,
          total_cents BIGINT NOT NULL, version BIGINT NOT NULL, KEY by_customer (customer_id)) ENGINE=InnoDB`,
        `CREATE TABLE order_lines (order_id ${ID}, line_id ${ID}, sku VARCHAR(64) NOT NULL,
          quantity INT NOT NULL, unit_price_cents BIGINT NOT NULL, version BIGINT NOT NULL,
          PRIMARY KEY (order_id, line_id)) ENGINE=InnoDB`,
        `CREATE TABLE order_summaries (order_id ${ID} PRIMARY KEY, customer_id ${ID},
          customer_name VARCHAR(255) NULL, line_count INT NOT NULL, total_cents BIGINT NOT NULL,
          status VARCHAR(16) NOT NULL, version BIGINT NOT NULL, KEY by_customer (customer_id)) ENGINE=InnoDB`,
      ],
    },
  ],
};
