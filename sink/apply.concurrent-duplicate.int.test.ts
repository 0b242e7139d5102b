/** Two consumers overlapping in a rebalance apply the same event: the one that loses the race on
 * MySQL's unique key rolls back with a retriable `concurrency_conflict` (issue 16: it was reported
 * as `database_unavailable`), and its retry counts the event as a duplicate. Real MariaDB decides. */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { HEADERS } from '../schemas/envelope.js';
import { isPipelineError } from '../schemas/errors.js';
import { Applier } from './apply.js';
import { SINK_TABLES } from './migrations.js';
import { MysqlStore } from './mysql-store.js';
import type { RawRecord } from './planner.js';
import type { SinkTransaction } from './ports.js';
import { sinkTestEnv, type SinkTestEnv } from './test-harness.js';
import { ShopHistory, eventRecord, testProjections, type EventSpec } from './testing.js';

/** A MySQL store that runs `beforeMarkSeen` (once) just before a transaction's `markSeen`. */
class InterleavedStore extends MysqlStore {
  beforeMarkSeen: (() => Promise<void>) | undefined;

  override transaction<T>(fn: (tx: SinkTransaction) => Promise<T>): Promise<T> {
    return super.transaction((tx) =>
      fn(
        new Proxy(tx, {
          get: (target, key) => {
            if (key === 'markSeen')
              return async (ids: readonly string[]) => {
                const hook = this.beforeMarkSeen;
                this.beforeMarkSeen = undefined;
                await hook?.();
                return target.markSeen(ids);
              };
            const v: unknown = Reflect.get(target, key);
            return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
          },
        }),
      ),
    );
  }
}

let t: SinkTestEnv;
let store: InterleavedStore;
let offset = 0;

beforeAll(async () => {
  t = await sinkTestEnv('concurrent_dup', { partitions: 1 });
  store = new InterleavedStore({ connection: t.db.adminUrl, poolSize: 3 });
});
afterAll(async () => {
  await store.close();
  await t.close();
});

const raw = (spec: EventSpec): RawRecord => {
  const r = eventRecord(t.codec, t.catalog, spec);
  return {
    topic: r.topic,
    partition: 0,
    offset: String(offset++),
    key: Buffer.from(r.key),
    value: r.value,
    headers: r.headers,
  };
};

const applier = (s: MysqlStore): Applier =>
  new Applier({
    store: s,
    codec: t.codec,
    catalog: t.catalog,
    projections: testProjections,
    deadLetters: { publish: () => Promise.resolve() },
    group: t.group,
  });

const seenCount = async (eventId: string): Promise<number> =>
  (
    await t.db.query<{ n: number }>(
      `SELECT COUNT(*) AS n FROM ${SINK_TABLES.events} WHERE event_id = ?`,
      [eventId],
    )
  )[0]?.n ?? -1;

describe('markSeen', () => {
  it('returns false, not an error, when another transaction recorded the id after `seen` looked', async () => {
    const id = `seen-${offset++}`;
    let marked: boolean | undefined;
    await store
      .transaction(async (tx) => {
        expect(await tx.seen([id])).toEqual(new Set());
        await store.transaction(async (other) => {
          expect(await other.markSeen([id])).toBe(true);
        });
        marked = await tx.markSeen([id]);
        throw new Error('roll back, as the applier does');
      })
      .catch(() => undefined);
    expect(marked).toBe(false);
    expect(await seenCount(id)).toBe(1);
  });
});

describe('a batch whose event another consumer applies meanwhile', () => {
  it('rolls back with a retriable concurrency_conflict, and the retry counts it as a duplicate', async () => {
    const h = new ShopHistory();
    const before = raw(h.customerRegistered('c-before', 'Ada', 'ada@example.com'));
    const raced = raw(h.customerRegistered('c-raced', 'Bob', 'bob@example.com'));
    // `before` seen already, so the batch's one-statement claim fails and it looks ids up.
    expect((await applier(store).applyBatch([before])).applied).toBe(1);

    const other = new MysqlStore({ connection: t.db.adminUrl, poolSize: 1 });
    try {
      store.beforeMarkSeen = async () => {
        expect((await applier(other).applyBatch([raced])).applied).toBe(1);
      };
      const e = await applier(store)
        .applyBatch([before, raced])
        .then(
          () => undefined,
          (err: unknown) => err,
        );
      expect(isPipelineError(e, 'concurrency_conflict') && e.retriable).toBe(true);
      expect(store.beforeMarkSeen).toBeUndefined();
    } finally {
      await other.close();
    }

    const retry = await applier(store).applyBatch([before, raced]);
    expect(retry).toMatchObject({ applied: 0, duplicate: 2 });
    const eventId = raced.headers[HEADERS.eventId] ?? '';
    expect(await seenCount(eventId)).toBe(1);
    expect(await t.db.query('SELECT name FROM customers WHERE id = ?', ['c-raced'])).toEqual([
      { name: 'Bob' },
    ]);
  });
});
