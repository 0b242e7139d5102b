/**
 * The relay's marks on aggregate documents that writers append to at the same time, made
 * deterministic: the write lands between the relay's read and its mark. And fencing: a relay whose
 * lease was taken over cannot change a document the newer relay changed.
 */
import { describe, expect, it } from '@jest/globals';
import { MongoClient, type CommandStartedEvent, type Db } from 'mongodb';
import { pino } from 'pino';
import type { AggregateDocument } from '../schemas/outbox-entry.js';
import { testServers, waitFor } from '../test/support/servers.js';
import { KafkaPublisher } from './kafka-publisher.js';
import { MIN_EMPTY_READ_INTERVAL_MS, MongoLeaseStore } from './mongo-outbox.js';
import type { EntryRef } from './ports.js';
import { Relay } from './relay.js';
import { kafkaClient } from './start.js';
import { appendEntries, checkOrder, customerEntries, readTopics } from './testing.js';
import { mongoClientPerFile, relayTestEnv, shopWriteSide } from './test-harness.js';

const servers = testServers();
const logger = pino({ level: 'warn' });
const client = mongoClientPerFile();

async function setup() {
  const env = await relayTestEnv(client, { database: 'relaymark', prefix: 'm' });
  return { ...env, commands: await shopWriteSide(client, env, logger) };
}

interface Sent {
  readonly event: CommandStartedEvent;
  readonly at: number;
}

/** A client of its own that records the commands it sends, and when. */
async function monitoredClient(): Promise<{ client: MongoClient; sent: Sent[] }> {
  const own = new MongoClient(servers.mongodbUri, { monitorCommands: true });
  await own.connect();
  const sent: Sent[] = [];
  own.on('commandStarted', (event) => sent.push({ event, at: Date.now() }));
  return { client: own, sent };
}

/** The commands `name` on `collection` (a getMore names it in `collection`, the others in their own field). */
const on = (sent: readonly Sent[], name: string, collection: string): Sent[] =>
  sent.filter(
    (s) =>
      s.event.commandName === name &&
      s.event.command[name === 'getMore' ? 'collection' : name] === collection,
  );

const equals = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

const customer = (db: Db, id: string): Promise<AggregateDocument | null> =>
  db.collection<AggregateDocument>('customer').findOne({ _id: id });

describe('a relay mark interleaved with a command on the same document', () => {
  it('keeps the appended entry, which the next pass publishes exactly once', async () => {
    const { db, catalog, codec, config, source, commands } = await setup();
    await commands.RegisterCustomer({
      commandId: 'x-1',
      customerId: 'x',
      name: 'A',
      email: 'x@x.io',
    });
    await commands.RenameCustomer({ commandId: 'x-2', customerId: 'x', name: 'B' });
    await commands.RegisterCustomer({
      commandId: 'y-1',
      customerId: 'y',
      name: 'C',
      email: 'y@x.io',
    });

    // The relay read x at versions 1-2 and published them; a command appends version 3 before the
    // relay's mark lands: exactly then, on the first mark of x.
    const outbox = source();
    const mark = outbox.markRelayed.bind(outbox);
    let interleaved:
      { refs: EntryRef[]; removed: number; after: AggregateDocument | null } | undefined;
    outbox.markRelayed = async (refs, fence) => {
      if (interleaved || !refs.some((r) => r.aggregateId === 'x')) return mark(refs, fence);
      await commands.RenameCustomer({ commandId: 'x-3', customerId: 'x', name: 'C' });
      const removed = await mark(refs, fence);
      interleaved = { refs: [...refs], removed, after: await customer(db, 'x') };
      return removed;
    };
    const relay = new Relay({
      catalog,
      codec,
      config,
      logger,
      source: outbox,
      publisher: new KafkaPublisher(kafkaClient(config, logger), { ...config, logger }),
      leases: new MongoLeaseStore(db, config.name),
    });
    await relay.start();
    try {
      await waitFor('the interleaved mark', () => interleaved);
      const seen = interleaved as NonNullable<typeof interleaved>;
      expect(seen.refs.filter((r) => r.aggregateId === 'x').map((r) => r.version)).toEqual([1, 2]);
      expect(seen.removed).toBe(seen.refs.length);
      // The mark removed what it published, and only that: version 3 is still there, pending.
      expect(seen.after).toMatchObject({ version: 3, relayedVersion: 2 });
      expect(seen.after?.outbox.map((e) => [e.version, e.status])).toEqual([[3, 'pending']]);

      // The next pass (woken by the command's change) publishes it; then every outbox is empty.
      await waitFor(
        'x relayed up to 3',
        async () => (await customer(db, 'x'))?.relayedVersion === 3,
      );
      expect((await customer(db, 'x'))?.outbox).toEqual([]);
      expect((await customer(db, 'y'))?.outbox).toEqual([]);
      const records = await readTopics(servers.kafkaBrokers, catalog.topics(), 4);
      const x = records.filter((r) => r.key === 'x');
      // Once each: this relay held the lease throughout, so nothing was published twice.
      expect(x.map((r) => r.version)).toEqual([1, 2, 3]);
      expect(new Set(x.map((r) => r.eventId)).size).toBe(3);
      expect(checkOrder(records).duplicates).toBe(0);
      expect(relay.stats()).toMatchObject({ published: 4, failedEntries: 0 });
    } finally {
      await relay.stop();
    }
  });

  it('at the source: scan, append, mark leaves the appended entry to the next scan, after the marked ones', async () => {
    const { db, source, commands } = await setup();
    await commands.RegisterCustomer({
      commandId: 'z-1',
      customerId: 'z',
      name: 'A',
      email: 'z@x.io',
    });
    const outbox = source();
    const first = await outbox.scanPending(undefined, 100);
    expect(first.entries.map((e) => e.ref.version)).toEqual([1]);
    await commands.RenameCustomer({ commandId: 'z-2', customerId: 'z', name: 'B' });
    await commands.RenameCustomer({ commandId: 'z-3', customerId: 'z', name: 'C' });
    expect(
      await outbox.markRelayed(
        first.entries.map((e) => e.ref),
        1,
      ),
    ).toBe(1);
    expect((await customer(db, 'z'))?.outbox.map((e) => e.version)).toEqual([2, 3]);
    const next = await outbox.scanPending(undefined, 100);
    expect(next.entries.map((e) => [e.ref.version, e.previous])).toEqual([
      [2, 'relayed'],
      [3, 'pending'],
    ]);
    expect(await outbox.backlog()).toMatchObject({ pending: 2 });
  });
});

