/** When the sink applied an event, as `cqrs_sink_events` answers it: the same instant from a
 * session in any time zone (the sink writes its DATETIMEs in UTC). */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import mysql from 'mysql2/promise';
import { testServers, uniqueName } from '../../test/support/servers.js';
import { createTestDatabase, type TestDatabase } from '../testing.js';
import { sinkTables } from './index.js';

let db: TestDatabase;

beforeAll(async () => {
  const s = testServers();
  db = await createTestDatabase(s.mysqlUrl, s.mysqlSinkUrl, uniqueName('seenevents'), []);
  await db.query(
    `INSERT INTO cqrs_sink_events (event_id, seen_at) VALUES ('e-1', '2026-12-01 10:00:00.250')`,
  );
});
afterAll(async () => {
  await db.drop();
});

it('gives when an event was applied as UTC milliseconds, whatever the session time zone', async () => {
  const at = Date.parse('2026-12-01T10:00:00.250Z');
  for (const zone of ['+00:00', '+05:30', '-08:00']) {
    const conn = await mysql.createConnection({ uri: db.sinkUrl, timezone: 'Z' });
    try {
      await conn.query(`SET time_zone = '${zone}'`);
      expect(await sinkTables(conn).events.appliedAt(['e-1', 'never'])).toEqual([
        { eventId: 'e-1', appliedAt: at },
      ]);
    } finally {
      await conn.end();
    }
  }
});
