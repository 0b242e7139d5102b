import mysql from 'mysql2/promise';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { waitFor } from '../test/support/servers.js';
import { sinkTestEnv, type SinkTestEnv } from './test-harness.js';
import { appliedOnce, shopTables, shopWorkload, ShopHistory } from './testing.js';

let t: SinkTestEnv;

beforeAll(async () => {
  t = await sinkTestEnv('stop-pipelined', { partitions: 1 });
});
afterAll(async () => {
  await t.close();
});

it('a stop while a chunk commits and the next is decoded ahead: the first commits, the next is abandoned and applied once after a restart', async () => {
  // Chunks of 10: each fetched batch holds several, so one is decoded ahead while one commits.
  const opts = { SINK_BATCH_SIZE: '10', SINK_LOCK_WAIT_TIMEOUT_MS: '60000' };
  const sink = await t.start(opts);
  const h = new ShopHistory();
  const first = shopWorkload(h, 5, 'before');
  await t.send(first);
  await waitFor('first events', async () => (await appliedOnce(t.db)).distinct === first.length);

  // Hold the sink's next transaction at its insert into applied_log (a next-key lock up to the
  // end of the table), so that it is in flight while the chunk after it is decoded ahead.
  const blocker = await mysql.createConnection(t.db.adminUrl);
  try {
    await blocker.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
    await blocker.beginTransaction();
    await blocker.query('SELECT * FROM applied_log FOR UPDATE');
    const second = shopWorkload(h, 30, 'during');
    await t.send(second);
    await waitFor('a sink transaction waiting for the lock', async () => {
      const [rows] = await blocker.query(
        "SELECT COUNT(*) AS n FROM information_schema.INNODB_TRX WHERE trx_state = 'LOCK WAIT'",
      );
      return Number((rows as { n: number }[])[0]?.n) > 0;
    });
    const stopping = sink.stop();
    // The stop is draining: it waits for the transaction in flight, which can commit once the lock
    // goes.
    await new Promise((r) => setTimeout(r, 300));
    expect(sink.state).toBe('draining');
    await blocker.commit();
    await stopping;
    expect(sink.state).toBe('stopped');

    const atStop = await appliedOnce(t.db);
    expect(atStop.rows).toBe(atStop.distinct);
    // The chunk in flight committed; the one decoded ahead (and the rest) did not.
    expect(atStop.distinct).toBeGreaterThan(first.length);
    expect(atStop.distinct).toBeLessThan(first.length + second.length);

    // A new sink starts at MySQL's offset: nothing applied twice, nothing skipped.
    await t.start(opts);
    const all = first.length + second.length;
    await waitFor('every event applied', async () => (await appliedOnce(t.db)).distinct === all, {
      timeoutMs: 60_000,
    });
    expect(await appliedOnce(t.db)).toEqual({ rows: all, distinct: all });
    expect(await shopTables(t.db)).toEqual(h.expected());
  } finally {
    await blocker.end();
  }
}, 120_000);
