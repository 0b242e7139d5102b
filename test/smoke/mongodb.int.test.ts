import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { MongoClient, Timestamp } from 'mongodb';
import { testServers, uniqueName, waitFor } from '../support/servers.js';

const { mongodbUri, mongoKind } = testServers();
/** The harness started this stand-in (not one given by MONGODB_URI): it caps its oplog. */
const ownStandIn =
  mongoKind === 'stand-in' &&
  /mongodb: .*stand-in.*local/.test(process.env.CQRS_SYNC_SERVER_LINES ?? '');
let client: MongoClient;
let dbName: string;

beforeAll(async () => {
  client = new MongoClient(mongodbUri);
  await client.connect();
  dbName = uniqueName('smoke');
});
afterAll(async () => {
  await client.db(dbName).dropDatabase();
  await client.close();
});

it('delivers an insert to a change stream opened before it, with a resume token', async () => {
  const coll = client.db(dbName).collection<{ _id: string; n: number }>('outbox');
  const stream = coll.watch([], { maxAwaitTimeMS: 100 });
  try {
    await stream.tryNext(); // opens the cursor before the write
    await coll.insertOne({ _id: 'e1', n: 1 });
    const change = await waitFor('the insert event', () =>
      stream.tryNext().then((c) => c ?? undefined),
    );
    expect(change.operationType).toBe('insert');
    expect(change.operationType === 'insert' && change.fullDocument).toEqual({ _id: 'e1', n: 1 });
    expect(stream.resumeToken).toBeDefined();
  } finally {
    await stream.close();
  }
});

it('applies a conditional $set with $push, a fenced $pull and an arrayFilters $set to one document', async () => {
  // The single-document operations the write side and the relay are built on (ADR 0005).
  type Doc = { _id: string; version: number; fence: number; list: { id: string; s: string }[] };
  const coll = client.db(dbName).collection<Doc>('aggregate');
  await coll.insertOne({ _id: 'a', version: 1, fence: 0, list: [{ id: 'e1', s: 'pending' }] });
  const stale = await coll.updateOne({ _id: 'a', version: 0 }, { $set: { version: 2 } });
  expect(stale.matchedCount).toBe(0);
  await coll.updateOne(
    { _id: 'a', version: 1 },
    { $set: { version: 2 }, $push: { list: { $each: [{ id: 'e2', s: 'pending' }], $slice: -5 } } },
  );
  const fencedOut = await coll.updateOne({ _id: 'a', fence: 7 }, { $pull: { list: { id: 'e1' } } });
  expect(fencedOut.matchedCount).toBe(0);
  await coll.updateOne(
    { _id: 'a', fence: 0 },
    { $pull: { list: { id: { $in: ['e1'] } } }, $set: { fence: 1 } },
  );
  await coll.updateOne(
    { _id: 'a' },
    { $set: { 'list.$[e].s': 'failed' } },
    { arrayFilters: [{ 'e.id': 'e2' }] },
  );
  expect(await coll.findOne({ _id: 'a' })).toEqual({
    _id: 'a',
    version: 2,
    fence: 1,
    list: [{ id: 'e2', s: 'failed' }],
  });
});

(ownStandIn ? it : it.skip)(
  "caps the harness's stand-in's oplog as a real mongod's is capped: old entries go",
  async () => {
    const oplog = client.db('local').collection('oplog.rs');
    const old = new Timestamp({ t: Math.floor(Date.now() / 1000) - 3600, i: 1 });
    await oplog.insertOne({ ts: old, op: 'n', ns: '', o: { msg: 'an hour old' } });
    await waitFor(
      'the trimmer to delete it',
      async () => (await oplog.countDocuments({ ts: old })) === 0,
      { timeoutMs: 15_000 },
    );
  },
);
