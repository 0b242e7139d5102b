import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { MongoClient } from 'mongodb';
import { itNeedsRealMongod, testServers, uniqueName, waitFor } from '../support/servers.js';

const { mongodbUri } = testServers();
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

itNeedsRealMongod('commits two writes in one transaction, or neither', async () => {
  const coll = client.db(dbName).collection<{ _id: string }>('tx');
  await coll.insertOne({ _id: 'exists' });
  const session = client.startSession();
  try {
    await expect(
      session.withTransaction(async () => {
        await coll.insertOne({ _id: 'first' }, { session });
        await coll.insertOne({ _id: 'exists' }, { session }); // duplicate key aborts both
      }),
    ).rejects.toThrow(/duplicate key/);
    expect(await coll.countDocuments({ _id: 'first' })).toBe(0);
  } finally {
    await session.endSession();
  }
});
