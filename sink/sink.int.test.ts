import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { waitFor } from '../test/support/servers.js';
import { demoTables, DemoHistory } from './testing.js';
import { sinkTestEnv, type SinkTestEnv } from './test-harness.js';
import type { SinkHandle } from './sink.js';

let t: SinkTestEnv;
let sink: SinkHandle;

beforeAll(async () => {
  t = await sinkTestEnv('apply', { logLevelName: process.env.SINK_TEST_LOG ?? 'warn' });
  sink = await t.start();
});
afterAll(async () => {
  await t.close();
});

const appliedCount = async (eventId: string): Promise<number> =>
  (
    await t.db.query<{ n: number }>('SELECT COUNT(*) AS n FROM applied_log WHERE event_id = ?', [
      eventId,
    ])
  )[0]?.n ?? -1;

describe('apply', () => {
  it('applies one event delivered three times once', async () => {
    const h = new DemoHistory();
    const e = h.customerRegistered('c-dup', 'Ada', 'ada@example.com');
    const spec = { ...e, eventId: '018f0000-0000-7000-8000-000000000001' };
    await t.send([spec, spec]);
    await t.send([spec]);
    await waitFor(
      'the customer',
      async () =>
        (await t.db.query('SELECT * FROM customers WHERE id = ?', ['c-dup'])).length === 1,
    );
    await waitFor('two duplicates counted', () => sink.counts.duplicate >= 2);
    expect(await appliedCount(spec.eventId)).toBe(1);
    expect(await t.db.query('SELECT name, email FROM customers WHERE id = ?', ['c-dup'])).toEqual([
      { name: 'Ada', email: 'ada@example.com' },
    ]);
  });

  it('ends with the in-order result when versions arrive out of order', async () => {
    const h = new DemoHistory();
    const evs = [
      h.customerRegistered('c-ooo', 'Bob', 'bob@example.com'),
      h.orderCreated('o-ooo', 'c-ooo'),
      h.orderLineAdded('o-ooo', 'l1', 'sku-1', 2, 150),
      h.orderLineAdded('o-ooo', 'l2', 'sku-2', 1, 1000),
      h.orderLineRemoved('o-ooo', 'l1'),
      h.orderPlaced('o-ooo'),
    ];
    const [c1, o1, o2, o3, o4, o5] = evs;
    if (!c1 || !o1 || !o2 || !o3 || !o4 || !o5) throw new Error('events');
    await t.send([c1, o1, o3, o5, o2]);
    await waitFor('held versions', () => sink.counts.held >= 2);
    await t.send([o4]);
    await waitFor('order placed', async () => {
      const rows = await t.db.query<{ status: string; version: string }>(
        'SELECT status, version FROM orders WHERE id = ?',
        ['o-ooo'],
      );
      return rows[0]?.status === 'placed' && Number(rows[0].version) === 5;
    });
    const tables = await demoTables(t.db);
    const expected = h.expected();
    expect(tables.orders.filter((o) => (o as { id: string }).id === 'o-ooo')).toEqual(
      expected.orders,
    );
    expect(tables.lines.filter((l) => (l as { order_id: string }).order_id === 'o-ooo')).toEqual(
      expected.lines,
    );
    expect(
      await t.db.query(
        'SELECT customer_name, line_count, CAST(total_cents AS DOUBLE) AS total, status FROM order_summaries WHERE order_id = ?',
        ['o-ooo'],
      ),
    ).toEqual([{ customer_name: 'Bob', line_count: 1, total: 1000, status: 'placed' }]);
    // every version applied exactly once, in order
    expect(
      await t.db.query('SELECT version FROM applied_log WHERE aggregate_id = ? ORDER BY n', [
        'o-ooo',
      ]),
    ).toEqual([1, 2, 3, 4, 5].map((version) => ({ version })));
  });

  it('keeps a deleted row deleted when a late update arrives, and lets a newer version re-create it', async () => {
    const h = new DemoHistory();
    const v1 = h.customerRegistered('c-del', 'Cy', 'cy@example.com');
    const v2 = h.customerRenamed('c-del', 'Cyd');
    const v3 = h.customerDeleted('c-del');
    await t.send([v1, v2, v3]);
    await waitFor('the delete', async () => {
      const a = await t.db.query<{ version: string }>(
        "SELECT version FROM cqrs_sink_aggregates WHERE aggregate_id = 'c-del'",
      );
      return Number(a[0]?.version) === 3;
    });
    const staleBefore = sink.counts.stale;
    // the late update: version 2 again, under another event id (a re-publish)
    await t.send([{ ...v2, eventId: '018f0000-0000-7000-8000-00000000dead' }]);
    await waitFor('the stale update', () => sink.counts.stale > staleBefore);
    expect(await t.db.query("SELECT * FROM customers WHERE id = 'c-del'")).toEqual([]);
    // an update of the deleted row at a newer version: the state it carries wins
    const v4 = {
      aggregateId: 'c-del',
      version: 4,
      eventType: 'CustomerRenamed',
      payload: { name: 'Cyd II' },
      state: { id: 'c-del', name: 'Cyd II', email: 'cy@example.com' },
    };
    await t.send([v4]);
    await waitFor(
      're-created',
      async () => (await t.db.query("SELECT name FROM customers WHERE id = 'c-del'")).length === 1,
    );
    expect(
      await t.db.query(
        "SELECT name, CAST(version AS SIGNED) AS v FROM customers WHERE id = 'c-del'",
      ),
    ).toEqual([{ name: 'Cyd II', v: 4 }]);
  });
});
