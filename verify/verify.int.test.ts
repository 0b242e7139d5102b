/** `cqrs-sync verify [--repair]` against a running pipeline (write side, relay, sink) on the run's
 * servers: MySQL tampered with by hand is found by class, repaired through the topics, and the rows
 * nobody touched stay as they were; under a steady flow of commands nothing is reported as drift. */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { MongoClient, type Db } from 'mongodb';
import { pino } from 'pino';
import { demoCommands, type DemoCommands } from '../demo/domain/commands.js';
import { MongoOutboxSource } from '../relay/mongo-outbox.js';
import type { RelayHandle } from '../relay/relay.js';
import { startRelay } from '../relay/start.js';
import { customerEntries, testRelayConfig } from '../relay/testing.js';
import { createPool } from '../sink/mysql-store.js';
import { sinkTestEnv, type SinkTestEnv } from '../sink/test-harness.js';
import type { SinkHandle } from '../sink/sink.js';
import { testProjections } from '../sink/testing.js';
import { testServers, uniqueName, waitFor } from '../test/support/servers.js';
import { MongoWriteStore } from '../write/mongo-store.js';
import { formatStatus, readStatus } from '../bin/status.js';
import { lastRun } from './runs.js';
import { verify, type VerifyOptions, type VerifyReport } from './verify.js';
import { verifyCli } from './cli.js';

const servers = testServers();
const logger = pino({ level: 'warn' });

interface Pipeline {
  readonly t: SinkTestEnv;
  readonly db: Db;
  readonly commands: DemoCommands;
  readonly relay: RelayHandle;
  sink: SinkHandle;
  readonly env: Record<string, string>;
  readonly options: VerifyOptions;
}

let client: MongoClient;
const pipelines: Pipeline[] = [];

beforeAll(async () => {
  client = new MongoClient(servers.mongodbUri);
  await client.connect();
});
afterAll(async () => {
  for (const p of pipelines) {
    await p.relay.stop();
    await p.t.close();
  }
  await client.close();
});

async function pipeline(name: string): Promise<Pipeline> {
  const t = await sinkTestEnv(name, { partitions: 2 });
  const database = uniqueName(name);
  const store = new MongoWriteStore({ client, database, logger });
  await store.init(['Customer', 'Order']);
  const relay = await startRelay({
    catalog: t.catalog,
    config: testRelayConfig(servers, database, { topicPartitions: 2 }),
    logger,
    mongoClient: client,
  });
  const sink = await t.start();
  const env = { ...t.env, MONGODB_URI: servers.mongodbUri, RELAY_OUTBOX_DATABASE: database };
  const p: Pipeline = {
    t,
    db: client.db(database),
    commands: demoCommands(store, t.codec),
    relay,
    sink,
    env,
    options: { catalog: t.catalog, projections: testProjections, env, settleMs: 3000 },
  };
  pipelines.push(p);
  return p;
}

/** The sink has applied every aggregate's version (sums of versions agree). */
async function caughtUp(p: Pipeline): Promise<void> {
  await waitFor(
    'the sink applied every version',
    async () => {
      let mongo = 0;
      for (const c of ['customer', 'order'])
        for (const d of await p.db.collection(c).find({}).toArray()) mongo += Number(d.version);
      const [row] = await p.t.db.query<{ v: string | null }>(
        'SELECT SUM(version) AS v FROM cqrs_sink_aggregates',
      );
      return Number(row?.v ?? 0) === mongo;
    },
    { timeoutMs: 60_000 },
  );
}

/** Every row of the read model but those of `except` (ids), as one string. */
async function checksum(p: Pipeline, except: readonly string[]): Promise<string> {
  const tables: [string, string][] = [
    ['customers', 'id'],
    ['orders', 'id'],
    ['order_lines', 'order_id'],
    ['order_summaries', 'order_id'],
    ['cqrs_sink_aggregates', 'aggregate_id'],
  ];
  const parts: string[] = [];
  for (const [table, key] of tables) {
    const rows = await p.t.db.query(
      `SELECT * FROM ${table} WHERE ${key} NOT IN (?) ORDER BY ${key}`,
      [except],
    );
    // status_since moves when the sink saves an aggregate again; not content.
    parts.push(JSON.stringify(rows.map((r) => ({ ...r, status_since: undefined }))));
  }
  return parts.join('\n');
}

