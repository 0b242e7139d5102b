/**
 * MySQL's stored offsets are where the sink starts. After MySQL is restored from a backup (its
 * offset for a partition behind Kafka's committed one), a restarted sink, or the one that gets the
 * partition at a rebalance, re-applies from MySQL's offset without waiting for a new record on that
 * partition; `status` shows both offsets and the lag after MySQL's.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, expect, it, jest } from '@jest/globals';
import { readStatus, statusCli, formatStatus, type PartitionLag } from '../bin/status.js';
import { testServers, uniqueName, waitFor } from '../test/support/servers.js';
import { sinkTestEnv, type SinkTestEnv } from './test-harness.js';
import { ShopHistory, type EventSpec } from './testing.js';

let t: SinkTestEnv;
let topic: string;
let env: Record<string, string>;

beforeAll(async () => {
  t = await sinkTestEnv('restore', { partitions: 2 });
  topic = t.catalog.event('CustomerRegistered').topic;
  // The relay's section is not looked at here: an empty outbox database.
  env = {
    ...t.env,
    MONGODB_URI: testServers().mongodbUri,
    RELAY_OUTBOX_DATABASE: uniqueName('restore'),
  };
}, 120_000);
afterAll(async () => {
  await t.close();
});
afterEach(() => {
  jest.restoreAllMocks();
});

const mysqlOffsets = async (): Promise<Map<number, number>> =>
  new Map(
    (
      await t.db.query<{ kpartition: number; next_offset: string }>(
        'SELECT kpartition, next_offset FROM cqrs_sink_offsets WHERE consumer_group = ? AND topic = ?',
        [t.group, topic],
      )
    ).map((r) => [r.kpartition, Number(r.next_offset)]),
  );

const customer = async (id: string) =>
  (
    await t.db.query<{ name: string; version: number }>(
      'SELECT name, version FROM customers WHERE id = ?',
      [id],
    )
  )[0];

const appliedEvents = async (aggregateId: string): Promise<number> =>
  Number(
    (
      await t.db.query<{ n: number }>(
        'SELECT COUNT(DISTINCT event_id) AS n FROM applied_log WHERE aggregate_id = ?',
        [aggregateId],
      )
    )[0]?.n,
  );

/** What restoring MySQL from before `events` (one aggregate's, all on `partition`) leaves: the
 * partition's stored offset back by their count, and none of their effects. */
async function restoreBefore(partition: number, events: readonly EventSpec[]): Promise<void> {
  const id = events[0]?.aggregateId ?? '';
  await t.db.query(
    'UPDATE cqrs_sink_offsets SET next_offset = next_offset - ? WHERE consumer_group = ? AND topic = ? AND kpartition = ?',
    [events.length, t.group, topic, partition],
  );
  await t.db.query('DELETE FROM customers WHERE id = ?', [id]);
  await t.db.query('DELETE FROM applied_log WHERE aggregate_id = ?', [id]);
  await t.db.query(
    "DELETE FROM cqrs_sink_aggregates WHERE aggregate_type = 'Customer' AND aggregate_id = ?",
    [id],
  );
  await t.db.query('DELETE FROM cqrs_sink_events WHERE event_id IN (?)', [
    events.map((e) => e.eventId),
  ]);
}

const partitionOf = (ps: readonly PartitionLag[], partition: number): PartitionLag | undefined =>
  ps.find((p) => p.topic === topic && p.partition === partition);

const settled = async (): Promise<void> => {
  await waitFor(
    'MySQL and Kafka at the end of every partition',
    async () => {
      const s = await readStatus(t.catalog, env);
      return s.sink.ok && s.sink.value.totalLag === 0 && s.sink.value.offsetsDiffer === 0;
    },
    { timeoutMs: 60_000, intervalMs: 500 },
  );
};

const h = new ShopHistory();

/** Five events of one new aggregate (so on one partition), applied by a running sink: their
 * partition and its end offset after them. */
