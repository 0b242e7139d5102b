/**
 * The applier (apply.ts) over the in-memory read-model store: a poison event found by replaying its
 * batch event by event, dead-lettered and its aggregate parked while the rest applies; re-drive and
 * drop of parked events; duplicates and stale versions; retriable failures roll back; gap expiry.
 * What MySQL decides (locks, constraint errors, two consumers) is in the int tests.
 */
import { beforeEach, describe, expect, it } from '@jest/globals';
import type { EventCodec } from '../schemas/codec.js';
import { toHeaders } from '../schemas/envelope.js';
import { isPipelineError } from '../schemas/errors.js';
import { profileCodec } from '../write/testing.js';
import { Applier } from './apply.js';
import { MemoryReadModelStore, type RenderedStatement } from './fixtures/memory-store.js';
import type { RawRecord } from './planner.js';
import type { DeadLetter } from './ports.js';
import { defineProjection, tableProjection } from './projection.js';

const GROUP = 'g';
const profiles = tableProjection({
  aggregateType: 'Profile',
  table: 'profiles',
  columns: { name: 'state.name', email: 'state.email' },
});
/** One statement per event, so that a test can make one event's fail. */
const audit = defineProjection({
  name: 'audit',
  handles: ['Profile'],
  tables: ['audit'],
  apply: (e, { sql, table }) =>
    sql`INSERT INTO ${table('audit')} (event_id) VALUES (${e.metadata.eventId})`,
});

let codec: EventCodec;
let store: MemoryReadModelStore;
let applier: Applier;
let letters: DeadLetter[];
/** Event ids whose statement fails as MySQL refuses a value (not retriable)… */
let poison: Set<string>;
/** …or as a deadlock does (retriable). */
let deadlocked: Set<string>;
let offset = 0;

const failing = (s: RenderedStatement): void => {
  const id = String(s.params[0]);
  if (poison.has(id)) {
    throw Object.assign(new Error('Data too long'), { errno: 1406, sqlState: '22001' });
  }
  if (deadlocked.has(id)) throw Object.assign(new Error('Deadlock'), { errno: 1213 });
};

beforeEach(async () => {
  codec = await profileCodec();
  poison = new Set();
  deadlocked = new Set();
  letters = [];
  store = new MemoryReadModelStore({ onStatement: failing });
  applier = new Applier({
    store,
    codec,
    catalog: codec.catalog,
    projections: [profiles, audit],
    deadLetters: {
      publish: (l) => {
        letters.push(...l);
        return Promise.resolve();
      },
    },
    group: GROUP,
    now: () => new Date(1000),
  });
});

/** A record as the relay publishes it; `eventId` defaults to `<id>-v<version>`. */
function created(id: string, name = id, eventId = `${id}-v1`): RawRecord {
  return record(id, 1, 'ProfileCreated', { name, email: `${id}@x.io` }, eventId, { name });
}

function renamed(id: string, version: number, name: string, eventId = `${id}-v${version}`) {
  return record(id, version, 'ProfileRenamed', { name }, eventId, { name });
}

function record(
  id: string,
  version: number,
  eventType: string,
  event: Record<string, unknown>,
  eventId: string,
  change: { name: string },
): RawRecord {
  const state = { id, email: `${id}@x.io`, ...change };
  const { topic } = codec.catalog.event(eventType);
  return {
    topic,
    partition: 0,
    offset: String(offset++),
    key: Buffer.from(id),
    value: codec.encode(eventType, { event, state }),
    headers: toHeaders({
      eventId,
      eventType,
      aggregateType: 'Profile',
      aggregateId: id,
      version,
      schemaId: codec.schemaIdOf(eventType),
      occurredAt: new Date(0),
    }),
  };
}

const names = () => store.rows('profiles').map((r) => [r.id, r.name, r.version]);
const counted = (c: Record<string, number>) =>
  Object.fromEntries(Object.entries(c).filter(([, n]) => n > 0));

