/** `cqrs-sync status` against the local servers, with neither relay nor sink running. */
import { afterAll, beforeAll, afterEach, expect, it, jest } from '@jest/globals';
import { MongoClient } from 'mongodb';
import { customerEntries } from '../relay/testing.js';
import { sinkTestEnv, type SinkTestEnv } from '../sink/test-harness.js';
import { DemoHistory } from '../sink/testing.js';
import { testServers, uniqueName } from '../test/support/servers.js';
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
  await client
    .db(database)
    .collection('outbox')
    .insertMany(customerEntries(t.codec, ['s-1', 's-2'], 1, 3));
  const h = new DemoHistory();
  await t.send([
    h.customerRegistered('c-1', 'A', 'a@x.io'),
    h.customerRegistered('c-2', 'B', 'b@x.io'),
  ]);
  const env = { ...t.env, MONGODB_URI: servers.mongodbUri, RELAY_OUTBOX_DATABASE: database };

  const s = await readStatus(t.catalog, env);
  if (!s.relay.ok || !s.sink.ok || !s.parked.ok) throw new Error(JSON.stringify(s));
  expect(s.relay.value).toMatchObject({
    backlog: 6,
    lease: undefined,
    resumeTokenAgeMs: undefined,
  });
  expect(s.relay.value.oldestPendingAgeMs).toBeGreaterThanOrEqual(0);
  expect(s.sink.value.totalLag).toBe(2);
  expect(s.sink.value.partitions.length).toBe(t.catalog.topics().length * 2);
  expect(s.sink.value.deadLetters).toBe(0);
  expect(s.parked.value).toBe(0);

  const text = formatStatus(s);
  expect(text).toContain('6 pending');
  expect(text).toContain('never taken');
  expect(text).toContain('2 records in all');
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