describe('the scan reads a pass with one cursor', () => {
  it('pages continue the open cursor, each document once and in order; a new pass starts over', async () => {
    const { db, codec, source } = await setup();
    const ids = Array.from({ length: 25 }, (_, i) => `p${String(i).padStart(2, '0')}`);
    await appendEntries(db, customerEntries(codec, ids, 1, 2));
    const outbox = source();
    const seen: string[] = [];
    let page = await outbox.scanPending(undefined, 10);
    // Interrupted after one page (the relay stopped): the next pass reads from the start again.
    const again = await outbox.scanPending(undefined, 10);
    expect(again.entries.map((e) => e.ref.aggregateId)).toEqual(
      page.entries.map((e) => e.ref.aggregateId),
    );
    page = again;
    for (;;) {
      // Whole documents, at most 10 entries (5 documents of 2) a page.
      expect(page.entries.length).toBeLessThanOrEqual(10);
      for (const e of page.entries) seen.push(`${e.ref.aggregateId}/${e.ref.version}`);
      if (!page.next) break;
      page = await outbox.scanPending(page.next, 10);
    }
    expect(seen).toEqual(ids.flatMap((id) => [`${id}/1`, `${id}/2`]));
  });
});

describe('fencing per document', () => {
  it('a relay whose lease was taken over cannot mark a document the newer relay changed', async () => {
    const { db, source, commands } = await setup();
    for (const id of ['f', 'g']) {
      await commands.RegisterCustomer({
        commandId: `${id}-1`,
        customerId: id,
        name: 'A',
        email: 'f@x.io',
      });
      await commands.RenameCustomer({ commandId: `${id}-2`, customerId: id, name: 'B' });
    }
    // The old relay (fence 1) read both documents; then a newer one (fence 2) took the lease over,
    // read f and marked f's first entry.
    const old = source();
    const newer = source();
    const oldRead = (await old.scanPending(undefined, 100)).entries.map((e) => e.ref);
    const newRead = (await newer.scanPending(undefined, 100)).entries.map((e) => e.ref);
    const f1 = newRead.find((r) => r.aggregateId === 'f' && r.version === 1);
    if (!f1) throw new Error('no f1');
    expect(await newer.markRelayed([f1], 2)).toBe(1);
    expect(await customer(db, 'f')).toMatchObject({ relayFence: 2, relayedVersion: 1 });

    // f is the newer relay's now: the old relay's mark changes nothing there; g, which the newer
    // relay has not touched, it may still mark (it published those entries itself).
    const oldF2 = oldRead.find((r) => r.aggregateId === 'f' && r.version === 2);
    if (!oldF2) throw new Error('no f2');
    expect(await old.markRelayed([oldF2], 1)).toBe(0);
    expect(await old.markRelayed(oldRead, 1)).toBe(2); // g's two entries, none of f's
    const f = await customer(db, 'f');
    expect(f).toMatchObject({ relayFence: 2, relayedVersion: 1 });
    expect(f?.outbox.map((e) => [e.version, e.status])).toEqual([[2, 'pending']]);
    expect(await customer(db, 'g')).toMatchObject({ outbox: [], relayedVersion: 2, relayFence: 1 });

    // Nor can it mark f's entry failed.
    await old.markFailed(
      oldF2,
      { code: 'payload_invalid', reason: 'stale relay', at: new Date() },
      1,
    );
    expect((await customer(db, 'f'))?.outbox.map((e) => e.status)).toEqual(['pending']);
    // The newer relay still can.
    const [f2] = (await newer.scanPending(undefined, 100)).entries.map((e) => e.ref);
    expect(f2).toMatchObject({ aggregateId: 'f', version: 2, fence: 2 });
    expect(await newer.markRelayed(f2 ? [f2] : [], 2)).toBe(1);
    expect(await customer(db, 'f')).toMatchObject({ outbox: [], relayedVersion: 2 });
  });
});

