/** The projection API: SQL templates, and the operations table and child-table projections plan. */
import { describe, expect, it } from '@jest/globals';
import { ev } from './fixtures/decoded.js';
import {
  childTableProjection,
  identifier,
  render,
  sql,
  tableProjection,
  type DeliveredEvent,
} from './projection.js';

describe('projection API', () => {
  it('parameterises values and resolves tables', () => {
    const s = sql`UPDATE ${{ kind: 'table', name: 't' }} SET ${identifier('a')} = ${'x'} WHERE id IN (${['1', '2']}) AND n = ${undefined} ${sql`AND z = ${3}`}`;
    expect(render(s, (t) => `${t}__shadow`)).toEqual({
      sql: 'UPDATE `t__shadow` SET `a` = ? WHERE id IN (?, ?) AND n = ? AND z = ?',
      params: ['x', '1', '2', null, 3],
    });
    expect(() => sql`${[]}`).toThrow(/empty list/);
    expect(() => identifier('a; drop')).toThrow(/identifier/);
  });

  it('tableProjection upserts the latest state and deletes', () => {
    const p = tableProjection({
      aggregateType: 'Customer',
      table: 'customers',
      columns: { name: 'state.name', v: 'metadata.version', f: (e) => e.eventType },
    });
    const ops = p.plan(
      [ev('a', 1), ev('a', 2), ev('b', 1), ev('c', 3, 'CustomerDeleted', null)]
        .map((d) => (d.ok ? d.event : null))
        .filter((e) => e !== null),
    );
    expect(ops).toHaveLength(2);
    expect(ops[1]).toMatchObject({
      op: 'upsert',
      columns: ['id', 'name', 'v', 'f', 'version'],
      rows: [
        ['a', 'n2', 2, 'CustomerRenamed', 2],
        ['b', 'n1', 1, 'CustomerRenamed', 1],
      ],
    });
    const soft = tableProjection({
      aggregateType: 'Customer',
      table: 'c',
      columns: {},
      delete: 'soft',
    });
    const del = soft.plan([
      (ev('c', 3, 'CustomerDeleted', null) as { event: DeliveredEvent }).event,
    ]);
    expect(del[0]?.op === 'statement' && render(del[0].statement).sql).toMatch(/SET `deleted` = 1/);
    expect(() =>
      tableProjection({ aggregateType: 'Customer', table: 'c', columns: { x: 'payload.x' } }),
    ).toThrow(/state\./);
    expect(() =>
      tableProjection({ aggregateType: 'Customer', table: 'bad name', columns: {} }),
    ).toThrow(/identifier/);
  });

  it('childTableProjection replaces the children', () => {
    const p = childTableProjection({
      aggregateType: 'Order',
      table: 'lines',
      parentKey: 'order_id',
      items: 'state.lines',
      columns: { line_id: 'item.lineId', s: 'state.status', k: (item) => item.lineId },
    });
    const e = ev('o', 2, 'OrderLineAdded', { id: 'o', status: 'open', lines: [{ lineId: 'l1' }] });
    const ops = p.plan([(e as { event: DeliveredEvent }).event]);
    expect(ops.map((o) => o.op)).toEqual(['statement', 'upsert']);
    expect(ops[1]).toMatchObject({ rows: [['o', 'l1', 'open', 'l1', 2]] });
  });
});
