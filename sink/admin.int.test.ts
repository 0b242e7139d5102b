/** `SinkAdmin`'s reads and repairs against a sink's real tables (MariaDB decides): what the demo's
 * panel and the `dlq` commands show, and a re-drive through it. */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { isPipelineError } from '../schemas/errors.js';
import { waitFor } from '../test/support/servers.js';
import { SinkAdmin } from './admin.js';
import { sinkTestEnv, type SinkTestEnv } from './test-harness.js';
import { ShopHistory, testProjections } from './testing.js';

let t: SinkTestEnv;

beforeAll(async () => {
  t = await sinkTestEnv('admin', { partitions: 1 });
});
afterAll(async () => {
  await t.close();
});

it('counts, lists and re-drives what the sink applied and held', async () => {
  const sink = await t.start();
  const h = new ShopHistory();
  const ok = { ...h.customerRegistered('c-ok', 'Ann', 'a@x.io'), eventId: 'admin-ok' };
  // Too long a name: dead-lettered, then the next event of the aggregate is held behind it.
  const poison = {
    ...h.customerRegistered('c-bad', 'y'.repeat(400), 'b@x.io'),
    eventId: 'admin-poison',
  };
  const behind = { ...h.customerRenamed('c-bad', 'fine'), eventId: 'admin-behind' };
  await t.send([ok, poison]);
  // The next event only once the poison is dead: in one batch only the later state is written.
  await waitFor(
    'dead-lettered',
    async () =>
      (await t.db.query("SELECT id FROM cqrs_sink_held WHERE kind = 'dead'")).length === 1,
  );
  await t.send([behind]);
  await waitFor(
    'held',
    async () => (await t.db.query('SELECT id FROM cqrs_sink_held')).length === 2,
  );
  await sink.stop();

  const admin = new SinkAdmin({
    connection: t.db.adminUrl,
    group: t.group,
    poolSize: 1,
    catalog: t.catalog,
    projections: testProjections,
    codec: t.codec,
  });
  try {
    const counts = await admin.counts();
    expect(counts).toMatchObject({ deadLetters: 1, held: 2, parked: 1, applied: 3 });
    expect([...counts.offsets.values()]).toEqual([3n]);
    expect(await admin.countParked()).toBe(1);
    expect(await admin.countDeadLetters()).toBe(1);
    expect(await admin.offsets([...counts.offsets.keys()][0]?.split(':')[0] ?? '')).toEqual(
      new Map([[0, '3']]),
    );

    const dead = await admin.deadLetters();
    expect(dead).toEqual([
      expect.objectContaining({
        aggregateId: 'c-bad',
        version: 1,
        errorCode: 'constraint_violated',
      }),
    ]);
    const parked = await admin.parked();
    expect(parked).toEqual([
      expect.objectContaining({
        aggregateId: 'c-bad',
        status: 'parked',
        heldIds: expect.any(Array),
      }),
    ]);
    expect(parked[0]?.heldIds).toHaveLength(2);

    const recent = await admin.heldEvents();
    expect(recent.map((r) => [r.kind, r.version])).toEqual([
      ['parked', 2],
      ['dead', 1],
    ]);
    expect(recent[0]?.heldAt).toBeGreaterThan(0);
    expect(await admin.heldEvents([behind.eventId])).toHaveLength(1);
    expect(await admin.heldEvents([])).toEqual([]);

    const applied = await admin.appliedAt([ok.eventId, 'never-seen']);
    expect(applied.map((a) => a.eventId)).toEqual([ok.eventId]);
    expect(applied[0]?.appliedAt).toBeGreaterThan(0);
    expect(await admin.appliedAt([])).toEqual([]);

    const shown = await admin.held(dead[0]?.id ?? 0);
    expect(shown?.eventId).toBe(poison.eventId);
    expect(shown && (await admin.decode(shown)).ok).toBe(true);
    expect(await admin.held(999_999)).toBeUndefined();

    const before = await admin.watermark();
    // Fix the cause (the column takes the name now) and re-drive: both held events apply.
    await t.db.query('ALTER TABLE customers MODIFY name VARCHAR(500) NOT NULL');
    const r = await admin.redrive('Customer/c-bad', 'tester');
    expect(r).toMatchObject({ applied: 2, stale: 0 });
    expect(await admin.watermark()).not.toBe(before);
    expect(await admin.counts()).toMatchObject({ deadLetters: 0, held: 0, parked: 0 });
  } finally {
    await admin.close();
  }
});

it('refuses a re-drive without what the sink applies with, saying what is missing', async () => {
  const admin = new SinkAdmin({ connection: t.db.adminUrl, group: t.group, poolSize: 1 });
  try {
    const e = await admin.redrive('Customer/x').catch((err: unknown) => err);
    expect(isPipelineError(e, 'config_invalid')).toBe(true);
    expect((e as Error).message).toContain('catalog, projections and codec');
  } finally {
    await admin.close();
  }
});
