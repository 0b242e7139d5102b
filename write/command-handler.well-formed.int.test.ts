import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { MongoClient } from 'mongodb';
import { pino } from 'pino';
import { z } from 'zod';
import { buildCatalog, defineAggregate } from '../schemas/catalog.js';
import { EventCodec } from '../schemas/codec.js';
import { isPipelineError } from '../schemas/errors.js';
import type { AggregateDocument } from '../schemas/outbox-entry.js';
import { testServers, uniqueName } from '../test/support/servers.js';
import { AggregateRoot } from './aggregate.js';
import { commandHandler } from './command-handler.js';
import { MongoWriteStore } from './mongo-store.js';
import { Repository } from './repository.js';
import { InMemoryRegistry } from './testing.js';
import { rejection } from '../test/support/rejection.js';

// Issue 12, D1: a name holding a lone surrogate was accepted; MongoDB stored U+FFFD, the Avro payload
// the bytes ED A0 80 and MySQL three U+FFFD, so write and read model differed. Refused before saving.

/** A fixture of this test's own: a shelf with a name, items and labels (strings at every depth). */
interface ShelfState {
  readonly id: string;
  readonly name: string;
  readonly items: readonly { readonly sku: string }[];
  readonly labels: Readonly<Record<string, string>>;
}
type ShelfEvent =
  | { readonly type: 'ShelfStocked'; readonly data: Omit<ShelfState, 'id'> }
  | { readonly type: 'ShelfRenamed'; readonly data: { readonly name: string } };

/** Avro names are unique within a schema: the event's items and the state's are two records. */
const items = (name: string) => ({
  type: 'array',
  items: { type: 'record', name, fields: [{ name: 'sku', type: 'string' }] },
});
const catalog = buildCatalog([
  defineAggregate({
    type: 'Shelf',
    topic: 'wellformed.shelf',
    state: {
      fields: [
        { name: 'id', type: 'string' },
        { name: 'name', type: 'string' },
        { name: 'items', type: items('ShelfItem') },
        { name: 'labels', type: { type: 'map', values: 'string' } },
      ],
    },
    events: {
      ShelfStocked: {
        fields: [
          { name: 'name', type: 'string' },
          { name: 'items', type: items('StockedItem') },
          { name: 'labels', type: { type: 'map', values: 'string' } },
        ],
      },
      ShelfRenamed: { fields: [{ name: 'name', type: 'string' }] },
    },
  }),
]);

class Shelf extends AggregateRoot<ShelfState, ShelfEvent> {
  readonly aggregateType = 'Shelf';

  stock(data: Omit<ShelfState, 'id'>): void {
    this.raise({ type: 'ShelfStocked', data });
  }

  /** A domain bug on purpose: slicing by UTF-16 units can cut a surrogate pair in half. */
  abbreviate(): void {
    this.raise({ type: 'ShelfRenamed', data: { name: this.requireState().name.slice(0, 1) } });
  }

  protected when(state: ShelfState | null, event: ShelfEvent): ShelfState | null {
    switch (event.type) {
      case 'ShelfStocked':
        return { id: this.id, ...event.data };
      case 'ShelfRenamed':
        return state && { ...state, name: event.data.name };
    }
  }
}

const base = { commandId: z.string().min(1), shelfId: z.string().min(1) };
const StockShelf = {
  name: 'StockShelf',
  schema: z.object({
    ...base,
    name: z.string(),
    items: z.array(z.object({ sku: z.string() })),
    labels: z.record(z.string(), z.string()),
  }),
  aggregateId: (c: { shelfId: string }) => c.shelfId,
  execute: (a: Shelf, c: Omit<ShelfState, 'id'>) => {
    a.stock({ name: c.name, items: c.items, labels: c.labels });
  },
};
const AbbreviateShelf = {
  name: 'AbbreviateShelf',
  schema: z.object(base),
  aggregateId: (c: { shelfId: string }) => c.shelfId,
  execute: (a: Shelf) => {
    a.abbreviate();
  },
};

const servers = testServers();
let client: MongoClient;
let codec: EventCodec;

beforeAll(async () => {
  client = new MongoClient(servers.mongodbUri);
  await client.connect();
  codec = new EventCodec(catalog, new InMemoryRegistry());
  await codec.registerAll();
});
afterAll(async () => {
  await client.close();
});