describe('a poison event', () => {
  it('is found and parked while the rest of the batch applies', async () => {
    poison.add('b-v1');
    const batch = [created('a'), created('b'), created('c'), renamed('b', 2, 'B2')];
    const counts = await applier.applyBatch(batch);

    expect(counted(counts)).toEqual({ applied: 2, dead_lettered: 1, held: 1 });
    expect(names()).toEqual([
      ['a', 'a', 1],
      ['c', 'c', 1],
    ]);
    expect(letters.map((l) => [l.record.eventId, l.errorCode])).toEqual([
      ['b-v1', 'constraint_violated'],
    ]);
    expect(store.aggregate('Profile', 'b')).toMatchObject({ status: 'parked', version: 0 });
    expect(store.held().map((h) => [h.eventId, h.kind])).toEqual([
      ['b-v1', 'dead'],
      ['b-v2', 'parked'],
    ]);
    // The whole batch is consumed: the next offset is after its last record.
    expect(store.offset(GROUP, batch[3]?.topic ?? '', 0)).toBe(String(offset));
  });

  it('alone in its batch is dead-lettered at once', async () => {
    poison.add('a-v1');
    expect(counted(await applier.applyBatch([created('a')]))).toEqual({ dead_lettered: 1 });
    expect(store.aggregate('Profile', 'a')?.status).toBe('parked');
  });
});

describe('re-drive', () => {
  it('applies the parked events in version order and un-parks the aggregate', async () => {
    poison.add('b-v1');
    await applier.applyBatch([created('b'), renamed('b', 2, 'B2'), renamed('b', 3, 'B3')]);
    poison.clear();

    const result = await applier.redrive('Profile/b', 'ops');

    expect(result).toEqual({
      aggregate: { aggregateType: 'Profile', aggregateId: 'b' },
      applied: 3,
      stale: 0,
    });
    expect(store.statements.map((s) => s.params[0])).toEqual(['b-v1', 'b-v2', 'b-v3']);
    expect(names()).toEqual([['b', 'B3', 3]]);
    expect(store.aggregate('Profile', 'b')).toMatchObject({ status: 'ok', version: 3 });
    expect(store.held()).toEqual([]);
    expect(store.decisions().map((d) => [d.eventId, d.decision, d.decidedBy])).toEqual([
      ['b-v1', 'redriven', 'ops'],
      ['b-v2', 'redriven', 'ops'],
      ['b-v3', 'redriven', 'ops'],
    ]);
  });

  it('applies nothing while an event still fails, and counts its attempts', async () => {
    poison.add('b-v1');
    await applier.applyBatch([created('b'), renamed('b', 2, 'B2')]);

    await expect(applier.redrive('b-v1')).rejects.toMatchObject({ code: 'constraint_violated' });

    expect(names()).toEqual([]);
    expect(store.held().map((h) => [h.eventId, h.kind, h.attempts])).toEqual([
      ['b-v1', 'dead', 2],
      ['b-v2', 'parked', 0],
    ]);
    await expect(applier.redrive('nothing-held')).rejects.toMatchObject({ code: 'config_invalid' });
  });

  it('a dropped dead letter un-parks its aggregate when nothing else is held', async () => {
    poison.add('b-v1');
    await applier.applyBatch([created('b')]);
    const id = String(store.held()[0]?.id);

    expect(await applier.drop(id, 'ops')).toMatchObject({ stillHeld: 0 });
    expect(store.aggregate('Profile', 'b')).toMatchObject({ status: 'ok', version: 1 });
    expect(store.decisions().map((d) => [d.eventId, d.decision])).toEqual([['b-v1', 'dropped']]);
    // Its successor is applied, not taken for a gap.
    expect(counted(await applier.applyBatch([renamed('b', 2, 'B2')]))).toEqual({ applied: 1 });
    await expect(applier.drop(id)).rejects.toMatchObject({ code: 'config_invalid' });
  });
});

