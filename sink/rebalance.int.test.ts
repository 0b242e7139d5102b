import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { waitFor } from '../test/support/servers.js';
import { sinkTestEnv, type SinkTestEnv } from './test-harness.js';
import { appliedOnce, shopTables, shopWorkload, ShopHistory, type EventSpec } from './testing.js';

let t: SinkTestEnv;

beforeAll(async () => {
  t = await sinkTestEnv('rebalance', { partitions: 6 });
});
afterAll(async () => {
  await t.close();
});

it('keeps the exactly-once effect with three consumers and a forced rebalance', async () => {
  const opts = { SINK_BATCH_SIZE: '20', SINK_PARTITIONS_CONCURRENTLY: '2' };
  const sinks = [await t.start(opts), await t.start(opts), await t.start(opts)];
  const h = new ShopHistory();
  const all: EventSpec[] = [];
  for (let round = 0; round < 4; round++) {
    const batch = shopWorkload(h, 60, `r${round}`).map((e) => ({ ...e, eventId: randomUUID() }));
    all.push(...batch);
    await t.send(batch);
    if (round === 1) {
      // Forced rebalance: one consumer leaves mid-stream, a new one joins.
      await sinks[0]?.stop();
      sinks.push(await t.start(opts));
    }
  }
  // Re-deliver a slice: duplicates across the rebalance must stay no-ops.
  await t.send(all.slice(0, 50));
  const expected = h.expected();
  await waitFor(
    'the expected tables',
    async () => JSON.stringify(await shopTables(t.db)) === JSON.stringify(expected),
    {
      timeoutMs: 120_000,
      intervalMs: 500,
    },
  );
  await waitFor(
    'every event applied',
    async () => (await appliedOnce(t.db)).distinct === all.length,
  );
  expect(await appliedOnce(t.db)).toEqual({ rows: all.length, distinct: all.length });
  // every version of every aggregate applied exactly once
  const dupes = await t.db.query(
    'SELECT aggregate_id, version, COUNT(*) AS n FROM applied_log GROUP BY aggregate_id, version HAVING n > 1',
  );
  expect(dupes).toEqual([]);
  expect(sinks.filter((s) => s.state === 'running')).toHaveLength(3);
}, 300_000);
