import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { waitFor } from '../test/support/servers.js';
import { sinkTestEnv, type SinkTestEnv } from './test-harness.js';
import { appliedOnce, shopTables, shopWorkload, ShopHistory } from './testing.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const child = path.join(here, 'fixtures', 'sink-child.ts');
let t: SinkTestEnv;

beforeAll(async () => {
  t = await sinkTestEnv('kill', { partitions: 3 });
});
afterAll(async () => {
  await t.close();
});

function spawnSink(logLevel = 'error'): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', child, t.prefix], {
    env: {
      ...process.env,
      ...t.env,
      SINK_BATCH_SIZE: '25',
      SINK_SESSION_TIMEOUT_MS: '6000',
      SINK_HEARTBEAT_INTERVAL_MS: '500',
      LOG_LEVEL: logLevel,
    },
    stdio: ['ignore', logLevel === 'error' ? 'ignore' : 'pipe', 'inherit'],
  });
}

const exited = (p: ChildProcess): Promise<number | null> =>
  new Promise((r) => {
    if (p.exitCode !== null || p.signalCode !== null) r(p.exitCode);
    else
      p.once('exit', (code) => {
        r(code);
      });
  });

it('ends with the expected tables after kill -9 in the middle of batches, 20 times', async () => {
  const h = new ShopHistory();
  const events = shopWorkload(h, 300, 'k');
  await t.send(events);
  for (let i = 0; i < 20; i++) {
    const before = (await appliedOnce(t.db)).rows;
    const p = spawnSink();
    // Kill once it is applying (or after a while if everything is in already).
    await waitFor(
      'progress',
      async () => (await appliedOnce(t.db)).rows > before || p.exitCode !== null,
      {
        timeoutMs: 30_000,
        intervalMs: 20,
      },
    ).catch(() => undefined);
    await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 150)));
    p.kill('SIGKILL');
    await exited(p);
  }
  const p = spawnSink('info');
  let out = '';
  p.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor(
    'every event applied',
    async () => (await appliedOnce(t.db)).distinct === events.length,
    {
      timeoutMs: 120_000,
      intervalMs: 250,
    },
  );
  // Everything may be applied before this child is even up: SIGTERM once it is running (a signal
  // before Node has loaded the CLI would end it by the default handler, not cleanly).
  await waitFor('the last sink running', () => Promise.resolve(out.includes('state changed')));
  p.kill('SIGTERM');
  expect(await exited(p)).toBe(0);
  expect(await appliedOnce(t.db)).toEqual({ rows: events.length, distinct: events.length });
  const tables = await shopTables(t.db);
  const expected = h.expected();
  expect(tables.customers).toEqual(expected.customers);
  expect(tables.orders).toEqual(expected.orders);
  expect(tables.lines).toEqual(expected.lines);
}, 600_000);
