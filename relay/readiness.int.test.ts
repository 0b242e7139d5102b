/**
 * Readiness during a broker outage, as an operator's probe sees it: the relay and the sink both
 * answer 503 on `/readyz` while the broker is stopped, saying why, and 200 again once it is back.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { MongoClient } from 'mongodb';
import { pino } from 'pino';
import { shopCommands } from '../test/support/shop.js';
import { type Stack } from '../infra/local/stack.js';
import { startOwnStack } from '../test/support/own-stack.js';
import { sinkTestEnv, type SinkTestEnv } from '../sink/test-harness.js';
import { appliedOnce } from '../sink/testing.js';
import { testServers, uniqueName, waitFor } from '../test/support/servers.js';
import { MongoWriteStore } from '../write/mongo-store.js';
import { startRelay } from './start.js';
import { testRelayConfig } from './testing.js';

const servers = testServers();
const logger = pino({ level: 'silent' });
let client: MongoClient;
let stack: Stack;
let t: SinkTestEnv;

beforeAll(async () => {
  client = new MongoClient(servers.mongodbUri);
  await client.connect();
  // A broker of this file's own, so that stopping it leaves the run's broker alone.
  stack = await startOwnStack(['kafka'], 'readiness-broker');
  t = await sinkTestEnv('readiness', { logLevelName: 'silent' });
}, 240_000);
afterAll(async () => {
  await t.close();
  await stack.stop();
  await client.close();
});

async function readyz(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`${url}/readyz`);
  return { status: res.status, body: await res.text() };
}

it('relay and sink are unready while the broker is stopped, and ready again once it is back', async () => {
  const brokers = stack.env.KAFKA_BROKERS ?? '';
  const database = uniqueName('readiness');
  const store = new MongoWriteStore({ client, database, logger });
  await store.init(['Customer']);
  const commands = shopCommands(store, t.codec);
  const register = (id: string) =>
    commands.RegisterCustomer({ commandId: id, customerId: id, name: 'N', email: `${id}@x.io` });

  const relay = await startRelay({
    catalog: t.catalog,
    config: testRelayConfig({ ...servers, kafkaBrokers: brokers.split(',') }, database, {
      opsPort: 0,
    }),
    logger,
    mongoClient: client,
  });
  const sink = await t.start({ KAFKA_BROKERS: brokers, SINK_OPS_PORT: '0' });
  try {
    const relayUrl = relay.opsUrl ?? '';
    const sinkUrl = sink.opsUrl ?? '';
    await register('before');
    await waitFor('the first event applied', async () => (await appliedOnce(t.db)).distinct === 1, {
      timeoutMs: 60_000,
    });
    await waitFor('both ready', async () => {
      const [r, s] = await Promise.all([readyz(relayUrl), readyz(sinkUrl)]);
      return r.status === 200 && s.status === 200;
    });

    await stack.get('kafka')?.kill?.();
    // A command during the outage: the relay's publish of it fails.
    await register('during');
    // One failed pass is enough: three (the generic check) take 30 s with a 10 s send timeout.
    await waitFor('a failed pass', () => relay.stats().errors >= 1, { timeoutMs: 60_000 });
    const unready = await readyz(relayUrl);
    expect(unready.status).toBe(503);
    expect(unready.body).toContain('broker unavailable');
    await waitFor('sink unready', async () => (await readyz(sinkUrl)).status === 503, {
      timeoutMs: 60_000,
    });
    expect((await readyz(sinkUrl)).body).toMatch(/broker unreachable|not in the group/);
    // Alive all along: an orchestrator must not restart them for this.
    expect((await fetch(`${relayUrl}/healthz`)).status).toBe(200);
    expect((await fetch(`${sinkUrl}/healthz`)).status).toBe(200);

    await stack.get('kafka')?.start?.();
    await waitFor(
      'the outage event applied',
      async () => (await appliedOnce(t.db)).distinct === 2,
      {
        timeoutMs: 120_000,
      },
    );
    await waitFor(
      'both ready again',
      async () => {
        const [r, s] = await Promise.all([readyz(relayUrl), readyz(sinkUrl)]);
        return r.status === 200 && s.status === 200;
      },
      { timeoutMs: 60_000 },
    );
  } finally {
    await sink.stop();
    await relay.stop();
  }
}, 300_000);
