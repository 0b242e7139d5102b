/**
 * A rebalance while MySQL is down: the sink that gets the partitions cannot read MySQL's offsets
 * yet, so it applies nothing, heartbeating and retrying, and once MySQL answers it starts from them
 * (re-applying what a restore took away). MySQL here is a server of this test's own.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { type Stack } from '../infra/local/stack.js';
import { startOwnStack } from '../test/support/own-stack.js';
import { waitFor } from '../test/support/servers.js';
import { sinkTestEnv, type SinkTestEnv } from './test-harness.js';
import { ShopHistory } from './testing.js';

let stack: Stack;
let t: SinkTestEnv;

beforeAll(async () => {
  stack = await startOwnStack(['mysql'], 'cqrs-sink-assignment');
  t = await sinkTestEnv('assign', {
    partitions: 2,
    logLevelName: process.env.SINK_TEST_LOG ?? 'warn',
    mysqlUrl: { admin: stack.env.MYSQL_URL ?? '', sink: stack.env.MYSQL_SINK_URL ?? '' },
  });
}, 240_000);
afterAll(async () => {
  await t.close();
  await stack.stop();
});

it("waits for MySQL's offsets at a rebalance during a MySQL outage, then starts from them", async () => {
  const topic = t.catalog.event('CustomerRegistered').topic;
  const offsets = async (): Promise<Map<number, number>> =>
    new Map(
      (
        await t.db.query<{ kpartition: number; next_offset: string }>(
          'SELECT kpartition, next_offset FROM cqrs_sink_offsets WHERE consumer_group = ? AND topic = ?',
          [t.group, topic],
        )
      ).map((r) => [r.kpartition, Number(r.next_offset)]),
    );
  const name = async (id: string): Promise<string | undefined> =>
    (await t.db.query<{ name: string }>('SELECT name FROM customers WHERE id = ?', [id]))[0]?.name;
  const opts = { SINK_RETRY_MAX_MS: '1000' };
  const stays = await t.start(opts);
  const leaves = await t.start(opts);
  const h = new ShopHistory();
  const events = [
    h.customerRegistered('c-out', 'v1', 'o@x.io'),
    ...[2, 3, 4, 5].map((v) => h.customerRenamed('c-out', `v${v}`)),
  ].map((e) => ({ ...e, eventId: randomUUID() }));
  await t.send(events);
  await waitFor('the five applied', async () => (await name('c-out')) === 'v5');
  const [partition, end] = [...(await offsets())][0] ?? [-1, -1];
  expect(end).toBe(5);

  // MySQL restored from before the five (both sinks idle), then MySQL goes away.
  await t.db.query(
    'UPDATE cqrs_sink_offsets SET next_offset = 0 WHERE consumer_group = ? AND topic = ? AND kpartition = ?',
    [t.group, topic, partition],
  );
  await t.db.query("DELETE FROM customers WHERE id = 'c-out'");
  await t.db.query("DELETE FROM cqrs_sink_aggregates WHERE aggregate_id = 'c-out'");
  await t.db.query('DELETE FROM cqrs_sink_events WHERE event_id IN (?)', [
    events.map((e) => e.eventId),
  ]);
  await stack.get('mysql')?.stop();
  // One sink leaves: the other gets every partition while MySQL cannot tell it where to start.
  await leaves.stop();
  await t.send([{ ...h.customerRegistered('c-new', 'new', 'n@x.io'), eventId: randomUUID() }]);
  // The outage: long enough for the rebalance and a fetch (a scenario length, not a wait).
  await new Promise((r) => setTimeout(r, 15_000));
  expect(stays.state).toBe('running');
  await stack.get('mysql')?.start?.();

  await waitFor(
    'the five re-applied and the new one applied',
    async () =>
      ((await offsets()).get(partition) ?? 0) >= end &&
      (await name('c-out')) === 'v5' &&
      (await name('c-new')) === 'new',
    { timeoutMs: 90_000, intervalMs: 500 },
  );
  expect(stays.state).toBe('running');
}, 300_000);
