import { beforeEach, describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import { EventCodec } from '../schemas/codec.js';
import { isPipelineError } from '../schemas/errors.js';
import { InMemoryRegistry } from '../write/testing.js';
import { waitFor } from '../test/support/servers.js';
import { relayCli } from './cli.js';
import { loadRelayConfig, type RelayConfig } from './config.js';
import { MemoryLeases, MemoryOutbox, MemoryPublisher } from './memory-fakes.js';
import { Relay } from './relay.js';
import { checkOrder, customerEntries, testCatalog, testRelayConfig } from './testing.js';

const logger = pino({ level: 'silent' });
const servers = { kafkaBrokers: ['x:1'], schemaRegistryUrl: 'http://r', mongodbUri: 'mongodb://m' };
const catalog = testCatalog('unit');
let codec: EventCodec;
let outbox: MemoryOutbox;
let publisher: MemoryPublisher;
let leases: MemoryLeases;

beforeEach(async () => {
  codec = new EventCodec(catalog, new InMemoryRegistry());
  await codec.registerAll();
  outbox = new MemoryOutbox();
  publisher = new MemoryPublisher();
  leases = new MemoryLeases();
});

function relay(overrides: Partial<RelayConfig> = {}, owner = 'me'): Relay {
  return new Relay({
    catalog,
    codec,
    config: testRelayConfig(servers, 'db', {
      scanIntervalMs: 50,
      retryInitialMs: 10,
      retryMaxMs: 40,
      batchSize: 7,
      ...overrides,
    }),
    logger,
    source: outbox,
    publisher,
    leases,
    owner,
  });
}

const entries = (id: string, from: number, to: number, age = 0) =>
  customerEntries(codec, [id], from, to).map((e) => ({
    ...e,
    occurredAt: new Date(Date.now() - age),
  }));
const versionsOf = (id: string) => checkOrder(records()).versions.get(id);
const records = () =>
  publisher.records.map((r) => ({
    topic: r.topic,
    partition: 0,
    key: r.key,
    eventId: r.headers['cqrs-event-id'] ?? '',
    eventType: r.headers['cqrs-event-type'] ?? '',
    version: Number(r.headers['cqrs-version']),
    value: r.value,
  }));
const statusOf = (id: string, v: number) =>
  outbox.docs.find((d) => d.aggregateId === id && d.version === v)?.status;

describe('relay core', () => {
  it('shows no resume-token age until the change stream gave a token, then its age', async () => {
    const r = relay();
    const age = () => r.metrics.getSingleMetricAsString('cqrs_sync_relay_resume_token_age_seconds');
    // No token: no sample at all (a 0 would read as "a token just now").
    expect(await age()).not.toMatch(/^cqrs_sync_relay_resume_token_age_seconds/m);
    await r.start();
    await waitFor('a token', () => outbox.token !== undefined);
    expect(await age()).toMatch(
      /^cqrs_sync_relay_resume_token_age_seconds\{relay="[^"]+"\} [0-9.e-]+$/m,
    );
    await r.stop();
  });

  it('closes the change feed while it drains a backlog of more than a page, then reopens it from now', async () => {
    // 20 entries, pages of 7: more than a page's worth in one pass.
    outbox.insert(...entries('a', 1, 10), ...entries('b', 1, 10));
    outbox.token = { t: -1 };
    const r = relay();
    await r.start();
    await waitFor('backlog', () => publisher.records.length === 20);
    await waitFor('the feed reopened', () => outbox.watchesOpened === 2);
    // The stored token (from before the drain) was dropped, and the reopened feed's saved.
    await waitFor('its token saved', () => JSON.stringify(outbox.token) === '{"t":20}');
    expect((await r.readiness()).changeStream).toEqual({ ok: true, detail: 'open' });
    // A change after the drain still wakes the scan.
    outbox.insert(...entries('a', 11, 11));
    await waitFor('the insert', () => publisher.records.length === 21);
    expect(outbox.watchesOpened).toBe(2);
    await r.stop();
  });

  it('publishes the backlog and later inserts in version order, then marks them relayed', async () => {
    outbox.insert(...entries('a', 1, 10), ...entries('b', 1, 5));
    const r = relay();
    await r.start();
    expect(r.state).toBe('running');
    expect(publisher.topics).toEqual(catalog.topics());
    await waitFor('backlog', () => publisher.records.length === 15);
    outbox.insert(...entries('a', 11, 12), ...entries('c', 1, 1));
    await waitFor('inserts', () => publisher.records.length === 18);
    await waitFor('marked', () => outbox.docs.every((d) => d.status === 'relayed'));
    expect(versionsOf('a')).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    expect(checkOrder(records()).duplicates).toBe(0);
    expect(r.role).toBe('active');
    expect(r.stats()).toMatchObject({ published: 18, failedEntries: 0, leaseToken: 1 });
    // The backlog (more than a page) closed the feed and dropped its token; reopened, it saves one.
    await waitFor('a token', () => outbox.token !== undefined);
    expect(outbox.token).toBeDefined();
    // Backlog and readiness read the outbox itself (the documents' pending entries).
    expect(await r.metrics.getSingleMetricAsString('cqrs_sync_relay_outbox_backlog')).toMatch(
      / 0$/m,
    );
    expect((await r.readiness()).mongodb).toEqual({ ok: true, detail: '0 pending' });
    await Promise.all([r.stop(), r.stop()]);
    expect(r.state).toBe('stopped');
    expect(leases.expiresAt).toBe(0); // released for a fast takeover
    expect(await r.metrics.getSingleMetricAsString('cqrs_sync_relay_published_total')).toMatch(
      / 18$/m,
    );
  });

  it('holds an aggregate behind a bad entry, lets others flow, and resumes after release', async () => {
    const [bad] = entries('a', 2, 2);
    outbox.insert(
      ...entries('a', 1, 1),
      { ...bad, type: 'Nope' },
      ...entries('a', 3, 4),
      ...entries('b', 1, 3),
    );
    const r = relay();
    await r.start();
    await waitFor('others', () => versionsOf('b')?.length === 3);
    await waitFor('failed', () => statusOf('a', 2) === 'failed');
    expect(versionsOf('a')).toEqual([1]);
    expect(statusOf('a', 3)).toBe('pending');
    expect(r.stats().failedEntries).toBe(1);
    expect(await outbox.release('a', 'skip', 'Order')).toBe(0); // a is a Customer
    expect(await outbox.release('a', 'skip', 'Customer')).toBe(1);
    await waitFor('released', () => versionsOf('a')?.length === 3);
    expect(versionsOf('a')).toEqual([1, 3, 4]);
    await r.stop();
  });

  it('holds an aggregate with version_gap at once when a predecessor is missing; release publishes it', async () => {
    outbox.insert(...entries('a', 1, 2));
    const r = relay();
    await r.start();
    await waitFor('first', () => publisher.records.length === 2);
    outbox.insert(...entries('a', 4, 5)); // 3 is missing
    await waitFor('gap', () => statusOf('a', 4) === 'failed');
    const failed = outbox.docs.find((d) => d.version === 4)?.failure as { code: string };
    expect(failed.code).toBe('version_gap');
    expect(statusOf('a', 5)).toBe('pending'); // held behind 4
    // Released: published despite the gap, and 5 follows.
    await outbox.release('a', 'retry');
    await waitFor('released', () => publisher.records.length === 4);
    expect(versionsOf('a')).toEqual([1, 2, 4, 5]);
    await r.stop();
  });

  it('after a restart, publishes v > 1 only when v-1 was relayed or skipped; absent is a gap', async () => {
    // a: 1-2 published by an earlier relay and removed; old: 1-4 relayed long ago.
    outbox.relayedUpTo.set('Customer/a', 2);
    outbox.relayedUpTo.set('Customer/old', 4);
    outbox.insert(
      ...entries('a', 3, 4),
      ...entries('old', 5, 6, 60_000),
      ...entries('p', 1, 1).map((e) => ({ ...e, status: 'failed' })),
      ...entries('p', 2, 2),
      ...entries('s', 1, 1).map((e) => ({ ...e, status: 'skipped' })),
      ...entries('s', 2, 2),
      ...entries('q', 2, 3), // nothing says what became of q1: a gap at once, no waiting
    );
    const r = relay();
    await r.start();
    await waitFor('published', () => publisher.records.length === 5);
    await waitFor('q held', () => statusOf('q', 2) === 'failed');
    expect(publisher.records.map((x) => `${x.key}:${x.headers['cqrs-version'] ?? ''}`)).toEqual([
      'a:3',
      'a:4',
      'old:5',
      'old:6',
      's:2',
    ]);
    expect(statusOf('p', 2)).toBe('pending'); // held behind p1
    expect(statusOf('q', 3)).toBe('pending'); // held behind q2
    expect(r.stats().failedEntries).toBe(1);
    await r.stop();
  });

  it('retries a failing broker with backoff', async () => {
    publisher.failures = 3;
    outbox.failScans = 1;
    outbox.insert(...entries('a', 1, 3));
    const r = relay();
    await r.start();
    await waitFor('published', () => publisher.records.length === 3);
    expect(r.stats().errors).toBe(4);
    await r.stop();
  });

  it('stops publishing when another relay takes the lease, and takes it back when free', async () => {
    outbox.insert(...entries('a', 1, 2));
    const r = relay({ leaseRenewMs: 100, leaseTtlMs: 300, standbyPollMs: 50 });
    await r.start();
    await waitFor('published', () => publisher.records.length === 2);
    leases.steal();
    await waitFor('standby', () => r.role === 'standby');
    outbox.insert(...entries('a', 3, 3));
    expect(publisher.records).toHaveLength(2);
    leases.expiresAt = 0; // the other relay died
    await waitFor('active again', () => r.role === 'active');
    await waitFor('published after takeover', () => publisher.records.length === 3);
    expect(r.stats().leaseToken).toBe(3);
    await r.stop();
  });

  it('waits as standby while another relay holds the lease', async () => {
    leases.steal();
    const r = relay({ standbyPollMs: 20 });
    await r.start();
    outbox.insert(...entries('a', 1, 1));
    await waitFor('a few polls', () => leases.token === 1 && r.role === 'standby');
    expect(publisher.records).toHaveLength(0);
    await r.stop();
    expect(r.state).toBe('stopped');
  });

  it('drops a resume token the change stream cannot use, and scans', async () => {
    outbox.token = { stale: true };
    outbox.historyLost = true;
    outbox.insert(...entries('a', 1, 2));
    const r = relay();
    await r.start();
    await waitFor('published', () => publisher.records.length === 2);
    await waitFor('stream reopened', () => outbox.handlers !== undefined);
    outbox.handlers?.onError(Object.assign(new Error('lost'), { code: 286 }), true);
    outbox.insert(...entries('a', 3, 3));
    await waitFor('after stream error', () => publisher.records.length === 3);
    await r.stop();
  });

  it('fails to start when topics cannot be created', async () => {
    publisher.ensureTopics = () => Promise.reject(new Error('no broker'));
    const r = relay();
    await expect(r.start()).rejects.toThrow('no broker');
    expect(r.state).toBe('failed');
    await expect(r.done).rejects.toThrow('no broker');
    await r.stop();
    expect(r.state).toBe('failed');
  });
});

describe('relay config', () => {
  const env = {
    MONGODB_URI: 'mongodb://h:1',
    KAFKA_BROKERS: 'a:1, b:2',
    SCHEMA_REGISTRY_URL: 'http://r:8081',
  };
  it('has documented defaults', () => {
    const c = loadRelayConfig(env);
    expect(c).toMatchObject({
      kafkaBrokers: ['a:1', 'b:2'],
      database: 'cqrs',
      name: 'outbox',
      batchSize: 1000,
      leaseTtlMs: 6000,
      leaseRenewMs: 2000,
      topicPartitions: 6,
      minCompactionLagMs: 86_400_000,
      aggregateCollections: {},
    });
    expect(Object.isFrozen(c)).toBe(true);
    expect(
      loadRelayConfig({ ...env, RELAY_AGGREGATE_COLLECTIONS: 'Customer=c, Order=o' })
        .aggregateCollections,
    ).toEqual({ Customer: 'c', Order: 'o' });
  });
  it('names what the sink also has as the sink does, and still reads the old names', () => {
    expect(loadRelayConfig(env)).toMatchObject({
      logLevel: 'info',
      stopGraceMs: 15_000,
      retryInitialMs: 200,
      retryMaxMs: 5000,
      retryFactor: 2,
    });
    const named = (extra: Record<string, string>) => loadRelayConfig({ ...env, ...extra });
    expect(named({ LOG_LEVEL: 'debug' }).logLevel).toBe('debug');
    expect(named({ RELAY_STOP_GRACE_MS: '700' }).stopGraceMs).toBe(700);
    expect(named({ RELAY_RETRY_FACTOR: '3' }).retryFactor).toBe(3);
    // Deprecated: RELAY_LOG_LEVEL (wins over LOG_LEVEL, so a shared environment keeps the relay's
    // own level) and RELAY_DRAIN_TIMEOUT_MS (the new name wins).
    expect(named({ LOG_LEVEL: 'debug', RELAY_LOG_LEVEL: 'warn' }).logLevel).toBe('warn');
    expect(named({ RELAY_DRAIN_TIMEOUT_MS: '900' }).stopGraceMs).toBe(900);
    expect(named({ RELAY_DRAIN_TIMEOUT_MS: '900', RELAY_STOP_GRACE_MS: '800' }).stopGraceMs).toBe(
      800,
    );
  });
  it('limits closing after the grace period: RELAY_STOP_FORCE_MS, 10 s unless set', () => {
    expect(loadRelayConfig(env).stopForceMs).toBe(10_000);
    expect(loadRelayConfig({ ...env, RELAY_STOP_FORCE_MS: '2500' }).stopForceMs).toBe(2500);
    for (const bad of ['0', '-1', 'soon']) {
      expect(() => loadRelayConfig({ ...env, RELAY_STOP_FORCE_MS: bad })).toThrow(
        /RELAY_STOP_FORCE_MS/,
      );
    }
  });
  it('fails with advice', () => {
    const fails = (extra: Record<string, string>, re: RegExp) => {
      try {
        loadRelayConfig({ ...env, ...extra });
      } catch (e) {
        expect(isPipelineError(e, 'config_invalid')).toBe(true);
        expect((e as Error).message).toMatch(re);
        return;
      }
      throw new Error('expected a failure');
    };
    fails({ MONGODB_URI: 'http://x' }, /MONGODB_URI/);
    fails({ RELAY_LEASE_RENEW_MS: '4000' }, /about a third/);
    fails({ RELAY_RETRY_INITIAL_MS: '9000' }, /RETRY_INITIAL/);
    fails({ KAFKA_BROKERS: ' , ' }, /no broker/);
    fails({ RELAY_AGGREGATE_COLLECTIONS: 'Customer' }, /Type=collection/);
  });
});

describe('relay cli', () => {
  it('prints help, and refuses unknown commands and bad config with exit code 2', async () => {
    const write = process.stdout.write.bind(process.stdout);
    const ewrite = process.stderr.write.bind(process.stderr);
    let out = '';
    process.stdout.write = (s: string) => ((out += s), true);
    process.stderr.write = (s: string) => ((out += s), true);
    try {
      expect(await relayCli(['relay', '--help'], { catalog })).toBe(0);
      expect(out).toMatch(/Examples:/);
      const env = {
        MONGODB_URI: 'mongodb://h:1',
        KAFKA_BROKERS: 'a:1',
        SCHEMA_REGISTRY_URL: 'http://r',
      };
      expect(await relayCli(['nope'], { catalog }, env)).toBe(2);
      expect(await relayCli(['release'], { catalog }, env)).toBe(2);
      expect(await relayCli(['run'], { catalog }, {})).toBe(2);
      expect(out).toMatch(/unknown relay command "nope"/);
      expect(out).toMatch(/needs an aggregate id/);
    } finally {
      process.stdout.write = write;
      process.stderr.write = ewrite;
    }
  });
});
