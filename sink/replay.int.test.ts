import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pino from 'pino';
import { waitFor } from '../test/support/servers.js';
import { sinkCli } from './cli.js';
import { sinkTestEnv, type SinkTestEnv } from './test-harness.js';
import { appliedOnce, shopWorkload, ShopHistory, testProjections } from './testing.js';

let t: SinkTestEnv;
let total = 0;

const TABLES = ['customers', 'orders', 'order_lines', 'order_summaries'];
async function checksum(): Promise<string> {
  const hash = createHash('sha256');
  for (const table of TABLES) {
    hash.update(table);
    hash.update(JSON.stringify(await t.db.query(`SELECT * FROM ${table} ORDER BY 1, 2`)));
  }
  return hash.digest('hex');
}

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await sinkCli(
    args,
    { catalog: t.catalog, projections: testProjections },
    {
      env: { ...t.env, MYSQL_SINK_URL: t.db.sinkUrl },
      out: (l) => out.push(l),
      err: (l) => err.push(l),
      logger: pino({ level: 'silent' }),
    },
  );
  return { code, out: out.join('\n'), err: err.join('\n') };
}

beforeAll(async () => {
  t = await sinkTestEnv('replay', { partitions: 3 });
  const h = new ShopHistory();
  const events = shopWorkload(h, 80, 'rp');
  total = events.length;
  await t.send(events);
});
afterAll(async () => {
  await t.close();
});

