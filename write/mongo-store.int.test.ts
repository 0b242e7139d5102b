/**
 * The MongoDB write store on a real server (the stand-in the harness runs, or a real mongod when
 * MONGODB_URI / MONGOD_BIN give one): a commit is one conditional write of the aggregate's one
 * document, idempotent by command id, bounded by the relay's progress.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { MongoClient, type Db } from 'mongodb';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { RELAY_INDEXES } from '../relay/mongo-indexes.js';
import { MongoOutboxSource } from '../relay/mongo-outbox.js';
import type { EventCodec } from '../schemas/codec.js';
import { isPipelineError } from '../schemas/errors.js';
import type { AggregateDocument } from '../schemas/outbox-entry.js';
import { testServers, uniqueName } from '../test/support/servers.js';
import type { CommandResult } from './command-handler.js';
import type { AggregateLimits } from './limits.js';
import { MongoWriteStore } from './mongo-store.js';
import { profileCodec, profileCommands } from './testing.js';
import { rejection } from '../test/support/rejection.js';

const servers = testServers();
const logger = pino({ level: 'silent' });
let client: MongoClient;
let codec: EventCodec;

beforeAll(async () => {
  client = new MongoClient(servers.mongodbUri);
  await client.connect();
  codec = await profileCodec();
});
afterAll(async () => {
  await client.close();
});

function setup(
  opts: { limits?: Partial<AggregateLimits>; metrics?: Registry; retries?: number } = {},
) {
  const database = uniqueName('write');
  const store = new MongoWriteStore({
    client,
    database,
    logger,
    ...(opts.limits ? { limits: opts.limits } : {}),
    ...(opts.metrics ? { metrics: opts.metrics } : {}),
  });
  const db = client.db(database);
  const profiles = db.collection<AggregateDocument>('profile');
  const document = async (id: string): Promise<AggregateDocument> => {
    const d = await profiles.findOne({ _id: id }, { promoteBuffers: true });
    if (!d) throw new Error(`no document ${id}`);
    return d;
  };
  const cmd = profileCommands(store, codec, { maxConflictRetries: opts.retries ?? 3 });
  return { store, db, profiles, document, cmd };
}

/** What the relay does once it published: scan, then mark every pending entry relayed. */
async function relayEverything(db: Db, fence: number): Promise<number> {
  const source = new MongoOutboxSource(db, { collections: { Profile: 'profile' } });
  await source.ensureIndexes();
  let marked = 0;
  for (let page = await source.scanPending(undefined, 1000); ;) {
    marked += await source.markRelayed(
      page.entries.map((e) => e.ref),
      fence,
    );
    if (!page.next) return marked;
    page = await source.scanPending(page.next, 1000);
  }
}

const created = (id: string, commandId = `create-${id}`) => ({
  commandId,
  profileId: id,
  name: 'Ann',
  email: 'ann@x.io',
});

