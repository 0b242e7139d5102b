/**
 * The types inferred from Avro fields. The checks are compile-time (`npm run typecheck` fails on a
 * wrong type, or on a `@ts-expect-error` that no longer finds an error); the runtime part checks that
 * values of the inferred types are what the compiled Avro schema accepts, so the types promise
 * nothing the codec refuses.
 */
import { describe, expect, it } from '@jest/globals';
import type { AvroValue, EventOf, StateOf } from './avro-types.js';
import { buildCatalog, defineAggregate } from './catalog.js';

/** True only when X and Y are the same type (not merely assignable). */
type Equal<X, Y> = [X] extends [Y] ? ([Y] extends [X] ? true : false) : false;
function assertType<T extends true>(value?: T): T | undefined {
  return value;
}

const line = {
  type: 'record',
  name: 'Line',
  fields: [
    { name: 'sku', type: 'string' },
    { name: 'quantity', type: 'int' },
  ],
} as const;

const Shop = defineAggregate({
  type: 'Shop',
  state: {
    fields: [
      { name: 'id', type: 'string' },
      { name: 'open', type: 'boolean' },
      { name: 'totalCents', type: 'long' },
      { name: 'rating', type: 'double' },
      { name: 'note', type: ['null', 'string'], default: null },
      { name: 'lines', type: { type: 'array', items: line } },
      { name: 'stock', type: { type: 'map', values: 'int' } },
      { name: 'tier', type: { type: 'enum', name: 'Tier', symbols: ['free', 'paid'] } },
      { name: 'logo', type: 'bytes' },
      { name: 'openedAt', type: { type: 'long', logicalType: 'timestamp-millis' } },
    ],
  },
  events: {
    ShopOpened: { fields: [{ name: 'note', type: ['null', 'string'], default: null }] },
    ShopClosed: { fields: [] },
  },
});

type ShopState = StateOf<typeof Shop>;

describe('StateOf and EventOf', () => {
  it('map each Avro field to the value avsc reads and writes', () => {
    assertType<
      Equal<
        ShopState,
        {
          id: string;
          open: boolean;
          totalCents: number;
          rating: number;
          note: string | null;
          lines: { sku: string; quantity: number }[];
          stock: Record<string, number>;
          tier: 'free' | 'paid';
          logo: Buffer;
          openedAt: number;
        }
      >
    >();
    assertType<
      Equal<
        EventOf<typeof Shop>,
        | { readonly type: 'ShopOpened'; readonly data: { note: string | null } }
        | { readonly type: 'ShopClosed'; readonly data: Record<string, never> }
      >
    >();

    // Unions avsc wraps, and names it resolves elsewhere, promise nothing.
    assertType<Equal<AvroValue<readonly ['int', 'long']>, unknown>>();
    assertType<Equal<AvroValue<'Line'>, unknown>>();
    assertType<Equal<AvroValue<readonly ['null', 'string', 'int']>, string | number | null>>();

    // @ts-expect-error a field the definition does not declare
    const extra: ShopState['missing'] = 1;
    // @ts-expect-error a nullable field is not optional
    const noNote: Pick<ShopState, 'note'> = {};
    // @ts-expect-error an enum field takes only its symbols
    const tier: ShopState['tier'] = 'gold';
    // @ts-expect-error an event type the definition does not declare
    const unknownEvent: EventOf<typeof Shop> = { type: 'ShopSold', data: {} };
    // @ts-expect-error an event without fields has an empty payload
    const closed: EventOf<typeof Shop> = { type: 'ShopClosed', data: { note: 'x' } };
    expect([extra, noNote, tier, unknownEvent, closed]).toHaveLength(5);
  });

  it('types only values the compiled Avro schema accepts', () => {
    const catalog = buildCatalog([Shop]);
    const state: ShopState = {
      id: 's-1',
      open: true,
      totalCents: 12_345,
      rating: 4.5,
      note: null,
      lines: [{ sku: 'a', quantity: 2 }],
      stock: { a: 3 },
      tier: 'paid',
      logo: Buffer.from([1, 2]),
      openedAt: Date.UTC(2026, 0, 1),
    };
    const opened: EventOf<typeof Shop> = { type: 'ShopOpened', data: { note: 'hi' } };
    const wire = catalog.event('ShopOpened').avroType;
    expect(wire.isValid({ event: opened.data, state })).toBe(true);
    expect(wire.fromBuffer(wire.toBuffer({ event: opened.data, state }))).toEqual({
      event: opened.data,
      state,
    });
    expect(wire.isValid({ event: opened.data, state: { ...state, note: 'open late' } })).toBe(true);
  });
});
