/** Replay honours operators' dead-letter decisions (`dlq drop`, `dlq redrive`), against the local
 * servers. Issue 17: `replay --to earliest` dead-lettered a dropped poison again, parked its
 * aggregate and rolled its later rows back. */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pino from 'pino';
import { waitFor } from '../test/support/servers.js';
import { sinkCli } from './cli.js';
import { MysqlStore } from './mysql-store.js';
import { sinkTestEnv, type SinkTestEnv } from './test-harness.js';
import { ShopHistory, testProjections } from './testing.js';

let t: SinkTestEnv;
/** Read model and bookkeeping of the test's aggregates once the operator has decided. */
let before: Awaited<ReturnType<typeof snapshot>>;

const IDS = ['c-drop', 'c-behind', 'c-gap', 'c-fine'];

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await sinkCli(
    args,
    { catalog: t.catalog, projections: testProjections },
    {
      env: t.env,
      out: (l) => out.push(l),
      err: (l) => err.push(l),
      logger: pino({ level: 'silent' }),
    },
  );
  return { code, out: out.join('\n'), err: err.join('\n') };
}

async function snapshot() {
  return {
    customers: await t.db.query('SELECT * FROM customers WHERE id IN (?) ORDER BY id', [IDS]),
    aggregates: await t.db.query(
      'SELECT aggregate_id, version, status FROM cqrs_sink_aggregates WHERE aggregate_id IN (?) ORDER BY aggregate_id',
      [IDS],
    ),
  };
}

const held = (): Promise<unknown[]> =>
  t.db.query('SELECT aggregate_id, version, kind, error_code FROM cqrs_sink_held ORDER BY id');

async function deadIdOf(aggregateId: string): Promise<number> {
  const [row] = await t.db.query<{ id: number }>(
    "SELECT id FROM cqrs_sink_held WHERE aggregate_id = ? AND kind = 'dead'",
    [aggregateId],
  );
  if (!row) throw new Error(`no dead letter of ${aggregateId}`);
  return row.id;
}

beforeAll(async () => {
  t = await sinkTestEnv('decisions', { partitions: 1 });
  // One event per batch (sinks and replays alike), as when a poison and its successor are far
  // apart in the log: in one batch a state projection writes only the successor's rows, and the
  // poison never reaches MySQL.
  t.env.SINK_BATCH_SIZE = '1';
  const sink = await t.start({ SINK_GAP_TIMEOUT_MS: '1000' });
  const h = new ShopHistory();
  const poison = (id: string) => h.customerRegistered(id, 'y'.repeat(400), `${id}@example.com`);
  // c-drop: the poison alone, dropped; c-behind: a rename held behind it, re-driven after the drop;
  // c-gap: v2 never comes, so v3 is dead-lettered as version_gap, then re-driven across the gap.
  await t.send([
    poison('c-drop'),
    poison('c-behind'),
    h.customerRegistered('c-gap', 'Gap', 'gap@example.com'),
    h.customerRegistered('c-fine', 'Fine', 'fine@example.com'),
  ]);
  h.customerRenamed('c-gap', 'never sent');
  await t.send([h.customerRenamed('c-behind', 'Behind'), h.customerRenamed('c-gap', 'Gap 3')]);
  await waitFor(
    'dead letters',
    async () =>
      (await t.db.query("SELECT id FROM cqrs_sink_held WHERE kind = 'dead'")).length === 3,
  );
  await sink.stop();
  expect((await cli(['dlq', 'drop', String(await deadIdOf('c-drop')), '--by', 'ops'])).out).toMatch(
    /un-parked/,
  );
  expect((await cli(['dlq', 'drop', String(await deadIdOf('c-behind'))])).out).toMatch(
    /stays parked/,
  );
  expect((await cli(['dlq', 'redrive', 'Customer/c-behind', '--by', 'ops'])).out).toMatch(
    /1 applied/,
  );
  expect((await cli(['dlq', 'redrive', 'Customer/c-gap', '--by', 'ops'])).out).toMatch(/1 applied/);
  // The dropped poison's successor applies.
  const again = await t.start();
  await t.send([h.customerRenamed('c-drop', 'Dropped then renamed')]);
  await waitFor(
    'applied after the drop',
    async () => (await t.db.query("SELECT id FROM customers WHERE id = 'c-drop'")).length === 1,
  );
  await again.stop();
  before = await snapshot();
  expect(await held()).toEqual([]);
  expect(before.customers).toEqual([
    { id: 'c-behind', name: 'Behind', email: 'c-behind@example.com', version: 2 },
    { id: 'c-drop', name: 'Dropped then renamed', email: 'c-drop@example.com', version: 2 },
    { id: 'c-fine', name: 'Fine', email: 'fine@example.com', version: 1 },
    { id: 'c-gap', name: 'Gap 3', email: 'gap@example.com', version: 3 },
  ]);
}, 120_000);
afterAll(async () => {
  await t.close();
});

async function expectDecisionsHonoured(): Promise<void> {
  // Not dead-lettered again, nothing parked or waiting, rows as the operator left them.
  expect(await held()).toEqual([]);
  expect(await snapshot()).toEqual(before);
  expect(before.aggregates.every((a) => (a as { status: string }).status === 'ok')).toBe(true);
  const list = await cli(['dlq', 'list']);
  expect(list.out).toMatch(/^0 dead letter\(s\):$/m);
  expect(list.out).toMatch(/^0 parked or waiting aggregate\(s\):$/m);
  const store = new MysqlStore({ connection: t.db.adminUrl, poolSize: 1 });
  try {
    // What `cqrs-sync status` counts.
    expect(await store.countDeadLetters()).toBe(0);
    expect(await store.countParked()).toBe(0);
  } finally {
    await store.close();
  }
  expect(
    await t.db.query(
      'SELECT aggregate_id, version, decision, decided_by FROM cqrs_sink_decisions ORDER BY aggregate_id, version',
    ),
  ).toEqual([
    { aggregate_id: 'c-behind', version: 1, decision: 'dropped', decided_by: expect.any(String) },
    { aggregate_id: 'c-behind', version: 2, decision: 'redriven', decided_by: 'ops' },
    { aggregate_id: 'c-drop', version: 1, decision: 'dropped', decided_by: 'ops' },
    { aggregate_id: 'c-gap', version: 3, decision: 'redriven', decided_by: 'ops' },
  ]);
}

describe('replay after dead-letter decisions', () => {
  it('in place: a dropped poison is skipped again and re-driven events stay applied', async () => {
    const r = await cli(['replay', '--to', 'earliest']);
    expect(r).toMatchObject({ code: 0 });
    await expectDecisionsHonoured();
  }, 120_000);

  it('in shadow tables: the decisions carry into the swapped-in tables', async () => {
    const r = await cli(['replay', '--to', 'earliest', '--shadow']);
    expect(r).toMatchObject({ code: 0 });
    expect(r.out).toMatch(/shadow tables swapped in/);
    await expectDecisionsHonoured();
    // Kept, not rebuilt: no shadow copy of the decisions was made or left behind.
    expect(
      await t.db.query(
        "SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE 'cqrs\\_sink\\_decisions%' ORDER BY name",
      ),
    ).toEqual([{ name: 'cqrs_sink_decisions' }, { name: 'cqrs_sink_decisions_generation' }]);
  }, 120_000);

  it('re-delivered from a time: seen events stay duplicates, decided or not', async () => {
    const r = await cli(['replay', '--to', new Date(Date.now() - 3_600_000).toISOString()]);
    expect(r).toMatchObject({ code: 0 });
    await expectDecisionsHonoured();
  }, 120_000);
});