describe('a commit', () => {
  it('is one document: state, version, outbox entries and the command record land together, in no other collection', async () => {
    const { db, document, cmd } = setup();
    const c1 = await cmd.CreateProfile(created('p1', 'c1'));
    const c2 = await cmd.RenameProfile({ commandId: 'c2', profileId: 'p1', name: 'Bea' });
    expect(c2).toMatchObject({ applied: true, aggregateType: 'Profile', version: 2 });
    const d = await document('p1');
    expect(d).toMatchObject({
      _id: 'p1',
      aggregateType: 'Profile',
      version: 2,
      state: { id: 'p1', name: 'Bea', email: 'ann@x.io' },
      deleted: false,
      relayedVersion: 0,
      relayedAt: null,
      relayFence: 0,
    });
    expect(d.outbox.map((e) => [e.version, e.type, e.status, e.commandId, e.eventId])).toEqual([
      [1, 'ProfileCreated', 'pending', 'c1', c1.eventIds[0]],
      [2, 'ProfileRenamed', 'pending', 'c2', c2.eventIds[0]],
    ]);
    expect((await codec.decode(d.outbox[1]?.payload ?? Buffer.alloc(0))).value).toEqual({
      event: { name: 'Bea' },
      state: { id: 'p1', name: 'Bea', email: 'ann@x.io' },
    });
    expect(d.commands.map((c) => [c.commandId, c.version, c.eventIds])).toEqual([
      ['c1', 1, c1.eventIds],
      ['c2', 2, c2.eventIds],
    ]);
    const names = (await db.listCollections().toArray()).map((c) => c.name);
    expect(names).toEqual(['profile']);
  });

  it('of a deleting event keeps the document with state null, deleted true and its version', async () => {
    const { document, cmd } = setup();
    await cmd.CreateProfile(created('p'));
    await cmd.DeleteProfile({ commandId: 'd', profileId: 'p' });
    expect(await document('p')).toMatchObject({ version: 2, state: null, deleted: true });
    const e = await rejection(cmd.RenameProfile({ commandId: 'r', profileId: 'p', name: 'X' }));
    expect(isPipelineError(e, 'aggregate_not_found')).toBe(true);
  });

  it('on a version that changed since the load throws a retriable concurrency_conflict and writes nothing', async () => {
    const { document, cmd } = setup();
    await cmd.CreateProfile(created('p'));
    // Two writers loaded version 1; the second one's save must fail and write nothing.
    const first = await cmd.repository.load('p');
    const second = await cmd.repository.load('p');
    first.rename('B');
    second.rename('C');
    expect(await cmd.repository.save(first, { commandId: 'w1' })).toMatchObject({
      applied: true,
      version: 2,
    });
    const e = await rejection(cmd.repository.save(second, { commandId: 'w2' }));
    expect(isPipelineError(e, 'concurrency_conflict') && e.retriable).toBe(true);
    const d = await document('p');
    expect(d).toMatchObject({ version: 2, state: { name: 'B' } });
    expect(d.outbox).toHaveLength(2);
    expect(d.commands.map((c) => c.commandId)).toEqual(['create-p', 'w1']);
  });

  it('of a new aggregate someone else created meanwhile is a concurrency_conflict; by a repeat of the same command, a duplicate', async () => {
    const { document, cmd } = setup();
    const a = await cmd.repository.load('n');
    const b = await cmd.repository.load('n');
    const c = await cmd.repository.load('n');
    a.create('A', 'a@x.io');
    b.create('B', 'b@x.io');
    c.create('A', 'a@x.io');
    expect(await cmd.repository.save(a, { commandId: 'make-n' })).toMatchObject({ applied: true });
    const e = await rejection(cmd.repository.save(b, { commandId: 'other' }));
    expect(isPipelineError(e, 'concurrency_conflict') && e.retriable).toBe(true);
    expect((e as Error).message).toMatch(/created concurrently/);
    expect(await cmd.repository.save(c, { commandId: 'make-n' })).toEqual({
      applied: false,
      reason: 'duplicate_command',
    });
    const d = await document('n');
    expect(d).toMatchObject({ version: 1, state: { name: 'A' } });
    expect(d.outbox).toHaveLength(1);
  });

  it('appends only: a relay mark between the load and the commit is not undone by the commit', async () => {
    const { db, document, cmd } = setup();
    await cmd.CreateProfile(created('p'));
    const loaded = await cmd.repository.load('p');
    loaded.rename('B');
    // The relay publishes version 1 and removes it ($pull) after our load, before our commit.
    expect(await relayEverything(db, 1)).toBe(1);
    expect(await cmd.repository.save(loaded, { commandId: 'r' })).toMatchObject({ applied: true });
    const d = await document('p');
    expect(d.outbox.map((e) => e.version)).toEqual([2]);
    expect(d).toMatchObject({ version: 2, relayedVersion: 1, relayFence: 1 });
  });

  it('appended after the relay read the document is not dropped by its mark', async () => {
    const { db, document, cmd } = setup();
    await cmd.CreateProfile(created('p'));
    const source = new MongoOutboxSource(db, { collections: { Profile: 'profile' } });
    const page = await source.scanPending(undefined, 100);
    await cmd.RenameProfile({ commandId: 'r', profileId: 'p', name: 'B' });
    await source.markRelayed(
      page.entries.map((e) => e.ref),
      1,
    );
    expect((await document('p')).outbox.map((e) => e.version)).toEqual([2]);
  });
});