describe('the version gate', () => {
  it('counts a repeated event id as a duplicate, in a later batch or the same one', async () => {
    const a = created('a');
    expect(counted(await applier.applyBatch([a]))).toEqual({ applied: 1 });
    expect(counted(await applier.applyBatch([a]))).toEqual({ duplicate: 1 });
    const b = created('b');
    expect(counted(await applier.applyBatch([b, b]))).toEqual({ applied: 1, duplicate: 1 });
    expect(store.statements.map((s) => s.params[0])).toEqual(['a-v1', 'b-v1']);
  });

  it('does not let a stale version overwrite a newer one', async () => {
    await applier.applyBatch([created('a'), renamed('a', 2, 'B')]);
    const counts = await applier.applyBatch([renamed('a', 2, 'C', 'a-v2-again')]);
    expect(counted(counts)).toEqual({ stale: 1 });
    expect(names()).toEqual([['a', 'B', 2]]);
  });

  it('holds a gap, and parks it with a dead letter when the gap times out', async () => {
    await applier.applyBatch([created('a')]);
    expect(counted(await applier.applyBatch([renamed('a', 3, 'C')]))).toEqual({ held: 1 });
    expect(store.aggregate('Profile', 'a')?.status).toBe('gap');

    expect(await applier.expireGaps(0)).toBe(0); // statusSince is not before now
    expect(await applier.expireGaps(-1)).toBe(1);
    expect(store.aggregate('Profile', 'a')).toMatchObject({ status: 'parked' });
    expect(letters.map((l) => [l.record.eventId, l.errorCode])).toEqual([['a-v3', 'version_gap']]);
  });
});

describe('a batch of new aggregates', () => {
  it('is inserted without a lock; a known aggregate is planned on its locked record, and the next tries wait', async () => {
    const calls: string[] = [];
    const counting = new Applier({
      store: {
        transaction: (fn) =>
          store.transaction((tx) =>
            fn(
              new Proxy(tx, {
                get: (target, key) => {
                  if (key === 'insertNewAggregates') calls.push('insert');
                  if (key === 'lockAggregates') calls.push('lock');
                  const v: unknown = Reflect.get(target, key);
                  return typeof v === 'function'
                    ? (v as (...a: unknown[]) => unknown).bind(target)
                    : v;
                },
              }),
            ),
          ),
        checkTables: () => Promise.resolve(),
        close: () => Promise.resolve(),
      },
      codec,
      catalog: codec.catalog,
      projections: [profiles],
      deadLetters: { publish: () => Promise.resolve() },
      group: GROUP,
      now: () => new Date(1000),
    });
    expect(counted(await counting.applyBatch([created('a'), created('b')]))).toEqual({
      applied: 2,
    });
    expect(calls.splice(0)).toEqual(['insert']);
    // `a` is known: nothing of the try is left, the locked plan applies both (v2 is not a gap).
    expect(counted(await counting.applyBatch([renamed('a', 2, 'A2'), created('c')]))).toEqual({
      applied: 2,
    });
    expect(calls.splice(0)).toEqual(['insert', 'lock']);
    expect(store.aggregate('Profile', 'a')).toMatchObject({ version: 2, status: 'ok' });
    for (let i = 0; i < 8; i++) await counting.applyBatch([created(`n${i}`)]);
    expect(calls.splice(0)).toEqual(Array<string>(8).fill('lock'));
    await counting.applyBatch([created('z')]);
    expect(calls).toEqual(['insert']);
    expect(names().map(([id, , v]) => `${String(id)}@${String(v)}`)).toEqual([
      'a@2',
      'b@1',
      'c@1',
      ...Array.from({ length: 8 }, (_, i) => `n${i}@1`),
      'z@1',
    ]);
  });
});

describe('a retriable failure', () => {
  it('is thrown and rolls the whole batch back', async () => {
    deadlocked.add('b-v1');
    const error = await applier.applyBatch([created('a'), created('b')]).catch((e: unknown) => e);
    expect(isPipelineError(error) && [error.code, error.retriable]).toEqual([
      'database_unavailable',
      true,
    ]);
    expect(names()).toEqual([]);
    expect(store.seenIds()).toEqual([]);
    expect(store.offset(GROUP, codec.catalog.event('ProfileCreated').topic, 0)).toBeUndefined();
  });
});
