/** The reads `cqrs-sync verify` makes of `cqrs_sink_aggregates` (MariaDB decides the collation,
 * the key order and the locks): a batch's key range, the live ids of a range in pages, the
 * versions of orphans, and the id column's type and collation. */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import mysql from 'mysql2/promise';
import { testServers, uniqueName } from '../../test/support/servers.js';
import { runMigrations, SINK_MIGRATIONS } from '../migrations.js';
import { MysqlStore } from '../mysql-store.js';
import { withDatabase } from '../testing.js';
import { sinkTables } from './index.js';

const name = uniqueName('aggverify');
let store: MysqlStore;

beforeAll(async () => {
  const root = await mysql.createConnection(testServers().mysqlUrl);
  await root.query(`CREATE DATABASE \`${name}\``);
  await root.end();
  const url = withDatabase(testServers().mysqlUrl, name);
  const conn = await mysql.createConnection({ uri: url, timezone: 'Z' });
  await runMigrations(conn, [SINK_MIGRATIONS]);
  const since = new Date('2026-12-01T10:00:00.000Z');
  await conn.query(
    `INSERT INTO cqrs_sink_aggregates (aggregate_type, aggregate_id, version, deleted, status, status_since) VALUES ?`,
    [
      [
        ['Customer', 'B', 1, 0, 'ok', since],
        ['Customer', 'a', 2, 0, 'ok', since],
        ['Customer', 'b', 3, 1, 'ok', since],
        ['Customer', 'c', 4, 0, 'gap', since],
        ['Customer', 'd', 5, 0, 'ok', since],
        ['Order', 'b', 9, 0, 'ok', since],
      ],
    ],
  );
  await conn.end();
  store = new MysqlStore({ connection: url, poolSize: 2 });
});
afterAll(async () => {
  await store.pool.query(`DROP DATABASE \`${name}\``);
  await store.close();
});

it('declares the id column binary-collated, so ids sort by code point as in MongoDB', async () => {
  const aggregates = sinkTables(store.pool).aggregates;
  expect(await aggregates.idColumn()).toEqual({ type: 'varchar(191)', collation: 'utf8mb4_bin' });
  const shadow = sinkTables(store.pool, (t) => `${t}__none`).aggregates;
  expect(await shadow.idColumn()).toBeUndefined();
});

it('reads and locks one type of a key range, at most the limit', async () => {
  await store.rolledBack(async (_tx, _query, tables) => {
    const rows = await tables.aggregates.lockRange('Customer', { after: 'a', upTo: 'c' }, 10);
    expect(rows.map((r) => [r.aggregateId, r.version, r.deleted, r.status]).sort()).toEqual([
      ['b', 3, true, 'ok'],
      ['c', 4, false, 'gap'],
    ]);
    const all = await tables.aggregates.lockRange('Customer', { after: null, upTo: null }, 3);
    expect(all).toHaveLength(3);
  });
});

it('pages through the live ids of a range in code point order, skipping deleted ones', async () => {
  const aggregates = sinkTables(store.pool).aggregates;
  expect(await aggregates.liveIds('Customer', { after: null, upTo: null }, 2)).toEqual(['B', 'a']);
  expect(await aggregates.liveIds('Customer', { after: 'a', upTo: null }, 2)).toEqual(['c', 'd']);
  expect(await aggregates.liveIds('Customer', { after: 'a', upTo: 'c' }, 2)).toEqual(['c']);
});

it('gives the recorded versions of the ids that have a row', async () => {
  const versions = await sinkTables(store.pool).aggregates.versions('Customer', ['b', 'd', 'zz']);
  expect([...versions]).toEqual(
    expect.arrayContaining([
      ['b', 3],
      ['d', 5],
    ]),
  );
  expect(versions.size).toBe(2);
});