describe('a repeated commandId', () => {
  it('returns the first outcome and writes nothing', async () => {
    const { document, cmd } = setup();
    const input = created('p', 'same');
    const first = await cmd.CreateProfile(input);
    expect(await cmd.CreateProfile(input)).toEqual({
      ...first,
      applied: false,
      reason: 'duplicate',
    });
    const rename = { commandId: 'again', profileId: 'p', name: 'B' };
    const r1 = await cmd.RenameProfile(rename);
    expect(await cmd.RenameProfile(rename)).toEqual({ ...r1, applied: false, reason: 'duplicate' });
    expect(await document('p')).toMatchObject({ version: 2 });
  });

  /** Twenty callers at once, one id: each result and what the document holds. */
  async function repeatedAtOnce(run: () => Promise<CommandResult>): Promise<CommandResult[]> {
    const results = await Promise.all(Array.from({ length: 20 }, run));
    expect(results.filter((r) => r.applied)).toHaveLength(1);
    expect(results.filter((r) => !r.applied && r.reason === 'duplicate')).toHaveLength(19);
    const eventIds = results[0]?.eventIds;
    expect(eventIds).toHaveLength(1);
    for (const r of results) expect(r.eventIds).toEqual(eventIds);
    return results;
  }

  it('sent twenty times at once to create an aggregate is applied exactly once, and every caller gets its eventIds', async () => {
    const { document, cmd } = setup({ retries: 20 });
    const input = created('p', 'create-once');
    const [r] = await repeatedAtOnce(() => cmd.CreateProfile(input));
    const d = await document('p');
    expect(d).toMatchObject({ version: 1 });
    expect(d.outbox.map((e) => e.eventId)).toEqual(r?.eventIds);
    expect(d.commands.map((c) => c.commandId)).toEqual(['create-once']);
  });

  it('sent twenty times at once to update an aggregate is applied exactly once, and every caller gets its eventIds', async () => {
    const { document, cmd } = setup({ retries: 20 });
    await cmd.CreateProfile(created('p'));
    const input = { commandId: 'rename-once', profileId: 'p', name: 'B' };
    const [r] = await repeatedAtOnce(() => cmd.RenameProfile(input));
    const d = await document('p');
    expect(d).toMatchObject({ version: 2, state: { name: 'B' } });
    expect(d.outbox.map((e) => e.eventId).slice(1)).toEqual(r?.eventIds);
    expect(d.commands.map((c) => c.commandId)).toEqual(['create-p', 'rename-once']);
  });

  it('is recognised among the aggregate last commandIdsKept (5) commands; the 6th-newest runs again', async () => {
    const { document, cmd } = setup({ limits: { commandIdsKept: 5 } });
    await cmd.CreateProfile(created('p', 'k0'));
    for (let i = 1; i <= 5; i++) {
      await cmd.RenameProfile({ commandId: `k${i}`, profileId: 'p', name: `N${i}` });
    }
    expect((await document('p')).commands.map((c) => c.commandId)).toEqual([
      'k1',
      'k2',
      'k3',
      'k4',
      'k5',
    ]);
    // k1 is the oldest one kept: a repeat.
    expect(await cmd.RenameProfile({ commandId: 'k1', profileId: 'p', name: 'N1' })).toMatchObject({
      applied: false,
      reason: 'duplicate',
      version: 2,
    });
    // k0 fell out of the window: it runs again (the create then fails on its own rule).
    const e = await rejection(cmd.CreateProfile(created('p', 'k0')));
    expect(isPipelineError(e, 'domain_rule_violated')).toBe(true);
    // A rename that fell out runs again and applies.
    await cmd.RenameProfile({ commandId: 'k6', profileId: 'p', name: 'N6' });
    expect(await cmd.RenameProfile({ commandId: 'k1', profileId: 'p', name: 'N1' })).toMatchObject({
      applied: true,
      version: 8,
    });
    expect((await document('p')).version).toBe(8);
  });
});

