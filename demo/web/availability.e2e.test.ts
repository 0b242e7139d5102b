/**
 * The demo's availability promises, on a stack of its own (it stops servers):
 * - MySQL down: commands are still accepted (they only need MongoDB) and appear on the query side
 *   once MySQL is back; reads answer 503 meanwhile, never a half-page.
 * - MongoDB down: reads keep working (they never touch MongoDB); commands answer 503.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { loadHarnessConfig } from '../../infra/local/config.js';
import { startStack, type Stack } from '../../infra/local/stack.js';
import { waitFor } from '../../test/support/servers.js';
import { startDemoPipeline, type DemoPipeline } from './run.js';

let stack: Stack | undefined;
let demo: DemoPipeline | undefined;

const GIVEN = [
  'KAFKA_BROKERS',
  'SCHEMA_REGISTRY_URL',
  'MYSQL_URL',
  'MYSQL_SINK_URL',
  'MONGODB_URI',
];

beforeAll(async () => {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !GIVEN.includes(k)));
  stack = await startStack({
    config: loadHarnessConfig({
      ...env,
      CQRS_SYNC_SERVERS: 'local',
      CQRS_SYNC_RUN_DIR: mkdtempSync(path.join(tmpdir(), 'cqrs-sync-demo-availability-')),
    }),
  });
  demo = await startDemoPipeline({
    env: {
      ...stack.env,
      DEMO_PORT: '0',
      SINK_RETRY_MAX_MS: '1000',
      SINK_RETRY_INITIAL_MS: '100',
      LOG_LEVEL: 'fatal',
    },
    logger: pino({ level: 'fatal' }),
  });
}, 300_000);

afterAll(async () => {
  await demo?.stop();
  await stack?.stop();
}, 120_000);

function base(): string {
  if (!demo) throw new Error('the demo did not start (see beforeAll)');
  return demo.web.url;
}

async function call(
  method: string,
  url: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${base()}${url}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(20_000),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function customerNames(): Promise<string[] | undefined> {
  const r = await call('GET', '/api/customers');
  if (r.status !== 200) return undefined;
  return (r.body.customers as { name: string }[]).map((c) => c.name);
}

function server(name: 'mysql' | 'mongodb') {
  const s = stack?.get(name);
  if (!s?.stop || !s.start)
    throw new Error(`${name} is not a local server that can stop and start`);
  return { stop: () => s.stop(), start: () => s.start?.() ?? Promise.resolve() };
}

it('accepts commands while MySQL is down and shows them once it is back', async () => {
  const before = await call('POST', '/api/customers', { name: 'Before', email: 'b@example.org' });
  expect(before.status).toBe(202);
  await waitFor('the first customer on the query side', async () =>
    (await customerNames())?.includes('Before'),
  );

  const mysql = server('mysql');
  await mysql.stop();
  try {
    const during = await call('POST', '/api/customers', {
      name: 'During outage',
      email: 'd@example.org',
    });
    expect(during.status).toBe(202);
    const read = await call('GET', '/api/customers');
    expect(read.status).toBe(503);
    expect(read.body.error).toBe('database_unavailable');
  } finally {
    await mysql.start();
  }
  await waitFor(
    'the command written during the outage on the query side',
    async () => (await customerNames())?.includes('During outage'),
    { timeoutMs: 90_000, intervalMs: 500 },
  );
}, 180_000);

it('serves reads while MongoDB is down, and refuses commands with 503', async () => {
  const mongo = server('mongodb');
  await mongo.stop();
  try {
    const names = await customerNames();
    expect(names).toEqual(expect.arrayContaining(['Before', 'During outage']));
    const orders = await call('GET', '/api/orders');
    expect(orders.status).toBe(200);
    const write = await call('POST', '/api/customers', { name: 'No', email: 'no@example.org' });
    expect(write.status).toBe(503);
    expect(write.body.error).toBe('database_unavailable');
  } finally {
    await mongo.start();
  }
}, 120_000);
