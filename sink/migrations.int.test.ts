/** The sink's migrations upgrade a database that was in use (MariaDB decides): migration 5 moves the
 * status index to `cqrs_sink_waiting`, and the aggregates parked or waiting for a gap before it
 * stay so, with their reasons and held events, for the gap timeout, the counts and `dlq list`. */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import mysql from 'mysql2/promise';
import { testServers, uniqueName } from '../test/support/servers.js';
import { runMigrations, SINK_MIGRATIONS } from './migrations.js';
import { MysqlStore } from './mysql-store.js';
import { sinkTables } from './tables/index.js';
import { withDatabase } from './testing.js';

const name = uniqueName('migrate');
let conn: mysql.Connection;
let url: string;

beforeAll(async () => {
  const root = await mysql.createConnection(testServers().mysqlUrl);
  await root.query(`CREATE DATABASE \`${name}\``);
  await root.end();
  url = withDatabase(testServers().mysqlUrl, name);
  conn = await mysql.createConnection({ uri: url, timezone: 'Z' });
});
afterAll(async () => {
  await conn.query(`DROP DATABASE \`${name}\``);
  await conn.end();
});

it('keeps parked and gapped aggregates waiting across the upgrade to the waiting table', async () => {
  const before = {
    scope: SINK_MIGRATIONS.scope,
    migrations: SINK_MIGRATIONS.migrations.filter((m) => m.version <= 4),
  };
  expect((await runMigrations(conn, [before]))[0]?.current).toBe(4);
  const since = new Date('2026-12-01T10:00:00.000Z');
  await conn.query(
    `INSERT INTO cqrs_sink_aggregates (aggregate_type, aggregate_id, version, deleted, status, status_since, reason) VALUES ?`,
    [
      [
        ['Customer', 'c-ok', 3, 0, 'ok', since, null],
        ['Customer', 'c-gap', 2, 0, 'gap', since, 'waiting for version 3'],
        ['Customer', 'c-parked', 5, 0, 'parked', since, 'projection_failed: too long'],
      ],
    ],
  );
  await conn.query(
    `INSERT INTO cqrs_sink_held (kind, aggregate_type, aggregate_id, version, event_id, event_type,
       topic, kpartition, koffset, record_headers, held_at) VALUES ?`,
    [
      [
        ['gap', 'Customer', 'c-gap', 4, 'e-gap-4', 'CustomerRenamed', 't', 0, 7, '{}', since],
        ['dead', 'Customer', 'c-parked', 6, 'e-park-6', 'CustomerRenamed', 't', 0, 8, '{}', since],
      ],
    ],
  );

  const [after] = await runMigrations(conn, [SINK_MIGRATIONS]);
  expect(after?.applied).toEqual([5, 6]);
  const [waiting] = await conn.query(
    'SELECT aggregate_id, status, status_since FROM cqrs_sink_waiting ORDER BY aggregate_id',
  );
  expect(waiting).toEqual([
    { aggregate_id: 'c-gap', status: 'gap', status_since: since },
    { aggregate_id: 'c-parked', status: 'parked', status_since: since },
  ]);
  // The aggregate rows keep their meaning; the wide index is gone from them.
  const [rows] = await conn.query(
    'SELECT aggregate_id, version, status, reason FROM cqrs_sink_aggregates ORDER BY aggregate_id',
  );
  expect(rows).toEqual([
    { aggregate_id: 'c-gap', version: 2, status: 'gap', reason: 'waiting for version 3' },
    { aggregate_id: 'c-ok', version: 3, status: 'ok', reason: null },
    {
      aggregate_id: 'c-parked',
      version: 5,
      status: 'parked',
      reason: 'projection_failed: too long',
    },
  ]);
  const [indexes] = await conn.query(
    "SHOW INDEX FROM cqrs_sink_aggregates WHERE Key_name <> 'PRIMARY'",
  );
  expect(indexes).toEqual([]);
  expect((await runMigrations(conn, [SINK_MIGRATIONS]))[0]?.applied).toEqual([]);

  const store = new MysqlStore({ connection: url, poolSize: 1 });
  try {
    const tables = sinkTables(store.pool);
    expect(await store.countParked()).toBe(1);
    expect(await tables.aggregates.countNotOk()).toBe(2);
    const list = await tables.aggregates.waiting(tables.nameOf('cqrs_sink_held'));
    expect(list.map((r) => [r.aggregate_id, r.status, String(r.held_ids)])).toEqual([
      ['c-gap', 'gap', '1'],
      ['c-parked', 'parked', '2'],
    ]);
    // The gap timeout finds the gap; closing it removes the waiting row, and an `ok` aggregate's
    // save leaves its status alone.
    await store.transaction(async (tx) => {
      const gaps = await tx.aggregatesWithStatus('gap', new Date());
      expect(gaps.map((a) => [a.aggregateId, a.version, a.reason])).toEqual([
        ['c-gap', 2, 'waiting for version 3'],
      ]);
      const ok = (await tx.lockAggregates([{ aggregateType: 'Customer', aggregateId: 'c-ok' }]))
        .values()
        .next().value;
      if (!ok || !gaps[0]) throw new Error('missing aggregates');
      await tx.saveAggregates([
        { ...gaps[0], version: 4, status: 'ok', statusSince: new Date(), reason: null },
        { ...ok, version: 4 },
      ]);
    });
    expect(await tables.aggregates.countNotOk()).toBe(1);
    const [now] = await conn.query(
      "SELECT aggregate_id, version, status, reason FROM cqrs_sink_aggregates WHERE aggregate_id IN ('c-gap', 'c-ok') ORDER BY aggregate_id",
    );
    expect(now).toEqual([
      { aggregate_id: 'c-gap', version: 4, status: 'ok', reason: null },
      { aggregate_id: 'c-ok', version: 4, status: 'ok', reason: null },
    ]);
  } finally {
    await store.close();
  }
});