describe('backpressure', () => {
  it('refuses with a retriable relay_behind past maxUnrelayedEntries (3), writes nothing, counts it; after the relay marked the entries, the command succeeds', async () => {
    const metrics = new Registry();
    const { db, document, cmd } = setup({ limits: { maxUnrelayedEntries: 3 }, metrics });
    await cmd.CreateProfile(created('p'));
    await cmd.RenameProfile({ commandId: 'r2', profileId: 'p', name: 'B' });
    await cmd.RenameProfile({ commandId: 'r3', profileId: 'p', name: 'C' });
    const before = await document('p');
    const refused = { commandId: 'r4', profileId: 'p', name: 'D' };
    for (let i = 0; i < 2; i++) {
      const e = await rejection(cmd.RenameProfile(refused));
      expect(isPipelineError(e, 'relay_behind') && e.retriable).toBe(true);
      expect(e).toMatchObject({
        context: { aggregateType: 'Profile', aggregateId: 'p', unrelayedEntries: 3 },
      });
      expect((e as Error).message).toMatch(/relay has not published/);
    }
    expect(await document('p')).toEqual(before);
    const counter = await metrics.getSingleMetric('cqrs_sync_write_refused_total')?.get();
    expect(counter?.values).toEqual([
      { labels: { aggregate_type: 'Profile', reason: 'relay_behind' }, value: 2 },
    ]);

    expect(await relayEverything(db, 1)).toBe(3);
    expect(await cmd.RenameProfile(refused)).toMatchObject({ applied: true, version: 4 });
    const d = await document('p');
    expect(d).toMatchObject({ version: 4, state: { name: 'D' }, relayedVersion: 3 });
    expect(d.outbox.map((e) => e.version)).toEqual([4]);
  });

  it('refuses past maxUnrelayedBytes too', async () => {
    const { profiles, cmd } = setup({ limits: { maxUnrelayedBytes: 100 } });
    await cmd.CreateProfile(created('p'));
    const e = await rejection(
      cmd.RenameProfile({ commandId: 'big', profileId: 'p', name: 'x'.repeat(200) }),
    );
    expect(isPipelineError(e, 'relay_behind')).toBe(true);
    expect(await profiles.countDocuments({ 'commands.commandId': 'big' })).toBe(0);
  });
});

describe('the store', () => {
  it("creates the stand-in's {_id, version} index (only there: a real server finds the document by _id)", async () => {
    const { store, profiles } = setup();
    await store.init(['Profile']);
    await store.init(['Profile']);
    const names = (await profiles.indexes()).map((i) => i.name);
    if (servers.mongoKind === 'stand-in') expect(names).toContain('stand_in_id_version');
    else expect(names).not.toContain('stand_in_id_version');
  });

  it("creates none of the relay's indexes, and neither side's start changes the other's", async () => {
    const { store, db, profiles } = setup();
    await store.init(['Profile']);
    const names = async (): Promise<string[]> =>
      (await profiles.indexes()).map((i) => String(i.name)).sort();
    const writeOnly = await names();
    expect(writeOnly).not.toContain(RELAY_INDEXES.pending);
    expect(writeOnly).not.toContain(RELAY_INDEXES.standInFence);
    const relay = new MongoOutboxSource(db, { collections: { Profile: 'profile' } });
    await relay.ensureIndexes();
    const both = await names();
    expect(both).toEqual(expect.arrayContaining([...writeOnly, RELAY_INDEXES.pending]));
    // Restarts in either order leave the same indexes with the same settings.
    const specs = await profiles.indexes();
    await relay.ensureIndexes();
    await new MongoWriteStore({ client, database: db.databaseName, logger }).init(['Profile']);
    expect(await profiles.indexes()).toEqual(specs);
  });

  it('reports an unreachable server as a retriable database_unavailable', async () => {
    const down = new MongoClient('mongodb://127.0.0.1:9/', { serverSelectionTimeoutMS: 300 });
    try {
      const store = new MongoWriteStore({ client: down, database: uniqueName('down') });
      const e = await rejection(store.load('Profile', 'p'));
      expect(isPipelineError(e, 'database_unavailable') && e.retriable).toBe(true);
      const e2 = await rejection(profileCommands(store, codec).CreateProfile(created('p')));
      expect(isPipelineError(e2, 'database_unavailable')).toBe(true);
    } finally {
      await down.close();
    }
  });
});
