import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { KafkaMessage } from 'kafkajs';
import { uniqueName, waitFor } from '../test/support/servers.js';
import { DLT_HEADERS } from './dead-letter.js';
import { HEADERS } from '../schemas/envelope.js';
import { shopTables, ShopHistory } from './testing.js';
import { sinkTestEnv, type SinkTestEnv } from './test-harness.js';
import type { SinkHandle } from './sink.js';

let t: SinkTestEnv;
let sink: SinkHandle;

beforeAll(async () => {
  t = await sinkTestEnv('apply', { logLevelName: process.env.SINK_TEST_LOG ?? 'warn' });
  sink = await t.start({ SINK_GAP_TIMEOUT_MS: '4000' });
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
    const h = new ShopHistory();
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
    const h = new ShopHistory();
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
    const tables = await shopTables(t.db);
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
    const h = new ShopHistory();
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

async function readDlt(): Promise<KafkaMessage[]> {
  const got: KafkaMessage[] = [];
  const c = t.kafka.consumer({ groupId: uniqueName('dlt_reader') });
  await c.connect();
  await c.subscribe({ topic: t.dlt, fromBeginning: true });
  await c.run({
    eachMessage: ({ message }) => {
      got.push(message);
      return Promise.resolve();
    },
  });
  return new Proxy(got, {
    get(target, prop) {
      if (prop === 'stop') return () => c.disconnect();
      return Reflect.get(target, prop) as unknown;
    },
  });
}

describe('poison events, parking and re-drive', () => {
  it('dead-letters a poison event, parks its aggregate, lets others flow, and re-drives in order after a fix', async () => {
    const dlt = await readDlt();
    const h = new ShopHistory();
    const poison = h.customerRegistered('c-poison', 'x'.repeat(300), 'p@example.com');
    const after = h.customerRenamed('c-poison', 'Polly');
    const after2 = h.customerEmailChangedLike('c-poison', 'polly@example.com');
    const other = h.customerRegistered('c-fine', 'Fin', 'fin@example.com');
    // Sent apart: within one batch the declarative projections apply only an aggregate's latest
    // state, so a later valid version would supersede the poison before it reached MySQL.
    await t.send([poison, other]);
    await waitFor(
      'the other customer',
      async () => (await t.db.query("SELECT * FROM customers WHERE id = 'c-fine'")).length === 1,
    );
    await waitFor(
      'parked',
      async () =>
        (
          await t.db.query(
            "SELECT * FROM cqrs_sink_aggregates WHERE aggregate_id = 'c-poison' AND status = 'parked'",
          )
        ).length === 1,
    );
    await waitFor('the dead letter', () => dlt.length >= 1);
    await t.send([after, after2]);
    const letter = dlt[0];
    const header = (n: string): string | undefined => letter?.headers?.[n]?.toString();
    expect(header(DLT_HEADERS.errorKind)).toBe('constraint_violated');
    expect(header(DLT_HEADERS.topic)).toBe(`${t.prefix}customer`);
    expect(header(DLT_HEADERS.offset)).toMatch(/^\d+$/);
    expect(header(DLT_HEADERS.attempts)).toBe('1');
    expect(header(DLT_HEADERS.firstFailedAt)).toMatch(/^\d{4}-/);
    expect(header(HEADERS.aggregateId)).toBe('c-poison');
    await waitFor('later events held', async () => {
      const held = await t.db.query<{ kind: string; version: number }>(
        "SELECT kind, CAST(version AS SIGNED) AS version FROM cqrs_sink_held WHERE aggregate_id = 'c-poison' ORDER BY version",
      );
      return held.length === 3 && held;
    });
    expect(await t.db.query("SELECT * FROM customers WHERE id = 'c-poison'")).toEqual([]);
    expect(
      await t.db.query("SELECT status FROM cqrs_sink_aggregates WHERE aggregate_id = 'c-poison'"),
    ).toEqual([{ status: 'parked' }]);

    // the fix: a wider column; then re-drive applies v1, v2, v3 in order
    await t.db.query('ALTER TABLE customers MODIFY name VARCHAR(1000) NOT NULL');
    const result = await sink.applier.redrive('Customer/c-poison');
    expect(result.applied).toBe(3);
    expect(
      await t.db.query(
        "SELECT name, email, CAST(version AS SIGNED) AS v FROM customers WHERE id = 'c-poison'",
      ),
    ).toEqual([{ name: 'Polly', email: 'polly@example.com', v: 3 }]);
    expect(
      await t.db.query(
        "SELECT version FROM applied_log WHERE aggregate_id = 'c-poison' ORDER BY n",
      ),
    ).toEqual([1, 2, 3].map((version) => ({ version })));
    expect(
      await t.db.query("SELECT * FROM cqrs_sink_held WHERE aggregate_id = 'c-poison'"),
    ).toEqual([]);
    // and it flows again
    await t.send([h.customerRenamed('c-poison', 'Polly II')]);
    await waitFor(
      'flowing again',
      async () =>
        (await t.db.query("SELECT * FROM customers WHERE id = 'c-poison' AND name = 'Polly II'"))
          .length === 1,
    );
    await (dlt as unknown as { stop: () => Promise<void> }).stop();
  });

  it('dead-letters an undecodable record and a record with bad headers without stopping', async () => {
    const good = new ShopHistory().customerRegistered('c-after-garbage', 'G', 'g@example.com');
    await t.producer.send({
      topic: `${t.prefix}customer`,
      messages: [
        {
          key: 'c-garbage',
          value: Buffer.from('not avro'),
          headers: {
            [HEADERS.eventId]: 'e-garbage',
            [HEADERS.eventType]: 'CustomerRenamed',
            [HEADERS.aggregateType]: 'Customer',
            [HEADERS.aggregateId]: 'c-garbage',
            [HEADERS.version]: '1',
            [HEADERS.schemaId]: '1',
            [HEADERS.occurredAt]: new Date().toISOString(),
          },
        },
        { key: 'c-noheaders', value: Buffer.from('x') },
      ],
    });
    await t.send([good]);
    await waitFor(
      'the good one',
      async () =>
        (await t.db.query("SELECT * FROM customers WHERE id = 'c-after-garbage'")).length === 1,
    );
    const dead = await t.db.query<{ aggregate_id: string; error_code: string }>(
      "SELECT aggregate_id, error_code FROM cqrs_sink_held WHERE kind = 'dead' AND aggregate_id IN ('c-garbage', 'c-noheaders') ORDER BY aggregate_id",
    );
    expect(dead).toEqual([
      { aggregate_id: 'c-garbage', error_code: 'payload_invalid' },
      { aggregate_id: 'c-noheaders', error_code: 'envelope_invalid' },
    ]);
  });

  it('dead-letters events whose ids do not fit the bookkeeping tables, under stable short keys', async () => {
    const h = new ShopHistory();
    const longEvent = {
      ...h.customerRegistered('c-long-event', 'L', 'l@example.com'),
      eventId: `e-${'x'.repeat(300)}`,
    };
    const longAggregate = h.customerRegistered(`c-${'y'.repeat(300)}`, 'L', 'l@example.com');
    const good = h.customerRegistered('c-after-long', 'G', 'g@example.com');
    await t.send([longEvent, longAggregate, good]);
    await waitFor(
      'the good one',
      async () =>
        (await t.db.query("SELECT * FROM customers WHERE id = 'c-after-long'")).length === 1,
    );
    const dead = await t.db.query<{ aggregate_id: string; event_id: string; error_code: string }>(
      "SELECT aggregate_id, event_id, error_code FROM cqrs_sink_held WHERE kind = 'dead' AND error_code = 'envelope_invalid' AND error_message LIKE '%characters (at most%' ORDER BY id",
    );
    expect(dead).toEqual([
      {
        aggregate_id: 'c-long-event',
        event_id: expect.stringMatching(/^unstorable:[0-9a-f]{64}$/),
        error_code: 'envelope_invalid',
      },
      {
        aggregate_id: expect.stringMatching(/^unstorable:[0-9a-f]{64}$/),
        event_id: expect.any(String),
        error_code: 'envelope_invalid',
      },
    ]);
    expect(sink.state).toBe('running');
  });

  it('tells ids apart that differ only in case, accents or trailing spaces', async () => {
    // Ids are exact: a case- or accent-insensitive collation (MariaDB's and MySQL's defaults) would
    // take the second aggregate's v1 for stale and the second event for a duplicate, and drop them.
    const h = new ShopHistory();
    const ids = ['c-Case', 'c-case', 'c-cáse', 'c-case '];
    const evs = ids.map((id, i) => ({
      ...h.customerRegistered(id, `N${i}`, `n${i}@example.com`),
      eventId: ['E-Case', 'e-case', 'e-cáse', 'e-case '][i] ?? '',
    }));
    const dead = sink.counts.dead_lettered;
    await t.send(evs);
    await waitFor(
      'the events',
      async () =>
        (await t.db.query("SELECT 1 FROM applied_log WHERE aggregate_id LIKE 'c-%ase%'")).length >=
          3 && sink.counts.dead_lettered > dead,
    );
    const rows = await t.db.query<{ event_id: string; aggregate_id: string }>(
      "SELECT event_id, aggregate_id FROM applied_log WHERE aggregate_id LIKE 'c-%ase%' ORDER BY n",
    );
    // Several keys, so possibly several partitions: compare as sets. MySQL's collations ignore
    // trailing spaces, so the last one cannot be kept apart: it is dead-lettered, not merged.
    expect(rows.map((r) => `${r.event_id}|${r.aggregate_id}`).sort()).toEqual(
      evs
        .slice(0, 3)
        .map((e) => `${e.eventId}|${e.aggregateId}`)
        .sort(),
    );
    const aggregates = await t.db.query<{ aggregate_id: string; version: string }>(
      'SELECT aggregate_id, version FROM cqrs_sink_aggregates WHERE aggregate_id IN (?)',
      [ids],
    );
    expect(aggregates.map((a) => `${a.aggregate_id}@${a.version}`).sort()).toEqual(
      ['c-Case@1', 'c-case@1', 'c-cáse@1'].sort(),
    );
    const held = await t.db.query<{ error_code: string; error_message: string }>(
      "SELECT error_code, error_message FROM cqrs_sink_held WHERE kind = 'dead' AND aggregate_id LIKE 'unstorable:%' AND error_message LIKE '%ends in a space%'",
    );
    expect(held).toEqual([
      {
        error_code: 'envelope_invalid',
        error_message: expect.stringContaining('eventId ends in a space'),
      },
    ]);
  });

  it('holds events after a missing version, and dead-letters them as version_gap after the timeout', async () => {
    const h = new ShopHistory();
    const v1 = h.customerRegistered('c-gap', 'Gap', 'gap@example.com');
    h.customerRenamed('c-gap', 'never arrives');
    const v3 = h.customerRenamed('c-gap', 'Gap 3');
    await t.send([v1, v3]);
    await waitFor(
      'parked as version_gap',
      async () => {
        const rows = await t.db.query<{ status: string; reason: string }>(
          "SELECT status, reason FROM cqrs_sink_aggregates WHERE aggregate_id = 'c-gap'",
        );
        return rows[0]?.status === 'parked' && rows[0].reason.startsWith('version_gap');
      },
      { timeoutMs: 20_000 },
    );
    expect(await t.db.query("SELECT name FROM customers WHERE id = 'c-gap'")).toEqual([
      { name: 'Gap' },
    ]);
    // re-drive accepts the gap: the held event carries the whole state
    await sink.applier.redrive('c-gap');
    expect(await t.db.query("SELECT name FROM customers WHERE id = 'c-gap'")).toEqual([
      { name: 'Gap 3' },
    ]);
  });

  it('takes a snapshot event above a gap as the new baseline', async () => {
    const h = new ShopHistory();
    await t.send([h.customerRegistered('c-snap', 'S', 's@example.com')]);
    await waitFor(
      'v1',
      async () => (await t.db.query("SELECT * FROM customers WHERE id = 'c-snap'")).length === 1,
    );
    await t.send([
      {
        aggregateId: 'c-snap',
        version: 7,
        eventType: 'CustomerSnapshotted',
        payload: {},
        state: { id: 'c-snap', name: 'S7', email: 's@example.com' },
      },
    ]);
    await waitFor(
      'snapshot applied',
      async () =>
        (await t.db.query("SELECT * FROM customers WHERE id = 'c-snap' AND name = 'S7'")).length ===
        1,
    );
  });
});
