/**
 * Start-up waits for what it needs (issue 17): a sink started while MariaDB or the broker is down, or
 * before its topics exist, and a relay started while the broker is down, used to exit within
 * seconds; a running process survived the same outages. Now they wait, report not-ready on
 * `/readyz`, log what they wait for, and exit only when told to give up or on bad settings. Relay
 * and sink run as child processes (`cqrs-sync relay|sink` code paths), on a broker and a MariaDB of
 * this file's own so that stopping them leaves the run's servers alone.
 */
import { createServer } from 'node:net';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { MongoClient } from 'mongodb';
import { pino } from 'pino';
import { shopCommands } from '../test/support/shop.js';
import { SHOP_MIGRATIONS } from '../test/support/shop-read-model.js';
import { type Stack } from '../infra/local/stack.js';
import { startOwnStack } from '../test/support/own-stack.js';
import type { ServerHandle } from '../infra/local/types.js';
import { testCatalog } from '../relay/testing.js';
import { EventCodec } from '../schemas/codec.js';
import { ConfluentRegistry } from '../schemas/registry.js';
import {
  APPLIED_LOG_MIGRATIONS,
  appliedOnce,
  createTestDatabase,
  type TestDatabase,
} from '../sink/testing.js';
import { pipelineChildren, type Child } from '../test/chaos/chaos.js';
import { testServers, uniqueName, waitFor } from '../test/support/servers.js';
import { MongoWriteStore } from '../write/mongo-store.js';

const shared = testServers();
let stack: Stack;
let mongo: MongoClient;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  mongo = new MongoClient(shared.mongodbUri);
  await mongo.connect();
  stack = await startOwnStack(['kafka', 'mysql'], 'startup-wait');
}, 240_000);
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  await stack.stop();
  await mongo.close();
});

function server(name: 'kafka' | 'mysql'): Required<Pick<ServerHandle, 'kill' | 'start'>> {
  const s = stack.get(name);
  if (!s?.kill || !s.start) throw new Error(`${name} of this file cannot be stopped`);
  return {
    kill: () => s.kill?.() ?? Promise.resolve(),
    start: () => s.start?.() ?? Promise.resolve(),
  };
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as { port: number };
  await new Promise((r) => srv.close(r));
  return port;
}

async function probe(port: number, what: 'readyz' | 'healthz') {
  const res = await fetch(`http://127.0.0.1:${port}/${what}`);
  return { status: res.status, body: await res.text() };
}

const times = (text: string, line: string): number => text.split(line).length - 1;

/** Waits until every child logged `line` `n` times; fails at once, with its output, if one exits. */
async function logged(children: readonly Child[], line: string, n = 1): Promise<void> {
  await waitFor(
    `${children.map((c) => c.name).join(' and ')} to log "${line}" ${n}x`,
    () =>
      children.some((c) => c.exitedOnItsOwn) || children.every((c) => times(c.output(), line) >= n),
    { timeoutMs: 90_000 },
  );
  for (const c of children) {
    expect({
      exited: c.exitedOnItsOwn,
      tail: c.exitedOnItsOwn ? c.output().slice(-2000) : '',
    }).toEqual({
      exited: false,
      tail: '',
    });
  }
}

interface Pipeline {
  readonly relay: Child;
  readonly sink: Child;
  readonly relayPort: number;
  readonly sinkPort: number;
  readonly db: TestDatabase;
  register(id: string): Promise<unknown>;
}

