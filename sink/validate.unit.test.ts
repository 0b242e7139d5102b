/** Projections checked against the catalog at start-up, and the tables they need. */
import { describe, expect, it } from '@jest/globals';
import { buildCatalog } from '../schemas/catalog.js';
import { shopAggregates } from '../test/support/shop.js';
import { shopProjections } from '../test/support/shop-read-model.js';
import { ev } from './fixtures/decoded.js';
import { defineProjection, sql, tableProjection, type DeliveredEvent } from './projection.js';
import { checkProjections, requiredTables } from './validate.js';

const catalog = buildCatalog(shopAggregates);

describe('projection checks', () => {
  it('checks projections against the catalog at start-up', () => {
    expect(() => {
      checkProjections(catalog, shopProjections);
    }).not.toThrow();
    const bad = [
      tableProjection({ aggregateType: 'Customer', table: 'c', columns: { x: 'state.nope' } }),
      tableProjection({ aggregateType: 'Nope', table: 'c', columns: {} }),
      defineProjection({ name: 'c', handles: ['Unknown'], tables: ['c'], apply: () => undefined }),
    ];
    expect(() => {
      checkProjections(catalog, bad);
    }).toThrow(/state.nope[\s\S]*Nope[\s\S]*twice[\s\S]*"Unknown"/);
    expect(requiredTables(shopProjections).map((t) => t.table)).toContain('order_summaries');
    const undeclared = defineProjection({
      name: 'u',
      handles: ['Customer'],
      tables: ['a'],
      apply: (_e, { table }) => sql`DELETE FROM ${table('b')}`,
    });
    expect(() => undeclared.plan([(ev('a', 1) as { event: DeliveredEvent }).event])).toThrow(
      /declares only a/,
    );
  });
});
