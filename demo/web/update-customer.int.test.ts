/**
 * `PATCH /api/customers/:id` is one command (`UpdateCustomer`) against the real write store
 * (a real mongod when the run has one, else the harness's mongo-java-server stand-in): a 409 means nothing of the request was saved, and it names
 * the version the client sent. The query side and the pipeline panel are fakes (nothing here reads
 * them).
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { MongoClient, type Db } from 'mongodb';
import { pino } from 'pino';
import { testServers, uniqueName } from '../../test/support/servers.js';
import { MongoWriteStore } from '../../write/mongo-store.js';
import type { AggregateDocument } from '../../write/outbox.js';
import { aggregateCollectionName } from '../../write/outbox.js';
import { createDemoApp, type DemoApp } from './app.js';
import { appOptions } from './testing.js';

let client: MongoClient;
let db: Db;
let app: DemoApp;
let base: string;

beforeAll(async () => {
  client = new MongoClient(testServers().mongodbUri);
  await client.connect();
  const database = uniqueName('demo_web_update');
  db = client.db(database);
  const logger = pino({ level: 'silent' });
  const store = new MongoWriteStore({
    client,
    database,
    logger,
  });
  await store.init(['Customer']);
  app = createDemoApp(await appOptions(store, { logger }));
  base = await app.listen(0, '127.0.0.1');
});

afterAll(async () => {
  await app.close();
  await db.dropDatabase().catch(() => undefined);
  await client.close();
});

async function call(
  method: string,
  path: string,
  body: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

async function register(customerId: string): Promise<void> {
  const r = await call('POST', '/api/customers', {
    customerId,
    name: 'Original',
    email: 'original@example.org',
  });
  expect(r.status).toBe(202);
}

/** What the write store holds: the customer's document, its state and its outbox entries (no relay
 * runs here, so every event is still in it). */
async function stored(customerId: string) {
  const doc = await db
    .collection<AggregateDocument>(aggregateCollectionName('Customer'))
    .findOne({ _id: customerId });
  const state = doc?.state as { name?: string; email?: string } | null | undefined;
  return {
    version: doc?.version,
    name: state?.name,
    email: state?.email,
    events: (doc?.outbox ?? []).map((e) => `${e.version}:${e.type}`),
  };
}

// Reported: PATCH {expectedVersion, name, email} ran as two commands (rename, then change email);
// in 14 of 40 races with another edit it answered 409 although the rename was saved, and the 409
// said "you saw version 2" when the client had sent 1.
it('a 409 saves nothing of the request and names the version the client sent (racing an edit without a version)', async () => {
  for (let round = 0; round < 30; round++) {
    const id = uniqueName('c').replace(/_/g, '-');
    await register(id);
    const [versioned, other] = await Promise.all([
      call('PATCH', `/api/customers/${id}`, {
        expectedVersion: 1,
        name: 'Versioned',
        email: 'versioned@example.org',
      }),
      call('PATCH', `/api/customers/${id}`, { email: 'other@example.org' }),
    ]);
    expect(other.status).toBe(202);
    const s = await stored(id);
    if (versioned.status === 409) {
      expect(versioned.json.error).toBe('concurrency_conflict');
      expect(versioned.json.message).toContain('you saw version 1');
      expect(versioned.json.message).not.toContain('you saw version 2');
      // Nothing of it: the other edit alone, one event after the registration.
      expect(s).toEqual({
        version: 2,
        name: 'Original',
        email: 'other@example.org',
        events: ['1:CustomerRegistered', '2:CustomerEmailChanged'],
      });
    } else {
      expect(versioned.status).toBe(202);
      // All of it, in one commit (versions 2 and 3), then the other edit.
      expect(versioned.json).toMatchObject({
        version: 3,
        commands: [{ command: 'UpdateCustomer' }],
      });
      expect(s).toEqual({
        version: 4,
        name: 'Versioned',
        email: 'other@example.org',
        events: [
          '1:CustomerRegistered',
          '2:CustomerRenamed',
          '3:CustomerEmailChanged',
          '4:CustomerEmailChanged',
        ],
      });
    }
  }
}, 120_000);

it('of two edits from the same version one wins whole, the other is a 409 that saved nothing', async () => {
  for (let round = 0; round < 20; round++) {
    const id = uniqueName('c').replace(/_/g, '-');
    await register(id);
    const edits = [
      { expectedVersion: 1, name: 'Anna', email: 'anna@example.org' },
      { expectedVersion: 1, name: 'Bert', email: 'bert@example.org' },
    ];
    const answers = await Promise.all(edits.map((e) => call('PATCH', `/api/customers/${id}`, e)));
    expect(answers.map((a) => a.status).sort()).toEqual([202, 409]);
    const winner = edits[answers.findIndex((a) => a.status === 202)];
    const loser = answers.find((a) => a.status === 409);
    expect(loser?.json.message).toContain('you saw version 1');
    expect(loser?.json.message).toContain('nothing was saved');
    expect(await stored(id)).toEqual({
      version: 3,
      name: winner?.name,
      email: winner?.email,
      events: ['1:CustomerRegistered', '2:CustomerRenamed', '3:CustomerEmailChanged'],
    });
  }
}, 120_000);

it('a name or an email alone is one event; the same values again raise nothing', async () => {
  const id = uniqueName('c').replace(/_/g, '-');
  await register(id);
  const renamed = await call('PATCH', `/api/customers/${id}`, { expectedVersion: 1, name: 'New' });
  expect(renamed).toMatchObject({ status: 202, json: { version: 2 } });
  const same = await call('PATCH', `/api/customers/${id}`, {
    expectedVersion: 2,
    name: 'New',
    email: 'original@example.org',
  });
  expect(same.status).toBe(202);
  expect(same.json).toMatchObject({
    version: 2,
    commands: [{ applied: false, reason: 'no_events' }],
  });
  const bad = await call('PATCH', `/api/customers/${id}`, { expectedVersion: 2, email: 'nope' });
  expect(bad.status).toBe(400);
  expect(await stored(id)).toMatchObject({ version: 2, name: 'New' });
});