/** A relay and a sink (not started) of a run of their own, on the own or the shared servers. */
async function pipeline(
  name: string,
  use: { kafka?: 'own' | 'shared'; mysql?: 'own' | 'shared' },
  extra: { relay?: Record<string, string>; sink?: Record<string, string> } = {},
): Promise<Pipeline> {
  const run = uniqueName(name);
  const codec = new EventCodec(testCatalog(run), new ConfluentRegistry(shared.schemaRegistryUrl));
  await codec.registerAll();
  const ownMysql = use.mysql === 'own';
  const db = await createTestDatabase(
    ownMysql ? (stack.env.MYSQL_URL ?? '') : shared.mysqlUrl,
    ownMysql ? (stack.env.MYSQL_SINK_URL ?? '') : shared.mysqlSinkUrl,
    run,
    [SHOP_MIGRATIONS, APPLIED_LOG_MIGRATIONS],
  );
  const store = new MongoWriteStore({
    client: mongo,
    database: run,
    logger: pino({ level: 'silent' }),
  });
  await store.init(['Customer']);
  const commands = shopCommands(store, codec);
  const [relayPort, sinkPort] = [await freePort(), await freePort()];
  const kafkaBrokers =
    use.kafka === 'own' ? (stack.env.KAFKA_BROKERS ?? '').split(',') : shared.kafkaBrokers;
  const { relay, sink } = pipelineChildren(
    run,
    { kafkaBrokers, schemaRegistryUrl: shared.schemaRegistryUrl, mongodbUri: shared.mongodbUri },
    db,
    {
      relay: {
        RELAY_OPS_PORT: String(relayPort),
        RELAY_RETRY_MAX_MS: '1000',
        RELAY_TOPIC_PARTITIONS: '2',
        ...extra.relay,
      },
      sink: {
        SINK_OPS_PORT: String(sinkPort),
        SINK_RETRY_MAX_MS: '1000',
        SINK_SESSION_TIMEOUT_MS: '6000',
        SINK_HEARTBEAT_INTERVAL_MS: '500',
        ...extra.sink,
      },
    },
  );
  cleanups.push(async () => {
    await relay.kill('SIGKILL');
    await sink.kill('SIGKILL');
    await db.drop();
  });
  return {
    relay,
    sink,
    relayPort,
    sinkPort,
    db,
    register: (id) =>
      commands.RegisterCustomer({ commandId: id, customerId: id, name: 'N', email: `${id}@x.io` }),
  };
}

/** Stops a child with SIGTERM and returns its exit code. */
async function terminate(c: Child): Promise<number | null> {
  await c.kill('SIGTERM');
  return c.proc?.exitCode ?? null;
}

it('a sink started while MariaDB is down waits, unready, and applies events once it is up', async () => {
  const p = await pipeline('startup_mysql', { mysql: 'own' });
  const mysql = server('mysql');
  await mysql.kill();
  try {
    p.relay.spawn();
    p.sink.spawn();
    await logged([p.sink], 'start-up: waiting for mysql at', 2);
    const unready = await probe(p.sinkPort, 'readyz');
    expect(unready.status).toBe(503);
    expect(unready.body).toContain('waiting for mysql at 127.0.0.1');
    expect(unready.body).not.toContain('***'); // the address, not the URL with its user
    expect((await probe(p.sinkPort, 'healthz')).status).toBe(200);
    expect(p.sink.exitedOnItsOwn).toBe(false);
  } finally {
    await mysql.start();
  }
  await p.register('c-mysql');
  await waitFor('the event applied', async () => (await appliedOnce(p.db)).distinct === 1, {
    timeoutMs: 90_000,
  });
  await waitFor('the sink ready', async () => (await probe(p.sinkPort, 'readyz')).status === 200, {
    timeoutMs: 60_000,
  });
  expect(p.sink.output()).toContain('start-up: mysql at');
  expect(await terminate(p.sink)).toBe(0);
  expect(await terminate(p.relay)).toBe(0);
}, 240_000);

it('a relay and a sink started while the broker is down both wait, then events flow', async () => {
  const p = await pipeline('startup_kafka', { kafka: 'own' });
  const kafka = server('kafka');
  await kafka.kill();
  try {
    p.relay.spawn();
    p.sink.spawn();
    // A line per attempt, from each: the relay's probe does not retry inside an attempt.
    await logged([p.relay, p.sink], 'start-up: waiting for kafka at', 2);
    for (const port of [p.relayPort, p.sinkPort]) {
      const unready = await probe(port, 'readyz');
      expect(unready.status).toBe(503);
      expect(unready.body).toContain('waiting for kafka at');
      expect((await probe(port, 'healthz')).status).toBe(200);
    }
    expect([p.relay.exitedOnItsOwn, p.sink.exitedOnItsOwn]).toEqual([false, false]);
  } finally {
    await kafka.start();
  }
  await p.register('c-kafka');
  await waitFor('the event applied', async () => (await appliedOnce(p.db)).distinct === 1, {
    timeoutMs: 120_000,
  });
  await waitFor(
    'both ready',
    async () =>
      (await probe(p.relayPort, 'readyz')).status === 200 &&
      (await probe(p.sinkPort, 'readyz')).status === 200,
    { timeoutMs: 60_000 },
  );
  expect(await terminate(p.sink)).toBe(0);
  expect(await terminate(p.relay)).toBe(0);
}, 240_000);