function setup() {
  const database = uniqueName('wellformed');
  const store = new MongoWriteStore({ client, database, logger: pino({ level: 'silent' }) });
  const shelves = new Repository<ShelfState, Shelf>({
    store,
    codec,
    aggregateType: 'Shelf',
    create: (id, s) =>
      new Shelf(id, s && { version: s.version, state: s.state as ShelfState | null }),
  });
  const db = client.db(database);
  const shelvesCollection = db.collection<AggregateDocument>('shelf');
  /** What was saved: aggregate documents, and the outbox entries and command records they hold. */
  const saved = async () => {
    const docs = await shelvesCollection.find({}).toArray();
    return {
      states: docs.length,
      outbox: docs.reduce((n, d) => n + d.outbox.length, 0),
      commands: docs.reduce((n, d) => n + d.commands.length, 0),
    };
  };
  return {
    shelvesCollection,
    saved,
    stock: commandHandler(shelves, StockShelf),
    abbreviate: commandHandler(shelves, AbbreviateShelf),
  };
}

const good = {
  shelfId: 's1',
  name: 'top shelf',
  items: [{ sku: 'a' }, { sku: 'b' }, { sku: 'c' }],
  labels: { colour: 'red' },
};

describe('a command holding a string that is not well-formed Unicode', () => {
  it('is refused with command_invalid naming the field, and nothing is saved', async () => {
    const { stock, saved } = setup();
    const cases: [Record<string, unknown>, string][] = [
      [{ name: 'lone \uD800 x' }, 'name'],
      [{ items: [{ sku: 'a' }, { sku: 'b' }, { sku: 'low \uDC00' }] }, 'items[2].sku'],
      [{ labels: { colour: 'red', ['k\uD800']: 'v' } }, 'labels["k\\ud800"]'],
      [{ labels: { colour: 'r\uDBFF' } }, 'labels.colour'],
      [{ shelfId: 's\uDFFF' }, 'shelfId'],
    ];
    for (const [i, [change, path]] of cases.entries()) {
      const e = await rejection(stock({ ...good, commandId: `bad-${i}`, ...change }));
      expect(isPipelineError(e, 'command_invalid') && !e.retriable).toBe(true);
      expect((e as Error).message).toContain(`StockShelf is invalid: ${path} `);
      expect((e as Error).message).toMatch(/not well-formed Unicode/);
    }
    const badId = await rejection(stock({ ...good, commandId: 'c\uD800' }));
    expect((badId as Error).message).toContain('commandId ');
    expect(await saved()).toEqual({ states: 0, outbox: 0, commands: 0 });
  });

  it('with characters outside the BMP (surrogate pairs) is saved, and stored as sent', async () => {
    const { stock, saved, shelvesCollection } = setup();
    const astral = {
      ...good,
      commandId: 'astral',
      name: '😀 shelf 𝄞',
      items: [{ sku: '𠜎' }],
      labels: { ['🏷']: '✓😀' },
    };
    expect(await stock(astral)).toMatchObject({ applied: true, version: 1 });
    expect(await saved()).toEqual({ states: 1, outbox: 1, commands: 1 });
    const doc = await shelvesCollection.findOne({ _id: 's1' }, { promoteBuffers: true });
    expect(doc?.state).toEqual({
      id: 's1',
      name: astral.name,
      items: astral.items,
      labels: astral.labels,
    });
    const payload = doc?.outbox[0]?.payload ?? Buffer.alloc(0);
    expect((await codec.decode(payload, 'ShelfStocked')).value).toMatchObject({
      event: { name: astral.name, items: astral.items, labels: astral.labels },
    });
  });
});

it('an event the domain built with half a surrogate pair is refused by the codec (payload_invalid), nothing saved', async () => {
  const { stock, abbreviate, saved } = setup();
  await stock({ ...good, commandId: 'c1', name: '😀 shelf' });
  const e = await rejection(abbreviate({ commandId: 'c2', shelfId: 's1' }));
  expect(isPipelineError(e, 'payload_invalid') && !e.retriable).toBe(true);
  expect((e as Error).message).toMatch(/ShelfRenamed .*event\.name/);
  expect(await saved()).toEqual({ states: 1, outbox: 1, commands: 1 });
});
