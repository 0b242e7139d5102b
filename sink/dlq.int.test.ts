/** `sink dlq list` as an operator reads it, text and `--json`, against the local servers. */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import pino from 'pino';
import { waitFor } from '../test/support/servers.js';
import { clip, sinkCli } from './cli.js';
import { sinkTestEnv, type SinkTestEnv } from './test-harness.js';
import { ShopHistory, testProjections } from './testing.js';

let t: SinkTestEnv;

beforeAll(async () => {
  t = await sinkTestEnv('dlq', { partitions: 1 });
});
afterAll(async () => {
  await t.close();
});

async function cli(args: string[]): Promise<string> {
  const out: string[] = [];
  const code = await sinkCli(
    args,
    { catalog: t.catalog, projections: testProjections },
    {
      env: t.env,
      out: (l) => out.push(l),
      err: (l) => out.push(l),
      logger: pino({ level: 'silent' }),
    },
  );
  expect(code).toBe(0);
  return out.join('\n');
}

it('lists dead letters and held ids readably, and --json in the style of status --json', async () => {
  const sink = await t.start();
  const h = new ShopHistory();
  const id = 'c\tbin\bx';
  // Too long a name: dead-lettered, then the next event of the aggregate is held behind it.
  await t.send([h.customerRegistered(id, 'y'.repeat(400), 'd@x.io')]);
  await waitFor(
    'dead-lettered',
    async () =>
      (await t.db.query("SELECT id FROM cqrs_sink_held WHERE kind = 'dead'")).length === 1,
  );
  await t.send([h.customerRenamed(id, 'ok')]);
  await waitFor(
    'held',
    async () => (await t.db.query('SELECT id FROM cqrs_sink_held')).length === 2,
  );
  await sink.stop();
  const [dead, next] = await t.db.query<{ id: number }>(
    'SELECT id FROM cqrs_sink_held ORDER BY version',
  );

  const text = await cli(['dlq', 'list']);
  // No raw control characters reach the terminal; the id is shown escaped.
  // eslint-disable-next-line no-control-regex
  expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f]/);
  expect(text).toContain(`#${dead?.id} Customer/"c\\tbin\\bx" v1 CustomerRegistered`);
  expect(text).toContain(`Customer/"c\\tbin\\bx" at v0 parked since `);
  expect(text).toContain(`2 held (#${dead?.id}, #${next?.id})`);
  // Long messages end at a word boundary, marked.
  expect(clip('constraint_violated: Data too long for column', 30)).toBe(
    'constraint_violated: Data too…',
  );
  expect(clip('short', 30)).toBe('short');

  const json = JSON.parse(await cli(['dlq', 'list', '--json'])) as {
    deadLetters: Record<string, unknown>[];
    parked: Record<string, unknown>[];
  };
  expect(json.deadLetters).toEqual([
    expect.objectContaining({
      id: dead?.id,
      aggregateType: 'Customer',
      aggregateId: id,
      version: 1,
      eventType: 'CustomerRegistered',
      errorCode: 'constraint_violated',
      attempts: 1,
      partition: 0,
      offset: 0,
    }),
  ]);
  expect(json.parked).toEqual([
    expect.objectContaining({
      aggregateId: id,
      version: 0,
      status: 'parked',
      heldIds: [dead?.id, next?.id],
    }),
  ]);
  expect(typeof json.deadLetters[0]?.firstFailedAt).toBe('string');
  for (const v of [...json.deadLetters, ...json.parked])
    for (const k of Object.keys(v)) expect(k).not.toContain('_');
}, 90_000);
