import { afterAll, beforeAll, expect, it } from '@jest/globals';
import mysql from 'mysql2/promise';
import { testServers, uniqueName } from '../support/servers.js';

const { mysqlUrl, mysqlSinkUrl } = testServers();
let admin: mysql.Connection;
let db: string;

beforeAll(async () => {
  admin = await mysql.createConnection(mysqlUrl);
  db = uniqueName('smoke');
  await admin.query(`CREATE DATABASE ${db}`);
  await admin.query(
    `CREATE TABLE ${db}.t (id VARCHAR(36) PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB`,
  );
});
afterAll(async () => {
  await admin.query(`DROP DATABASE ${db}`);
  await admin.end();
});

it('commits a transaction as a whole and rolls one back as a whole', async () => {
  const c = await mysql.createConnection(mysqlUrl);
  try {
    await c.beginTransaction();
    await c.execute(`INSERT INTO ${db}.t (id, v) VALUES (?, ?), (?, ?)`, ['a', 1, 'b', 2]);
    await c.commit();
    await c.beginTransaction();
    await c.execute(`INSERT INTO ${db}.t (id, v) VALUES (?, ?)`, ['c', 3]);
    await c.execute(`UPDATE ${db}.t SET v = v + 10`);
    await c.rollback();
    const [rows] = await c.query(`SELECT id, v FROM ${db}.t ORDER BY id`);
    expect(rows).toEqual([
      { id: 'a', v: 1 },
      { id: 'b', v: 2 },
    ]);
  } finally {
    await c.end();
  }
});

it("gives the sink's account DML on the read model and nothing more", async () => {
  const sink = await mysql.createConnection(mysqlSinkUrl);
  try {
    const [rows] = await sink.query('SELECT DATABASE() AS db');
    expect(rows).toEqual([{ db: 'cqrs_read' }]);
    await expect(sink.query('CREATE TABLE smoke_denied (id INT)')).rejects.toThrow(/denied/i);
    await expect(sink.query(`SELECT * FROM ${db}.t`)).rejects.toThrow(/denied/i);
  } finally {
    await sink.end();
  }
});
