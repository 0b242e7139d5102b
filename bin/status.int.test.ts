/** `cqrs-sync status` against the local servers, with neither relay nor sink running. */
import { afterAll, beforeAll, afterEach, expect, it, jest } from '@jest/globals';
import { MongoClient } from 'mongodb';
import { MongoLeaseStore, MongoOutboxSource } from '../relay/mongo-outbox.js';
import { appendEntries, customerEntries } from '../relay/testing.js';
import pino from 'pino';
import { sinkCli } from '../sink/cli.js';
import { MysqlStore } from '../sink/mysql-store.js';
import { sinkTestEnv, type SinkTestEnv } from '../sink/test-harness.js';
import { ShopHistory, testProjections } from '../sink/testing.js';
import { testServers, uniqueName, waitFor } from '../test/support/servers.js';
import { formatStatus, readStatus, statusCli } from './status.js';

const servers = testServers();
let t: SinkTestEnv;
let client: MongoClient;

beforeAll(async () => {
  t = await sinkTestEnv('status', { partitions: 2 });
  client = new MongoClient(servers.mongodbUri);
  await client.connect();
}, 120_000);
afterAll(async () => {
  await client.close();
  await t.close();
});
afterEach(() => {
  jest.restoreAllMocks();
});

it('reads backlog, lag per partition, dead letters and parked aggregates from the servers', async () => {
  const database = uniqueName('status');
  const db = client.db(database);
  // Pending entries in two customers' documents, one a minute old; a third customer held.
  await appendEntries(db, [
    ...customerEntries(t.codec, ['s-1'], 1, 3).map((e) => ({
      ...e,
      occurredAt: new Date(Date.now() - 60_000),
    })),
    ...customerEntries(t.codec, ['s-2'], 1, 3),
    ...customerEntries(t.codec, ['s-3'], 1, 1).map((e) => ({ ...e, status: 'failed' })),
  ]);
  const h = new ShopHistory();
  await t.send([
    h.customerRegistered('c-1', 'A', 'a@x.io'),
    h.customerRegistered('c-2', 'B', 'b@x.io'),
  ]);
  const env = { ...t.env, MONGODB_URI: servers.mongodbUri, RELAY_OUTBOX_DATABASE: database };

  const s = await readStatus(t.catalog, env);
  if (!s.relay.ok || !s.sink.ok || !s.parked.ok) throw new Error(JSON.stringify(s));
  expect(s.relay.value).toMatchObject({
    database,
    collections: { Customer: 'customer', Order: 'order' },
    backlog: 6,
    held: ['Customer/s-3'],
    lease: undefined,
    resumeTokenAgeMs: undefined,
  });
  expect(s.relay.value.oldestPendingAgeMs).toBeGreaterThanOrEqual(60_000);
  expect(s.sink.value.totalLag).toBe(2);
  expect(s.sink.value.partitions.length).toBe(t.catalog.topics().length * 2);
  expect(s.deadLetters).toEqual({ ok: true, value: 0 });
  expect(s.parked.value).toBe(0);

  const text = formatStatus(s);
  expect(text).toContain(`in the aggregate documents of ${database}.customer, ${database}.order`);
  expect(text).toMatch(/6 pending, oldest \d+\.\d s old/);
  expect(text).toContain('1 aggregates behind a failed entry (relay release <id>): Customer/s-3');
  expect(text).toContain('never taken');
  expect(text).toContain("2 records in all, after MySQL's offsets");
  expect(text).toContain("MySQL's and Kafka's committed offsets agree");
  expect(text).toContain('0 aggregates');

  let out = '';
  jest.spyOn(process.stdout, 'write').mockImplementation((chunk: unknown) => {
    out += String(chunk);
    return true;
  });
  expect(await statusCli(['--json'], t.catalog, env)).toBe(0);
  expect((JSON.parse(out) as { relay: { value: { backlog: number } } }).relay.value.backlog).toBe(
    6,
  );

  // A relay ran: the lease and the resume token as it left them.
  const lease = await new MongoLeaseStore(db, 'outbox').tryAcquire('relay-x', 60_000);
  await new MongoOutboxSource(db, { collections: { Customer: 'customer' } }).saveResumeToken({
    customer: { _data: '00' },
  });
  const later = await readStatus(t.catalog, env);
  if (!later.relay.ok) throw new Error(later.relay.error);
  expect(later.relay.value.lease).toMatchObject({ owner: 'relay-x', token: lease?.token });
  expect(later.relay.value.resumeTokenAgeMs).toBeGreaterThanOrEqual(0);
  const text2 = formatStatus(later);
  expect(text2).toMatch(/held by relay-x, fencing token 1, renews within \d+\.\d s/);
  expect(text2).toMatch(/resume token +saved \d+\.\d s ago/);
}, 60_000);

