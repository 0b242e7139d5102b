import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { MongoClient, type Db } from 'mongodb';
import { pino } from 'pino';
import { shopCommands, type ShopCommands } from '../test/support/shop.js';
import { loadHarnessConfig } from '../infra/local/config.js';
import { startStack, type Stack } from '../infra/local/stack.js';
import { EventCodec } from '../schemas/codec.js';
import { ConfluentRegistry } from '../schemas/registry.js';
import { testServers, uniqueName, waitFor } from '../test/support/servers.js';
import { MongoWriteStore } from '../write/mongo-store.js';
import { startRelay } from './start.js';
import { checkOrder, readTopics, testCatalog, testRelayConfig } from './testing.js';

const servers = testServers();
const logger = pino({ level: 'warn' });
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
let client: MongoClient;

beforeAll(async () => {
  client = new MongoClient(servers.mongodbUri);
  await client.connect();
});
const children = new Set<ChildProcess>();
afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await client.close();
});

async function setup() {
  const database = uniqueName('chaos');
  const prefix = uniqueName('t');
  const catalog = testCatalog(prefix);
  const codec = new EventCodec(catalog, new ConfluentRegistry(servers.schemaRegistryUrl));
  await codec.registerAll();
  const db = client.db(database);
  const store = new MongoWriteStore({ client, database, logger });
  await store.init(['Customer']);
  return { database, prefix, catalog, codec, db, commands: shopCommands(store, codec) };
}

/** Versions `from`..`to` of each customer, through the write side (1 registers, then renames). */
async function commit(
  commands: ShopCommands,
  ids: readonly string[],
  from: number,
  to: number,
): Promise<void> {
  await Promise.all(
    ids.map(async (id) => {
      for (let v = from; v <= to; v++) {
        const commandId = `${id}-v${v}`;
        await (v === 1
          ? commands.RegisterCustomer({
              commandId,
              customerId: id,
              name: 'N1',
              email: `${id}@x.io`,
            })
          : commands.RenameCustomer({ commandId, customerId: id, name: `N${v}` }));
      }
    }),
  );
}

/** What the relay published (and removed) and what is still waiting, over every customer. */
async function progress(db: Db): Promise<{ relayed: number; unrelayed: number }> {
  let relayed = 0;
  let unrelayed = 0;
  for (const doc of await db
    .collection('customer')
    .find({}, { projection: { relayedVersion: 1, outbox: 1 } })
    .toArray()) {
    relayed += typeof doc.relayedVersion === 'number' ? doc.relayedVersion : 0;
    unrelayed += Array.isArray(doc.outbox) ? doc.outbox.length : 0;
  }
  return { relayed, unrelayed };
}

interface Child {
  readonly proc: ChildProcess;
  readonly exited: Promise<number | null>;
  output(): string;
}

function spawnRelay(prefix: string, database: string, extra: Record<string, string> = {}): Child {
  const proc = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(here, 'testing-child.ts'), prefix, 'run'],
    {
      cwd: root,
      env: {
        ...process.env,
        MONGODB_URI: servers.mongodbUri,
        KAFKA_BROKERS: servers.kafkaBrokers.join(','),
        SCHEMA_REGISTRY_URL: servers.schemaRegistryUrl,
        RELAY_OUTBOX_DATABASE: database,
        RELAY_BATCH_SIZE: '100',
        RELAY_LEASE_TTL_MS: '3000',
        RELAY_LEASE_RENEW_MS: '1000',
        RELAY_STANDBY_POLL_MS: '300',
        RELAY_SCAN_INTERVAL_MS: '1000',
        RELAY_TOPIC_PARTITIONS: '3',
        LOG_LEVEL: 'warn',
        ...extra,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.add(proc);
  let out = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) =>
    proc.on('exit', (code) => {
      resolve(code);
    }),
  );
  return { proc, exited, output: () => out };
}

const ids = (prefix: string, n: number): string[] =>
  Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

