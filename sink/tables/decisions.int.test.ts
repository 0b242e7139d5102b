/** The operators' decisions as a running sink sees them: kept in memory, and read again as soon as
 * a drop or re-drive commits (the generation row), never a batch later. */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { testServers, uniqueName } from '../../test/support/servers.js';
import { MysqlStore } from '../mysql-store.js';
import type { DecisionRecord } from '../ports.js';
import { createTestDatabase, type TestDatabase } from '../testing.js';

let db: TestDatabase;
let sink: MysqlStore;
let operator: MysqlStore;

const decision = (eventId: string, d: DecisionRecord['decision']): DecisionRecord => ({
  eventId,
  aggregateType: 'Customer',
  aggregateId: 'c-1',
  version: 2,
  decision: d,
  decidedAt: new Date('2026-12-01T10:00:00.000Z'),
  decidedBy: 'ops',
});

beforeAll(async () => {
  const s = testServers();
  db = await createTestDatabase(s.mysqlUrl, s.mysqlSinkUrl, uniqueName('decisions'), []);
  sink = new MysqlStore({ connection: db.sinkUrl, poolSize: 2 });
  operator = new MysqlStore({ connection: db.sinkUrl, poolSize: 1 });
});
afterAll(async () => {
  await sink.close();
  await operator.close();
  await db.drop();
});

const lookup = (ids: string[]): Promise<Map<string, string>> =>
  sink.transaction((tx) => tx.decisions(ids));

it('sees a decision committed by another process in its next transaction', async () => {
  expect(await lookup(['e-1', 'e-2'])).toEqual(new Map());
  await operator.transaction((tx) => tx.decide([decision('e-1', 'redriven')]));
  expect(await lookup(['e-1', 'e-2'])).toEqual(new Map([['e-1', 'redriven']]));
  // A later decision about the same event replaces the one in memory too.
  await operator.transaction((tx) => tx.decide([decision('e-1', 'dropped')]));
  await operator.transaction((tx) => tx.decide([decision('e-2', 'dropped')]));
  expect(await lookup(['e-1', 'e-2', 'e-3'])).toEqual(
    new Map([
      ['e-1', 'dropped'],
      ['e-2', 'dropped'],
    ]),
  );
  expect(await db.query('SELECT id, generation FROM cqrs_sink_decisions_generation')).toEqual([
    { id: 1, generation: 3 },
  ]);
});

it('does not see a decision that was rolled back', async () => {
  await expect(
    operator.transaction(async (tx) => {
      await tx.decide([decision('e-9', 'dropped')]);
      throw new Error('the drop failed after deciding');
    }),
  ).rejects.toThrow(/the drop failed/);
  expect(await lookup(['e-9'])).toEqual(new Map());
});

it('reads the decisions that were there before the generation row existed (an upgraded sink)', async () => {
  await db.query('DELETE FROM cqrs_sink_decisions_generation');
  await db.query(
    `INSERT INTO cqrs_sink_decisions (event_id, aggregate_type, aggregate_id, version, decision, decided_at)
     VALUES ('e-old', 'Customer', 'c-0', 1, 'dropped', '2026-11-01 00:00:00')`,
  );
  const fresh = new MysqlStore({ connection: db.sinkUrl, poolSize: 1 });
  try {
    expect(await fresh.transaction((tx) => tx.decisions(['e-old', 'e-1']))).toEqual(
      new Map([
        ['e-old', 'dropped'],
        ['e-1', 'dropped'],
      ]),
    );
  } finally {
    await fresh.close();
  }
});