it("shows MySQL's and Kafka's committed offset per partition, lag after MySQL's, and flags where they differ", async () => {
  const h = new ShopHistory();
  await t.send([
    h.customerRegistered('o-1', 'A', 'a@x.io'),
    h.customerRegistered('o-2', 'B', 'b@x.io'),
  ]);
  const topic = t.catalog.event('CustomerRegistered').topic;
  const group = uniqueName('status_offsets');
  const env = { ...t.env, SINK_GROUP_ID: group, MONGODB_URI: servers.mongodbUri };
  const admin = t.kafka.admin();
  await admin.connect();
  const store = new MysqlStore({ connection: t.db.sinkUrl });
  try {
    const ends = new Map(
      (await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, Number(p.high)]),
    );
    const end = (p: number): number => ends.get(p) ?? -1;
    // Partition 0: MySQL one behind Kafka (a restored database). Partition 1: only Kafka has one.
    await store.setOffsets(group, [{ topic, partition: 0, next: String(end(0) - 1) }]);
    await admin.setOffsets({
      groupId: group,
      topic,
      partitions: [
        { partition: 0, offset: String(end(0)) },
        { partition: 1, offset: String(end(1)) },
      ],
    });
    const s = await readStatus(t.catalog, env);
    if (!s.sink.ok) throw new Error(s.sink.error);
    const { partitions } = s.sink.value;
    const of = (p: number) => partitions.find((x) => x.topic === topic && x.partition === p);
    expect(of(0)).toEqual({
      topic,
      partition: 0,
      end: end(0),
      mysqlOffset: end(0) - 1,
      kafkaCommitted: end(0),
      lag: 1,
      offsetsDiffer: true,
    });
    expect(of(1)).toEqual({
      topic,
      partition: 1,
      end: end(1),
      mysqlOffset: undefined,
      kafkaCommitted: end(1),
      lag: 0,
      offsetsDiffer: true,
    });
    expect(s.sink.value.offsetsDiffer).toBe(2);
    expect(s.sink.value.mysqlOffsetsError).toBeUndefined();
    const text = formatStatus(s);
    expect(text).toMatch(/topic +partition +end +mysql +kafka +lag/);
    expect(text).toMatch(new RegExp(` 1 +${end(1)} +- +${end(1)} +0 +differs`));
    expect(text).toContain("2 partitions where MySQL's and Kafka's committed offsets differ");

    // MySQL unreachable: Kafka's committed offsets still shown, lag after them, and why.
    const blind = await readStatus(t.catalog, {
      ...env,
      MYSQL_SINK_URL: 'mysql://nobody:x@127.0.0.1:1/none',
    });
    if (!blind.sink.ok) throw new Error(blind.sink.error);
    expect(blind.sink.value.mysqlOffsetsError).toEqual(expect.any(String));
    expect(
      blind.sink.value.partitions.find((x) => x.topic === topic && x.partition === 0),
    ).toMatchObject({
      mysqlOffset: undefined,
      kafkaCommitted: end(0),
      lag: 0,
      offsetsDiffer: false,
    });
    expect(blind.parked.ok).toBe(false);
    const blindText = formatStatus(blind);
    expect(blindText).toContain("after Kafka's committed offsets");
    expect(blindText).toMatch(
      /offsets +MySQL's unreadable \(.+\): lag is from Kafka's committed offsets/,
    );
  } finally {
    await store.close();
    await admin.disconnect();
  }
}, 60_000);