describe('fences read again', () => {
  it('after a takeover, marks of documents a deposed relay marked since the scan are retried with one read of their fences', async () => {
    const { database, source, commands } = await setup();
    for (const id of ['p', 'q', 'r']) {
      await commands.RegisterCustomer({
        commandId: `${id}-1`,
        customerId: id,
        name: 'A',
        email: 'p@x.io',
      });
      await commands.RenameCustomer({ commandId: `${id}-2`, customerId: id, name: 'B' });
    }
    const { client: own, sent } = await monitoredClient();
    try {
      const newer = source(own.db(database));
      const read = (await newer.scanPending(undefined, 100)).entries.map((e) => e.ref);
      expect(read).toHaveLength(6);
      // The deposed relay (fence 1) published and marks them after the newer one's scan.
      expect(await source().markRelayed(read, 1)).toBe(6);
      sent.length = 0;
      expect(await newer.markRelayed(read, 2)).toBe(6);
      expect(on(sent, 'find', 'customer')).toHaveLength(1);
      expect(on(sent, 'find', 'customer')[0]?.event.command.filter).toEqual({
        _id: { $in: ['p', 'q', 'r'] },
      });
      for (const id of ['p', 'q', 'r']) {
        expect(await customer(own.db(database), id)).toMatchObject({
          outbox: [],
          relayFence: 2,
          relayedVersion: 2,
        });
      }
    } finally {
      await own.close();
    }
  });
});

describe('change streams', () => {
  it('reads an idle stream at most every MIN_EMPTY_READ_INTERVAL_MS, and a change still wakes the scan', async () => {
    const { database, source, commands } = await setup();
    const { client: own, sent } = await monitoredClient();
    let changes = 0;
    const feed = await source(own.db(database)).watch(undefined, {
      onChange: () => changes++,
      onActivity: () => undefined,
      onToken: () => undefined,
      onError: (e) => {
        throw e;
      },
    });
    try {
      const reads = () => on(sent, 'getMore', 'customer');
      await waitFor('six reads of the idle stream', () => reads().length >= 6);
      // Five pauses between six empty reads: the stand-in answers at once, a real server after
      // maxAwaitTimeMS; either way no two start closer than the minimum interval. The times are
      // the driver's command-started events, which trail the feed's own clock by a few ms that
      // vary (472 ms for five 100 ms pauses was seen once): allow a fifth, which a tight loop (six
      // reads within a few ms) still fails by far.
      const at = reads().map((r) => r.at);
      expect((at[5] ?? 0) - (at[0] ?? 0)).toBeGreaterThanOrEqual(4 * MIN_EMPTY_READ_INTERVAL_MS);
      await commands.RegisterCustomer({
        commandId: 's-1',
        customerId: 's',
        name: 'A',
        email: 's@x.io',
      });
      await waitFor('the change', () => changes > 0);
    } finally {
      await feed.close();
      await own.close();
    }
  });
});

describe('relay release', () => {
  it('lets a released entry pass its version gap, and the versions after it follow', async () => {
    const { db, catalog, codec, config, source } = await setup();
    await appendEntries(db, [
      ...customerEntries(codec, ['gap'], 1, 1),
      ...customerEntries(codec, ['gap'], 3, 4), // 2 is missing
    ]);
    const relay = new Relay({
      catalog,
      codec,
      config,
      logger,
      source: source(),
      publisher: new KafkaPublisher(kafkaClient(config, logger), { ...config, logger }),
      leases: new MongoLeaseStore(db, config.name),
    });
    await relay.start();
    try {
      // 1 published and removed; 3 failed (2 is missing); 4 held behind it.
      const outbox = async () =>
        (await customer(db, 'gap'))?.outbox.map((e) => [e.version, e.status, e.failure?.code]);
      await waitFor('the gap held', async () =>
        equals(await outbox(), [
          [3, 'failed', 'version_gap'],
          [4, 'pending', null],
        ]),
      );
      expect(await source().release('gap', 'retry')).toBe(1);
      const released = await customer(db, 'gap');
      expect(released?.outbox[0]?.releasedAt).toBeInstanceOf(Date);
      await waitFor(
        'relayed up to 4',
        async () => (await customer(db, 'gap'))?.relayedVersion === 4,
      );
      const records = await readTopics(servers.kafkaBrokers, catalog.topics(), 3);
      expect(records.map((r) => r.version)).toEqual([1, 3, 4]);
    } finally {
      await relay.stop();
    }
  });
});
