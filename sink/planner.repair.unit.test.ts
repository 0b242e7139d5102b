/** planBatch applies a `verify --repair` event even at the stored version; a plain replayed event
 * at that version stays stale. The repair rebuilds the aggregate's owned rows (planProjections). */
import { describe, expect, it } from '@jest/globals';
import { buildCatalog } from '../schemas/catalog.js';
import { REPAIR_HEADER } from '../schemas/envelope.js';
import { shopAggregates } from '../test/support/shop.js';
import { planProjections, projectionHandlers } from './apply.js';
import { planBatch, type Decoded } from './planner.js';
import type { AggregateRecord, AggregateStatus } from './ports.js';
import { render, tableProjection, type DeliveredEvent } from './projection.js';

const now = new Date(0);

function ev(
  id: string,
  version: number,
  o: { snapshot?: boolean; repair?: boolean; state?: null; n?: number } = {},
): Decoded & { ok: true } {
  const eventType = o.snapshot || o.repair ? 'CustomerSnapshotted' : 'CustomerRenamed';
  const event: DeliveredEvent = {
    metadata: {
      eventId: `${id}-${version}-${o.n ?? 0}`,
      eventType,
      aggregateType: 'Customer',
      aggregateId: id,
      version,
      schemaId: 1,
      occurredAt: now,
    },
    eventType,
    payload: {},
    state: o.state === null ? null : { id, name: `n${version}`, email: 'e' },
    deletes: false,
    source: { topic: 't', partition: 0, offset: String(version) },
  };
  const headers: Record<string, string> = o.repair ? { [REPAIR_HEADER]: '1' } : {};
  const raw = { topic: 't', partition: 0, offset: `${id}${version}`, key: null, value: null };
  return { ok: true, raw: { ...raw, headers }, event };
}

function stored(
  id: string,
  version: number,
  status: AggregateStatus = 'ok',
  deleted = false,
): [string, AggregateRecord] {
  const a = { aggregateType: 'Customer', aggregateId: id, version, deleted, status };
  return [`Customer\u0000${id}`, { ...a, statusSince: now, reason: null }];
}

function plan(records: readonly Decoded[], aggregates: [string, AggregateRecord][]) {
  const p = planBatch({
    records,
    seen: new Set(),
    aggregates: new Map(aggregates),
    held: new Map(),
    forcedDead: new Map(),
    now,
  });
  return {
    ...p,
    reasons: p.outcomes.map((o) => (o.applied ? 'applied' : o.reason)),
    agg: (id: string) => p.aggregates.find((a) => a.aggregateId === id),
  };
}

describe('planBatch with repair events', () => {
  it('applies a repair at the stored version; a plain event or snapshot at it stays stale', () => {
    const p = plan(
      [ev('a', 3, { repair: true }), ev('b', 3), ev('c', 3, { snapshot: true })],
      [stored('a', 3), stored('b', 3), stored('c', 3)],
    );
    expect(p.reasons).toEqual(['applied', 'stale', 'stale']);
    expect(p.apply.map((e) => [e.metadata.aggregateId, e.repair])).toEqual([['a', true]]);
    expect(p.agg('a')).toMatchObject({ version: 3, status: 'ok' });
  });

  it('never applies a repair below the stored version (a newer event came first)', () => {
    const p = plan([ev('a', 2, { repair: true })], [stored('a', 3)]);
    expect(p.reasons).toEqual(['stale']);
    expect(p.apply).toEqual([]);
  });

  it('needs the snapshot event type: the header on another event changes nothing', () => {
    const renamed = ev('a', 3);
    const p = plan(
      [{ ...renamed, raw: { ...renamed.raw, headers: { [REPAIR_HEADER]: '1' } } }],
      [stored('a', 3)],
    );
    expect(p.reasons).toEqual(['stale']);
  });

  it('takes a repair with a null state as a delete, and one above the version across a gap', () => {
    const p = plan(
      [ev('a', 3, { repair: true, state: null }), ev('b', 9, { repair: true })],
      [stored('a', 3), stored('b', 2)],
    );
    expect(p.reasons).toEqual(['applied', 'applied']);
    expect(p.agg('a')).toMatchObject({ version: 3, deleted: true });
    expect(p.agg('b')).toMatchObject({ version: 9, status: 'ok' });
    expect(p.hold).toEqual([]);
  });

  it('holds a repair of a parked aggregate like any event', () => {
    const p = plan([ev('a', 3, { repair: true })], [stored('a', 3, 'parked')]);
    expect(p.reasons).toEqual(['held']);
  });

  it('a repair first deletes the rows its projections own, then projects the state', () => {
    const catalog = buildCatalog(shopAggregates);
    const customers = tableProjection({
      aggregateType: 'Customer',
      table: 'customers',
      columns: { name: 'state.name', email: 'state.email' },
    });
    const handlers = projectionHandlers(catalog, [customers]);
    const repair = { ...ev('a', 3, { repair: true }).event, repair: true };
    const ops = planProjections(handlers, [repair]);
    const first = ops[0];
    expect(first?.op === 'statement' && render(first.statement)).toEqual({
      sql: 'DELETE FROM `customers` WHERE `id` IN (?)',
      params: ['a'],
    });
    expect(ops[1]).toMatchObject({ op: 'upsert', table: 'customers', rows: [['a', 'n3', 'e', 3]] });
    // Several repairs: one DELETE for all of them (a round trip per aggregate made verify slow).
    const two = planProjections(handlers, [repair, { ...ev('b', 2).event, repair: true }]);
    expect(two[0]?.op === 'statement' && render(two[0].statement)).toEqual({
      sql: 'DELETE FROM `customers` WHERE `id` IN (?, ?)',
      params: ['a', 'b'],
    });
    expect(two.map((o) => o.op)).toEqual(['statement', 'upsert']);
    // A plain event: no delete first.
    expect(planProjections(handlers, [ev('a', 4).event]).map((o) => o.op)).toEqual(['upsert']);
  });
});