it('a sink started before its topics exist waits for them and consumes once the relay made them', async () => {
  const p = await pipeline('startup_topics', {});
  p.sink.spawn();
  await logged([p.sink], 'start-up: waiting for topics at', 2);
  const unready = await probe(p.sinkPort, 'readyz');
  expect(unready.status).toBe(503);
  expect(unready.body).toContain('not exist yet (the relay creates the topics)');
  expect(p.sink.exitedOnItsOwn).toBe(false);
  p.relay.spawn();
  await p.register('c-topics');
  await waitFor('the event applied', async () => (await appliedOnce(p.db)).distinct === 1, {
    timeoutMs: 90_000,
  });
  expect(await terminate(p.sink)).toBe(0);
  expect(await terminate(p.relay)).toBe(0);
}, 180_000);

it('gives up after its start-up timeout (exit 1), stops cleanly on SIGTERM while waiting (exit 0), and exits 2 on bad settings', async () => {
  const nowhere = `127.0.0.1:${await freePort()}`; // nothing listens there
  const exited = async (c: Child): Promise<number | null> => {
    await waitFor('the process to exit', () => c.exitedOnItsOwn, { timeoutMs: 60_000 });
    return c.proc?.exitCode ?? null;
  };
  const giveUp = await pipeline(
    'startup_giveup',
    {},
    {
      relay: { KAFKA_BROKERS: nowhere, RELAY_STARTUP_TIMEOUT_MS: '3000' },
      sink: { KAFKA_BROKERS: nowhere, SINK_STARTUP_TIMEOUT_MS: '3000' },
    },
  );
  giveUp.relay.spawn();
  giveUp.sink.spawn();
  expect(await exited(giveUp.sink)).toBe(1);
  expect(giveUp.sink.output()).toMatch(
    new RegExp(
      `gave up after \\d+ ms \\(SINK_STARTUP_TIMEOUT_MS=3000\\) waiting for kafka at ${nowhere}`,
    ),
  );
  expect(await exited(giveUp.relay)).toBe(1);
  expect(giveUp.relay.output()).toMatch(
    new RegExp(
      `gave up after \\d+ ms \\(RELAY_STARTUP_TIMEOUT_MS=3000\\) waiting for kafka at ${nowhere}`,
    ),
  );

  const forever = await pipeline(
    'startup_sigterm',
    {},
    {
      relay: { KAFKA_BROKERS: nowhere },
      sink: { KAFKA_BROKERS: nowhere },
    },
  );
  forever.relay.spawn();
  forever.sink.spawn();
  await logged([forever.relay, forever.sink], 'start-up: waiting for kafka at');
  expect(await terminate(forever.sink)).toBe(0);
  expect(await terminate(forever.relay)).toBe(0);
  expect(forever.sink.output()).toContain('start-up: stopped while waiting for kafka');

  const bad = await pipeline(
    'startup_config',
    {},
    {
      relay: { RELAY_STARTUP_TIMEOUT_MS: '-1' },
      sink: { SINK_STARTUP_TIMEOUT_MS: 'soon' },
    },
  );
  bad.relay.spawn();
  bad.sink.spawn();
  expect(await exited(bad.sink)).toBe(2);
  expect(bad.sink.output()).toContain('SINK_STARTUP_TIMEOUT_MS');
  expect(await exited(bad.relay)).toBe(2);
  expect(bad.relay.output()).toContain('RELAY_STARTUP_TIMEOUT_MS');
}, 180_000);