it('says which section cannot be read, and exits 1', async () => {
  const s = await readStatus(t.catalog, {
    ...t.env,
    MONGODB_URI: 'mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300',
  });
  expect(s.relay.ok).toBe(false);
  expect(s.sink.ok).toBe(true);
  expect(formatStatus(s)).toMatch(/relay\n {2}unreachable: /);
  let out = '';
  jest.spyOn(process.stdout, 'write').mockImplementation((chunk: unknown) => {
    out += String(chunk);
    return true;
  });
  expect(await statusCli([], t.catalog, { ...t.env, MONGODB_URI: 'not-a-url' })).toBe(1);
  expect(out).toContain('MONGODB_URI');
  expect(await statusCli(['--help'], t.catalog, {})).toBe(0);
  expect(out).toContain('Usage: cqrs-sync status');
}, 60_000);

it('reports a resume token document whose "at" is not a date, and reads the rest', async () => {
  const database = uniqueName('status-token');
  const db = client.db(database);
  const env = { ...t.env, MONGODB_URI: servers.mongodbUri, RELAY_OUTBOX_DATABASE: database };
  for (const at of ['yesterday', 17, null, { $date: 'x' }]) {
    await db
      .collection<{ _id: string }>('relay_state')
      .updateOne(
        { _id: 'resume:outbox' },
        { $set: { value: { customer: { _data: '00' } }, at } },
        { upsert: true },
      );
    const s = await readStatus(t.catalog, env);
    if (!s.relay.ok) throw new Error(s.relay.error);
    expect(s.relay.value.resumeTokenAgeMs).toBeUndefined();
    expect(s.relay.value.resumeTokenError).toContain(`"at" is ${JSON.stringify(at)}, not a date`);
    expect(formatStatus(s)).toMatch(
      /resume token +unreadable: resume token document resume:outbox/,
    );
  }
  let out = '';
  jest.spyOn(process.stdout, 'write').mockImplementation((chunk: unknown) => {
    out += String(chunk);
    return true;
  });
  expect(await statusCli([], t.catalog, env)).toBe(0);
  expect(out).toContain('backlog        0 pending');
}, 60_000);

it('counts dead letters as dlq list does: held rows of kind dead, not dead-letter topic records', async () => {
  const env = { ...t.env, MONGODB_URI: servers.mongodbUri, RELAY_OUTBOX_DATABASE: uniqueName('s') };
  const list = async (): Promise<string> => {
    const out: string[] = [];
    await sinkCli(
      ['dlq', 'list'],
      { catalog: t.catalog, projections: testProjections },
      { env, out: (l) => out.push(l), err: () => undefined, logger: pino({ level: 'silent' }) },
    );
    return out.join('\n');
  };
  const sink = await t.start();
  const h = new ShopHistory();
  // Too long a name: dead-lettered (held in MySQL and copied to the dead-letter topic).
  await t.send([h.customerRegistered('c-dead', 'y'.repeat(400), 'd@x.io')]);
  await waitFor(
    'dead-lettered',
    async () =>
      (await t.db.query("SELECT id FROM cqrs_sink_held WHERE kind = 'dead'")).length === 1,
  );
  await sink.stop();
  const one = await readStatus(t.catalog, env);
  expect(one.deadLetters).toEqual({ ok: true, value: 1 });
  expect(await list()).toMatch(/^1 dead letter/);
  expect(formatStatus(one)).toMatch(
    new RegExp(`dead letters +1 held \\(sink dlq list\\); copies on ${t.dlt}`),
  );
  // Dropped: the topic keeps its copy, but nothing is dead-lettered any more.
  const [row] = await t.db.query<{ id: number }>(
    "SELECT id FROM cqrs_sink_held WHERE kind = 'dead'",
  );
  await sinkCli(
    ['dlq', 'drop', String(row?.id)],
    { catalog: t.catalog, projections: testProjections },
    { env, out: () => undefined, err: () => undefined, logger: pino({ level: 'silent' }) },
  );
  const none = await readStatus(t.catalog, env);
  expect(none.deadLetters).toEqual({ ok: true, value: 0 });
  expect(await list()).toMatch(/^0 dead letter/);
  expect(formatStatus(none)).toMatch(/dead letters +0 held/);
}, 90_000);
