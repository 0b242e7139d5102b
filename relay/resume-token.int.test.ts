/**
 * A stored resume token the change stream cannot use, in the shapes a bad restore or a hand edit
 * leaves in the token document. Issue 17 (R1): the relay kept such a token and retried it forever
 * ("change stream failed" again and again, publish delay up to seconds, /readyz 200, token age 0).
 * Now: dropped within `changeStreamTries` tries, a scan publishes, no entry is lost, the failures
 * counter and /readyz say what is going on meanwhile.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import { realMongod, testServers, uniqueName, waitFor } from '../test/support/servers.js';
import { startRelay } from './start.js';
import type { RelayHandle } from './relay.js';
import { appendEntries, checkOrder, customerEntries, readTopics } from './testing.js';
import { mongoClientPerFile, relayTestEnv } from './test-harness.js';

const servers = testServers();
const logger = pino({ level: 'silent' });
const TRIES = 3;
const client = mongoClientPerFile();

interface Probe {
  status: number;
  changeStream: { ok: boolean; detail?: string } | undefined;
}

async function probe(url: string): Promise<Probe> {
  const res = await fetch(`${url}/readyz`);
  const body = (await res.json()) as {
    checks: Record<string, { ok: boolean; detail?: string } | undefined>;
  };
  return {
    status: res.status,
    changeStream: body.checks.changeStream,
  };
}

async function failures(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = /^cqrs_sync_relay_change_stream_failures_total (\S+)$/m.exec(text);
  return m ? Number(m[1]) : Number.NaN;
}

/** A change stream's token from a collection of another database. */
async function foreignToken(): Promise<unknown> {
  const c = client.db(uniqueName('foreign')).collection('elsewhere');
  await c.insertOne({ _id: 'x' as never });
  const stream = c.watch([], { maxAwaitTimeMS: 100 });
  try {
    await stream.tryNext();
    await c.insertOne({ _id: 'y' as never });
    await waitFor('a change', async () => (await stream.tryNext()) ?? undefined);
    return stream.resumeToken;
  } finally {
    await stream.close();
  }
}

type Shape = (good: Record<string, unknown>) => unknown;
/** Per collection, as the relay stores its tokens: `{ customer: token, order: token }`. */
const each =
  (token: (good: unknown) => unknown): Shape =>
  (good) =>
    Object.fromEntries(Object.entries(good).map(([k, v]) => [k, token(v)]));
const futureOf = (good: unknown): unknown => {
  // The stand-in's token is a position (seconds and a counter, in hex): one from 2035 opens and
  // never shows anything. A real mongod's is longer; a future one of its shape would wait as well.
  const data = (good as { _data?: unknown })._data;
  return typeof data === 'string' && data.length === 16 ? { _data: '7b104d2f00000001' } : good;
};

/** `bad`: the relay must drop it; `either`: a server may accept it (the stand-in does). */
const cases: [string, Shape, 'bad' | 'either'][] = [
  ['_data not hex', each(() => ({ _data: 'zz-not-hex' })), 'bad'],
  ['a plain string', each(() => 'zz-not-a-token'), 'bad'],
  ['a number', each(() => 42), 'bad'],
  ['an object without _data', each(() => ({ token: 'x' })), 'bad'],
  [
    'well-formed but from the future (a deaf stream)',
    each(futureOf),
    realMongod() ? 'either' : 'bad',
  ],
  ['a token from another database', (good) => each(() => foreign)(good), 'either'],
  ['the whole value a string', () => 'zz-not-a-token', 'either'],
  ['the whole value a number', () => 7, 'either'],
];
let foreign: unknown;

describe('a stored resume token the change stream cannot use', () => {
  beforeAll(async () => {
    foreign = await foreignToken();
  });

  it.each(cases)(
    '%s: dropped within the tries, scans publish, nothing lost',
    async (_, shape, kind) => {
      // Slow token retries (1 s, then 2 s) so that a probe sees them; a short deaf window.
      const { catalog, codec, db, config } = await relayTestEnv(client, {
        database: 'token',
        config: {
          opsPort: 0,
          retryInitialMs: 1000,
          changeStreamTries: TRIES,
          changeStreamDeafMs: 1500,
        },
      });
      const state = db.collection<{ _id: string; value: unknown }>('relay_state');
      const ids = ['a', 'b', 'c'];
      await appendEntries(db, customerEntries(codec, ids, 1, 1));
      let relay: RelayHandle = await startRelay({ catalog, config, logger, mongoClient: client });
      let saved: Record<string, unknown>;
      try {
        saved = await waitFor('a token saved', async () => {
          const v = (await state.findOne({ _id: 'resume:outbox' }))?.value as
            Record<string, unknown> | undefined;
          return v?.customer ? v : undefined;
        });
        await readTopics(servers.kafkaBrokers, catalog.topics(), ids.length);
      } finally {
        await relay.stop();
      }

      const bad = await shape(saved);
      await state.updateOne({ _id: 'resume:outbox' }, { $set: { value: bad } });
      await appendEntries(db, customerEntries(codec, ids, 2, 2)); // written while the relay is down
      relay = await startRelay({ catalog, config, logger, mongoClient: client });
      const url = relay.opsUrl ?? '';
      const seen: Probe[] = [];
      const run = { probing: true };
      const prober = (async () => {
        while (run.probing) {
          seen.push(await probe(url));
          await new Promise((r) => setTimeout(r, 50));
        }
      })();
      try {
        await readTopics(servers.kafkaBrokers, catalog.topics(), 2 * ids.length);
        const stored = async () =>
          JSON.stringify((await state.findOne({ _id: 'resume:outbox' }))?.value);
        await waitFor(
          'the bad token dropped',
          async () => (await stored()) !== JSON.stringify(bad),
          {
            timeoutMs: 30_000,
          },
        );
        await waitFor(
          'ready, the stream open',
          async () => {
            const p = await probe(url);
            return p.status === 200 && p.changeStream?.detail?.startsWith('open');
          },
          { timeoutMs: 30_000 },
        );
        // A new event after the recovery: published, and no entry lost or out of order.
        await appendEntries(db, customerEntries(codec, ids, 3, 3));
        const records = await readTopics(servers.kafkaBrokers, catalog.topics(), 3 * ids.length);
        // The reopened stream saw it and gave a token of its own.
        await waitFor('a token the stream gave', async () => {
          const now = await stored();
          return now !== JSON.stringify(bad) && now !== 'null';
        });
        const check = checkOrder(records);
        expect(check.outOfOrder).toEqual([]);
        for (const id of ids) expect(check.versions.get(id)).toEqual([1, 2, 3]);

        const failed = await failures(url);
        const unready = seen.filter((p) => p.status === 503 && p.changeStream?.ok === false);
        if (kind === 'bad') {
          expect(failed).toBeGreaterThanOrEqual(1);
          expect(failed).toBeLessThanOrEqual(TRIES);
          // Retried and failing: not ready, saying why (unless the server dropped it at once).
          if (failed > 1) {
            expect(unready.length).toBeGreaterThan(0);
            expect(unready[0]?.changeStream?.detail).toMatch(/resume token failed \d of 3 tries/);
          }
        } else {
          expect(failed).toBeLessThanOrEqual(TRIES);
        }
        expect(seen.every((p) => p.changeStream !== undefined)).toBe(true);
        expect((await probe(url)).status).toBe(200);
      } finally {
        run.probing = false;
        await prober;
        await relay.stop();
      }
    },
    120_000,
  );
});