describe('replay', () => {
  it('refuses while the group has active members', async () => {
    const sink = await t.start();
    await waitFor('applied', async () => (await appliedOnce(t.db)).distinct === total);
    const r = await cli(['sink', 'replay', '--to', 'earliest']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/active member/);
    await sink.stop();
  });

  it('rebuilds from earliest in place and in shadow tables, to identical tables', async () => {
    const before = await checksum();
    const inPlace = await cli(['replay', '--to', 'earliest']);
    expect(inPlace).toMatchObject({ code: 0 });
    expect(inPlace.out).toMatch(new RegExp(`replayed ${total} events`));
    expect(inPlace.err).toMatch(/100%/);
    expect(await checksum()).toBe(before);
    expect(await appliedOnce(t.db)).toEqual({ rows: total, distinct: total });

    const shadow = await cli(['replay', '--to', 'earliest', '--shadow']);
    expect(shadow.code).toBe(0);
    expect(shadow.out).toMatch(/shadow tables swapped in/);
    expect(await checksum()).toBe(before);
    expect(await t.db.query("SHOW TABLES LIKE '%\\_\\_shadow'")).toEqual([]);
  });

  it('re-delivers from a time without changing what was applied', async () => {
    const before = await checksum();
    const r = await cli(['replay', '--to', new Date(Date.now() - 3_600_000).toISOString()]);
    expect(r.code).toBe(0);
    expect(await checksum()).toBe(before);
  });

  it('prints help and refuses bad arguments', async () => {
    expect((await cli(['replay', '--help'])).out).toMatch(/--shadow/);
    expect((await cli(['dlq', '--help'])).out).toMatch(/redrive/);
    expect((await cli(['--help'])).out).toMatch(/usage: cqrs-sync sink/);
    expect((await cli(['replay'])).code).toBe(2);
    expect((await cli(['bogus'])).code).toBe(2);
    expect(await cli(['replay', '--to', 'earliest', '--shadow', '--group', 'x'])).toMatchObject({
      code: 0,
    });
  });

  it('lists, shows, drops and re-drives dead letters', async () => {
    const sink = await t.start();
    const h = new ShopHistory();
    await t.send([h.customerRegistered('c-cli', 'y'.repeat(400), 'cli@example.com')]);
    await waitFor(
      'parked',
      async () =>
        (
          await t.db.query(
            "SELECT * FROM cqrs_sink_aggregates WHERE aggregate_id = 'c-cli' AND status = 'parked'",
          )
        ).length === 1,
    );
    await t.send([
      h.customerRenamed('c-cli', 'Cli'),
      h.customerRegistered('c-cli2', 'z'.repeat(400), 'x@example.com'),
    ]);
    await waitFor(
      'held',
      async () =>
        (await t.db.query("SELECT * FROM cqrs_sink_held WHERE aggregate_id LIKE 'c-cli%'"))
          .length === 3,
    );
    await sink.stop();
    const list = await cli(['dlq', 'list']);
    expect(list.code).toBe(0);
    expect(list.out).toMatch(/2 dead letter/);
    expect(list.out).toMatch(/Customer\/c-cli at v0 parked/);
    expect(JSON.parse((await cli(['dlq', 'list', '--json'])).out)).toHaveProperty('deadLetters');
    const [dead] = await t.db.query<{ id: number }>(
      "SELECT id FROM cqrs_sink_held WHERE aggregate_id = 'c-cli' AND kind = 'dead'",
    );
    const show = await cli(['dlq', 'show', String(dead?.id)]);
    expect(show.out).toMatch(/constraint_violated/);
    expect(show.out).toMatch(/"email": "cli@example.com"/);
    expect((await cli(['dlq', 'show', '999999'])).code).toBe(1);
    // still failing: attempts grow, nothing applied
    expect((await cli(['dlq', 'redrive', 'Customer/c-cli'])).code).toBe(1);
    expect(
      await t.db.query(
        "SELECT attempts FROM cqrs_sink_held WHERE kind = 'dead' AND aggregate_id = 'c-cli'",
      ),
    ).toEqual([{ attempts: 2 }]);
    // drop the poison; re-drive applies the rest
    const [dead2] = await t.db.query<{ id: number }>(
      "SELECT id FROM cqrs_sink_held WHERE aggregate_id = 'c-cli2'",
    );
    expect((await cli(['dlq', 'drop', String(dead?.id)])).out).toMatch(/stays parked/);
    expect((await cli(['dlq', 'drop', String(dead?.id)])).code).toBe(1);
    const redrive = await cli(['dlq', 'redrive', 'c-cli']);
    expect(redrive.out).toMatch(/1 applied/);
    expect(await t.db.query("SELECT name FROM customers WHERE id = 'c-cli'")).toEqual([
      { name: 'Cli' },
    ]);
    expect((await cli(['dlq', 'redrive', 'nothing-here'])).code).toBe(1);
    expect((await cli(['dlq', 'redrive', String(dead2?.id)])).code).toBe(1);
  });

  it('un-parks an aggregate when its only dead letter is dropped, so its next event applies', async () => {
    const [dead] = await t.db.query<{ id: number }>(
      "SELECT id FROM cqrs_sink_held WHERE aggregate_id = 'c-cli2' AND kind = 'dead'",
    );
    const drop = await cli(['dlq', 'drop', String(dead?.id)]);
    expect(drop).toMatchObject({ code: 0 });
    expect(drop.out).toMatch(/Customer\/c-cli2 had nothing else held and is un-parked/);
    expect(
      await t.db.query(
        "SELECT status, version FROM cqrs_sink_aggregates WHERE aggregate_id = 'c-cli2'",
      ),
    ).toEqual([{ status: 'ok', version: 1 }]);
    expect((await cli(['dlq', 'list'])).out).toMatch(/0 parked or waiting aggregate/);
    // Its successor (v2, carrying the whole state) applies: no gap is waited for.
    const sink = await t.start();
    const h = new ShopHistory();
    h.customerRegistered('c-cli2', 'z'.repeat(400), 'x@example.com');
    await t.send([h.customerRenamed('c-cli2', 'Two')]);
    await waitFor(
      'applied',
      async () =>
        (await t.db.query("SELECT name FROM customers WHERE id = 'c-cli2' AND name = 'Two'"))
          .length === 1,
    );
    await sink.stop();
    expect(
      await t.db.query("SELECT status FROM cqrs_sink_aggregates WHERE aggregate_id = 'c-cli2'"),
    ).toEqual([{ status: 'ok' }]);
  });
});