describe('relay crashes', () => {
  it('kill -9 at 20 random points while publishing: nothing missing, only acknowledged repeats', async () => {
    const { database, prefix, catalog, db, commands } = await setup();
    const aggregates = ids('k', 30);
    await commit(commands, aggregates, 1, 40);
    // Commands keep appending to the same documents while the relay is being killed (their entries
    // reach it through the stream wake-up and through scans, and its marks land between them): the
    // next version of 5 aggregates (in turn) every 100 ms.
    const writing = { on: true };
    const next = new Map(aggregates.map((id) => [id, 41]));
    const writer = (async () => {
      for (let round = 0; writing.on; round++) {
        const batch = aggregates.slice((round * 5) % 30, ((round * 5) % 30) + 5);
        await Promise.all(
          batch.map(async (id) => {
            const v = next.get(id) ?? 1;
            await commit(commands, [id], v, v);
            next.set(id, v + 1);
          }),
        );
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const relayed = async () => (await progress(db)).relayed;
    for (let i = 0; i < 20; i++) {
      const child = spawnRelay(prefix, database);
      const before = await relayed();
      // Kill while it publishes: once it has marked something, at a random moment after.
      await waitFor(
        `relay ${i} publishing`,
        async () =>
          (await relayed()) > before ||
          child.proc.exitCode !== null ||
          (await progress(db)).unrelayed === 0,
        { timeoutMs: 30_000, intervalMs: 20 },
      );
      await new Promise((r) => setTimeout(r, Math.random() * 300));
      child.proc.kill('SIGKILL');
      await child.exited;
    }
    writing.on = false;
    await writer;
    const written = [...next.values()].reduce((n, v) => n + v - 1, 0);
    expect(written).toBe(
      (
        await db
          .collection('customer')
          .find({}, { projection: { version: 1 } })
          .toArray()
      ).reduce((n, d) => n + Number(d.version), 0),
    );
    const last = spawnRelay(prefix, database, { LOG_LEVEL: 'info' });
    await waitFor(
      'every entry relayed',
      async () => {
        const p = await progress(db);
        return p.relayed === written && p.unrelayed === 0;
      },
      { timeoutMs: 120_000 },
    );
    // The entries may all be relayed before this child is even up: SIGTERM once it is running
    // (a signal before Node has loaded the CLI would end it by the default handler, not cleanly).
    await waitFor('the last relay running', () =>
      Promise.resolve(last.output().includes('state changed')),
    );
    last.proc.kill('SIGTERM');
    expect(await last.exited).toBe(0);

    const records = await readTopics(servers.kafkaBrokers, catalog.topics(), written);
    const check = checkOrder(records);
    console.log(
      `kill -9 x20: ${written} entries, ${records.length} records, duplicates=${check.duplicates}`,
    );
    expect(check.outOfOrder).toEqual([]);
    expect(records.length - check.duplicates).toBe(written);
    for (const id of aggregates) {
      const n = check.versions.get(id)?.length ?? 0;
      expect(check.versions.get(id)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    }
  }, 420_000);

  it('two relays: only one publishes; after kill -9 the other takes over within 10 s', async () => {
    const { database, prefix, catalog, commands } = await setup();
    const first = spawnRelay(prefix, database);
    const lease = client.db(database).collection<{ _id: string; owner: string }>('relay_lease');
    await waitFor(
      'the child holds the lease',
      async () => (await lease.findOne({ _id: 'outbox' }))?.owner.includes(`/${first.proc.pid}/`),
      { timeoutMs: 30_000 },
    );
    const second = await startRelay({
      catalog,
      config: testRelayConfig(servers, database, { leaseTtlMs: 3000, leaseRenewMs: 1000 }),
      logger,
      mongoClient: client,
    });
    try {
      await commit(commands, ids('p', 5), 1, 4);
      await readTopics(servers.kafkaBrokers, catalog.topics(), 20);
      expect(second.role).toBe('standby');
      expect(second.stats().published).toBe(0);

      first.proc.kill('SIGKILL');
      const killedAt = Date.now();
      await first.exited;
      await commit(commands, ids('p', 5), 5, 6);
      await waitFor('the second relay active', () => second.role === 'active', {
        timeoutMs: 10_000,
        intervalMs: 50,
      });
      const tookOverMs = Date.now() - killedAt;
      const records = await readTopics(servers.kafkaBrokers, catalog.topics(), 30);
      console.log(`takeover after kill -9: ${tookOverMs} ms`);
      expect(tookOverMs).toBeLessThan(10_000);
      const check = checkOrder(records);
      expect(check.outOfOrder).toEqual([]);
      for (const id of ids('p', 5)) expect(check.versions.get(id)).toEqual([1, 2, 3, 4, 5, 6]);
      expect(second.stats().leaseToken).toBe(2);
    } finally {
      await second.stop();
      first.proc.kill('SIGKILL');
    }
  }, 120_000);

  it('exits 2 on bad configuration, with advice', async () => {
    const child = spawnRelay('x', 'y', {
      RELAY_LEASE_RENEW_MS: '5000',
      RELAY_LEASE_TTL_MS: '6000',
    });
    expect(await child.exited).toBe(2);
    expect(child.output()).toMatch(/RELAY_LEASE_RENEW_MS .* set it to about a third/);
  }, 60_000);
});

describe('broker down for 30 s', () => {
  let stack: Stack;
  beforeAll(async () => {
    const env = Object.fromEntries(
      Object.entries(process.env).filter(
        ([k]) =>
          ![
            'KAFKA_BROKERS',
            'SCHEMA_REGISTRY_URL',
            'MYSQL_URL',
            'MYSQL_SINK_URL',
            'MONGODB_URI',
          ].includes(k),
      ),
    );
    stack = await startStack({
      only: ['kafka'],
      config: loadHarnessConfig({
        ...env,
        CQRS_SYNC_SERVERS: 'local',
        CQRS_SYNC_RUN_DIR: mkdtempSync(path.join(tmpdir(), 'relay-broker-down-')),
      }),
    });
  }, 240_000);
  afterAll(async () => {
    await stack.stop();
  });

  it('retries with backoff while the broker is down, then drains the backlog, nothing lost', async () => {
    const { database, catalog, db, commands } = await setup();
    const brokers = (stack.env.KAFKA_BROKERS ?? '').split(',');
    const relay = await startRelay({
      catalog,
      config: testRelayConfig({ ...servers, kafkaBrokers: brokers }, database, {
        sendTimeoutMs: 5000,
      }),
      logger: pino({ level: 'silent' }),
      mongoClient: client,
    });
    try {
      await commit(commands, ids('b', 10), 1, 20);
      await readTopics(brokers, catalog.topics(), 200);
      const kafka = stack.get('kafka');
      await kafka?.kill?.();
      const downAt = Date.now();
      await commit(commands, ids('b', 10), 21, 50);
      await waitFor('failed attempts while the broker is down', () => relay.stats().errors >= 2, {
        timeoutMs: 30_000,
      });
      // The broker stays down for 30 s.
      await new Promise((r) => setTimeout(r, Math.max(0, 30_000 - (Date.now() - downAt))));
      expect((await progress(db)).unrelayed).toBeGreaterThan(0);
      await kafka?.start?.();
      await waitFor('backlog drained', async () => (await progress(db)).unrelayed === 0, {
        timeoutMs: 90_000,
      });
      const check = checkOrder(await readTopics(brokers, catalog.topics(), 500));
      console.log(
        `broker down 30 s: ${relay.stats().errors} failed passes retried, duplicates=${check.duplicates}`,
      );
      expect(check.outOfOrder).toEqual([]);
      for (const id of ids('b', 10)) {
        expect(check.versions.get(id)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
      }
    } finally {
      await relay.stop();
    }
  }, 240_000);
});