function byClass(r: VerifyReport): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const t of r.types)
    for (const d of t.drift) (out[d.class] ??= []).push(`${t.aggregateType}/${d.aggregateId}`);
  for (const list of Object.values(out)) list.sort();
  return out;
}

describe('verify', () => {
  it('finds hand-made drift by class, repairs it through the pipeline, and leaves the rest untouched', async () => {
    const p = await pipeline('verify_tamper');
    const c = p.commands;
    for (let i = 0; i < 6; i++) {
      await c.RegisterCustomer({
        commandId: `r-${i}`,
        customerId: `c-${i}`,
        name: `N${i}`,
        email: `c${i}@x.io`,
      });
    }
    await c.RenameCustomer({ commandId: 'rn-1', customerId: 'c-1', name: 'N1b' });
    await c.RegisterCustomer({ commandId: 'r-d', customerId: 'c-del', name: 'D', email: 'd@x.io' });
    await c.DeleteCustomer({ commandId: 'd-d', customerId: 'c-del' });
    await c.RegisterCustomer({
      commandId: 'r-s',
      customerId: 'c-skip',
      name: 'S',
      email: 's@x.io',
    });
    for (const o of ['o-0', 'o-1']) {
      await c.CreateOrder({ commandId: `${o}-c`, orderId: o, customerId: 'c-0' });
      for (const l of ['l1', 'l2']) {
        await c.AddOrderLine({
          commandId: `${o}-${l}`,
          orderId: o,
          lineId: l,
          sku: `S-${l}`,
          quantity: 2,
          unitPriceCents: 150,
        });
      }
      await c.PlaceOrder({ commandId: `${o}-p`, orderId: o });
    }
    await caughtUp(p);
    const first = await verify(p.options);
    expect(byClass(first)).toEqual({});
    expect(first.clean).toBe(true);
    expect(first.totals.checked).toBe(10);

    // An event the relay could not publish, skipped by an operator (`relay release --skip`): the
    // write model moved on to version 2, the read model never will.
    const [entry] = customerEntries(p.t.codec, ['c-skip'], 2, 2);
    await p.db.collection('customer').updateOne({ _id: 'c-skip' as never }, {
      $set: { version: 2, state: { id: 'c-skip', name: 'name-2', email: 'c-skip@x.io' } },
      $push: {
        outbox: { ...entry, status: 'failed', failure: { code: 'x', reason: 'x', at: new Date() } },
      },
    } as never);
    const source = new MongoOutboxSource(p.db, {
      collections: { Customer: 'customer', Order: 'order' },
    });
    expect(await source.release('c-skip', 'skip')).toBe(1);

    const tampered = ['c-1', 'c-2', 'c-3', 'c-del', 'c-skip', 'ghost', 'o-0'];
    const before = await checksum(p, tampered);
    const q = (sql: string) => p.t.db.query(sql);
    await q("DELETE FROM customers WHERE id = 'c-2'");
    await q("UPDATE orders SET total_cents = total_cents + 1 WHERE id = 'o-0'");
    await q("INSERT INTO customers (id, name, email, version) VALUES ('ghost', 'G', 'g@x.io', 1)");
    await q("INSERT INTO customers (id, name, email, version) VALUES ('c-del', 'D', 'd@x.io', 2)");
    await q(
      "DELETE FROM cqrs_sink_aggregates WHERE aggregate_type = 'Customer' AND aggregate_id = 'c-3'",
    );
    await q(
      "UPDATE cqrs_sink_aggregates SET version = 1 WHERE aggregate_type = 'Customer' AND aggregate_id = 'c-1'",
    );

    const found = await verify(p.options);
    expect(found.clean).toBe(false);
    expect(byClass(found)).toEqual({
      missing: ['Customer/c-2', 'Customer/c-3'],
      content: ['Order/o-0'],
      orphan: ['Customer/ghost'],
      deleted_present: ['Customer/c-del'],
      behind: ['Customer/c-1', 'Customer/c-skip'],
    });
    const drift = found.types.flatMap((t) => t.drift);
    const of = (id: string) => drift.find((d) => d.aggregateId === id);
    expect(of('o-0')?.columns).toEqual(['orders.total_cents']);
    expect(of('c-2')?.tables).toEqual(['customers']);
    expect(of('c-3')?.tables).toEqual(['cqrs_sink_aggregates']);
    expect(of('ghost')?.tables).toEqual(['customers']);
    expect(of('c-1')).toMatchObject({ mongoVersion: 2, mysqlVersion: 1 });
    expect(found.totals).toMatchObject({
      missing: 2,
      behind: 2,
      content: 1,
      orphan: 1,
      inFlight: 0,
    });
    // The rolled-back projection run left nothing behind.
    expect(await checksum(p, tampered)).toBe(before);
    // The run is recorded; the sink's /metrics shows its counts.
    const metrics = await p.sink.metrics.metrics();
    expect(metrics).toContain(
      'cqrs_sync_sink_verify_drift_aggregates{aggregate_type="Customer",class="missing"} 2',
    );
    expect(metrics).toContain(
      'cqrs_sync_sink_verify_drift_aggregates{aggregate_type="Order",class="content"} 1',
    );

    // The CLI: drift exits 1, its JSON is the report; status-like record of the run.
    const lines: string[] = [];
    expect(
      await verifyCli(['--json', '--type', 'Order'], p.options, {
        out: (l) => lines.push(l),
        err: () => undefined,
      }),
    ).toBe(1);
    expect((JSON.parse(lines.join('\n')) as VerifyReport).totals.content).toBe(1);

    const repaired = await verify({ ...p.options, repair: true });
    expect(repaired.totals.repaired).toBe(7);
    await waitFor('verify is clean after the repair', async () => (await verify(p.options)).clean, {
      timeoutMs: 60_000,
      intervalMs: 500,
    });
    expect(await checksum(p, tampered)).toBe(before);
    const rows = await q(
      "SELECT id, name, version FROM customers WHERE id IN ('c-2', 'c-skip', 'ghost', 'c-del') ORDER BY id",
    );
    expect(rows).toEqual([
      { id: 'c-2', name: 'N2', version: 1 },
      { id: 'c-skip', name: 'name-2', version: 2 },
    ]);
    // Each run is recorded (status shows the last): the repair run found 7, the last one none.
    const pool = createPool(p.t.db.sinkUrl, 1);
    try {
      expect(await lastRun(pool)).toMatchObject({ clean: true, repair: false, checked: 10 });
      const s = await readStatus(p.t.catalog, p.env);
      expect(formatStatus(s)).toMatch(
        /last verify +\S+ \(\d+\.\d s ago\), 10 checked, 0 in flight: clean/,
      );
    } finally {
      await pool.end();
    }
  }, 240_000);

  it('reports aggregates in flight, never drift, while commands flow', async () => {
    const p = await pipeline('verify_load');
    const c = p.commands;
    const ids = Array.from({ length: 20 }, (_, i) => `L-${i}`);
    for (const id of ids)
      await c.RegisterCustomer({
        commandId: `r-${id}`,
        customerId: id,
        name: 'N',
        email: 'e@x.io',
      });
    await caughtUp(p);
    const flowing = { on: true };
    let n = 0;
    // A steady flow: renames round-robin, one at a time.
    const flow = (async () => {
      while (flowing.on) {
        const id = `L-${n % ids.length}`;
        await c.RenameCustomer({ commandId: `rn-${n}`, customerId: id, name: `N${n}` });
        n++;
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    try {
      for (let i = 0; i < 3; i++) {
        const r = await verify({ ...p.options, settleMs: 2000 });
        expect(byClass(r)).toEqual({});
      }
      // The sink stops: everything it has not applied is covered by lag, so in flight.
      await p.sink.stop();
      const n0 = n;
      await waitFor('commands while the sink is down', () => n > n0 + 20 && n);
      const r = await verify({ ...p.options, settleMs: 500 });
      expect(byClass(r)).toEqual({});
      expect(r.clean).toBe(true);
      expect(r.totals.inFlight).toBeGreaterThan(0);
    } finally {
      flowing.on = false;
      await flow;
    }
  }, 240_000);
});
