/** The relay's operations endpoint against the local servers: metrics that match the outbox. */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { MongoClient } from 'mongodb';
import { pino } from 'pino';
import { EventCodec } from '../schemas/codec.js';
import { ConfluentRegistry } from '../schemas/registry.js';
import { testServers, uniqueName, waitFor } from '../test/support/servers.js';
import { startRelay } from './start.js';
import {
  appendEntries,
  customerEntries,
  outboxEntries,
  testCatalog,
  testRelayConfig,
} from './testing.js';

const servers = testServers();
let client: MongoClient;

beforeAll(async () => {
  client = new MongoClient(servers.mongodbUri);
  await client.connect();
});
afterAll(async () => {
  await client.close();
});

async function scrape(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line === '') continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

const sum = (m: Map<string, number>, name: string): number =>
  [...m].filter(([k]) => k === name || k.startsWith(`${name}{`)).reduce((a, [, v]) => a + v, 0);

it('serves metrics that match the outbox, readiness, and closes the endpoint on stop', async () => {
  const database = uniqueName('relayops');
  const catalog = testCatalog(uniqueName('o'));
  const codec = new EventCodec(catalog, new ConfluentRegistry(servers.schemaRegistryUrl));
  await codec.registerAll();
  const db = client.db(database);
  await appendEntries(db, customerEntries(codec, ['a', 'b', 'c', 'd'], 1, 5));

  const relay = await startRelay({
    catalog,
    config: testRelayConfig(servers, database, {
      opsPort: 0,
      topicPartitions: 1,
    }),
    logger: pino({ level: 'silent' }),
    mongoClient: client,
  });
  try {
    const url = relay.opsUrl ?? '';
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    await waitFor('all relayed', async () => (await outboxEntries(db)).length === 0);
    await waitFor('backlog 0 on the endpoint', async () => {
      const m = await scrape(url);
      return m.get('cqrs_sync_relay_outbox_backlog') === 0;
    });
    const m = await scrape(url);
    expect(sum(m, 'cqrs_sync_relay_published_total')).toBe(20);
    expect(m.get('cqrs_sync_relay_outbox_oldest_pending_age_seconds')).toBe(0);
    expect(m.get(`cqrs_sync_relay_lease_holder{owner="${relay.owner}"}`)).toBe(1);
    expect(m.get('cqrs_sync_relay_lease_fencing_token')).toBeGreaterThan(0);
    expect(m.get('cqrs_sync_relay_active')).toBe(1);
    expect(m.has('process_cpu_seconds_total')).toBe(true);

    // Entries held behind a failed one (a version gap: v7 without v6) show as backlog, with an age.
    await appendEntries(
      db,
      customerEntries(codec, ['a'], 7, 8).map((e) => ({
        ...e,
        occurredAt: new Date(Date.now() - 60_000),
      })),
    );
    await waitFor('backlog 1, a minute old', async () => {
      const now = await scrape(url);
      return (
        now.get('cqrs_sync_relay_outbox_backlog') === 1 &&
        (now.get('cqrs_sync_relay_outbox_oldest_pending_age_seconds') ?? 0) >= 60 &&
        now.get('cqrs_sync_relay_held_aggregates') === 1
      );
    });
    const m2 = await scrape(url);
    expect(m2.get('cqrs_sync_relay_failed_entries_total{code="version_gap"}')).toBe(1);

    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).toBe(200);
    expect(JSON.stringify(await ready.json())).toContain('mongodb');
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
  } finally {
    await relay.stop();
  }
  await expect(fetch(`${relay.opsUrl ?? ''}/healthz`)).rejects.toThrow();
}, 120_000);
