import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { type Stack } from '../infra/local/stack.js';
import { startOwnStack } from '../test/support/own-stack.js';
import { waitFor } from '../test/support/servers.js';
import { sinkTestEnv, type SinkTestEnv } from './test-harness.js';
import { appliedOnce, shopTables, shopWorkload, ShopHistory } from './testing.js';

let stack: Stack;
let t: SinkTestEnv;

beforeAll(async () => {
  stack = await startOwnStack(['mysql'], 'cqrs-sink-outage');
  t = await sinkTestEnv('outage', {
    mysqlUrl: { admin: stack.env.MYSQL_URL ?? '', sink: stack.env.MYSQL_SINK_URL ?? '' },
  });
}, 240_000);
afterAll(async () => {
  await t.close();
  await stack.stop();
});

it('loses nothing while MySQL is stopped for 30 s, and resumes by itself', async () => {
  const sink = await t.start({ SINK_BATCH_SIZE: '50', SINK_RETRY_MAX_MS: '3000' });
  const h = new ShopHistory();
  const first = shopWorkload(h, 40, 'before');
  await t.send(first);
  await waitFor('first half', async () => (await appliedOnce(t.db)).distinct === first.length);

  await stack.get('mysql')?.stop();
  const second = shopWorkload(h, 40, 'during');
  await t.send(second);
  const retriesBefore = (
    await sink.metrics.getSingleMetricAsString('cqrs_sync_sink_retries_total')
  ).trim();
  // The outage itself: 30 s of MySQL being away while events keep arriving (a scenario length, not a wait).
  await new Promise((r) => setTimeout(r, 30_000));
  expect(sink.state).toBe('running');
  expect(
    (await sink.metrics.getSingleMetricAsString('cqrs_sync_sink_retries_total')).trim(),
  ).not.toBe(retriesBefore);
  await stack.get('mysql')?.start?.();

  const all = first.length + second.length;
  await waitFor('every event applied', async () => (await appliedOnce(t.db)).distinct === all, {
    timeoutMs: 90_000,
  });
  expect(await appliedOnce(t.db)).toEqual({ rows: all, distinct: all });
  const tables = await shopTables(t.db);
  const expected = h.expected();
  expect(tables).toEqual(expected);
}, 300_000);