async function fiveOnOnePartition(
  id: string,
): Promise<{ events: EventSpec[]; partition: number; end: number }> {
  await settled();
  const before = await mysqlOffsets();
  const events = [
    h.customerRegistered(id, 'v1', `${id}@x.io`),
    ...[2, 3, 4, 5].map((v) => h.customerRenamed(id, `v${v}`)),
  ].map((e) => ({ ...e, eventId: randomUUID() }));
  await t.send(events);
  await settled();
  const after = await mysqlOffsets();
  const partition = [...after].find(([p, next]) => next - (before.get(p) ?? 0) === 5)?.[0] ?? -1;
  expect(partition).toBeGreaterThanOrEqual(0);
  return { events, partition, end: after.get(partition) ?? -1 };
}

const reapplied = (id: string, partition: number, end: number): Promise<boolean> =>
  waitFor(
    "MySQL's offset at the end again and the customer back",
    async () =>
      (await mysqlOffsets()).get(partition) === end && (await customer(id))?.name === 'v5',
    { timeoutMs: 60_000, intervalMs: 250 },
  );

it('a restarted sink re-applies from the offset stored in MySQL with no new record, and status showed the lag after it', async () => {
  const sink = await t.start();
  await t.send(
    ['c-1', 'c-2', 'c-3', 'c-4', 'c-5', 'c-6'].map((id) => ({
      ...h.customerRegistered(id, id, `${id}@x.io`),
      eventId: randomUUID(),
    })),
  );
  const { events, partition, end } = await fiveOnOnePartition('c-restore');
  await sink.stop();

  // MySQL restored from before the five: its offset 5 behind Kafka's committed one.
  await restoreBefore(partition, events);
  expect(await customer('c-restore')).toBeUndefined();

  const s = await readStatus(t.catalog, env);
  if (!s.sink.ok) throw new Error(s.sink.error);
  const restoredPartition = {
    topic,
    partition,
    end,
    mysqlOffset: end - 5,
    kafkaCommitted: end,
    lag: 5,
    offsetsDiffer: true,
  };
  expect(partitionOf(s.sink.value.partitions, partition)).toEqual(restoredPartition);
  expect(partitionOf(s.sink.value.partitions, 1 - partition)).toMatchObject({
    lag: 0,
    offsetsDiffer: false,
  });
  expect(s.sink.value).toMatchObject({ totalLag: 5, offsetsDiffer: 1 });
  const text = formatStatus(s);
  expect(text).toContain("5 records in all, after MySQL's offsets");
  expect(text).toMatch(new RegExp(` ${partition} +${end} +${end - 5} +${end} +5 +differs`));
  expect(text).toContain(
    "1 partitions where MySQL's and Kafka's committed offsets differ; sinks start from MySQL's",
  );
  let out = '';
  jest.spyOn(process.stdout, 'write').mockImplementation((chunk: unknown) => {
    out += String(chunk);
    return true;
  });
  await statusCli(['--json'], t.catalog, env);
  const json = JSON.parse(out) as { sink: { value: { partitions: PartitionLag[] } } };
  expect(partitionOf(json.sink.value.partitions, partition)).toEqual(restoredPartition);

  // Restarted with nothing new produced: it starts from MySQL's offset and re-applies the five.
  const again = await t.start();
  await reapplied('c-restore', partition, end);
  expect(await customer('c-restore')).toEqual({ name: 'v5', version: 5 });
  expect(await appliedEvents('c-restore')).toBe(5);
  await settled();
  await again.stop();
}, 240_000);

it('the sink that gets a partition at a rebalance starts from the offset stored in MySQL', async () => {
  const first = await t.start();
  const { events, partition, end } = await fiveOnOnePartition('c-rebalance');
  // MySQL moved back under the running sink, which does not notice: no record arrives.
  await restoreBefore(partition, events);
  const second = await t.start();
  await reapplied('c-rebalance', partition, end);
  expect(await appliedEvents('c-rebalance')).toBe(5);
  await settled();
  expect([first.state, second.state]).toEqual(['running', 'running']);
  await second.stop();
  await first.stop();
}, 240_000);
