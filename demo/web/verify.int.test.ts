/**
 * The demo's Verify buttons on the whole pipeline (real MongoDB stand-in, Kafka, registry, MariaDB):
 * tamper with one customer row in MySQL, verify finds exactly that one (class `content`, column
 * `customers.name`), verify and repair heals it through the pipeline, a second verify is clean.
 * The 409 of a second verify while one runs is checked on the app alone, with a verify held open.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { VerifyReport } from '../../verify/index.js';
import { uniqueName, waitFor } from '../../test/support/servers.js';
import { InMemoryWriteStore } from '../../write/memory-store.js';
import { createDemoApp } from './app.js';
import { appOptions, startTestPipeline, type TestPipeline } from './testing.js';

type Json = Record<string, unknown>;

async function call(
  base: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: Json }> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(60_000),
  });
  return { status: res.status, json: (await res.json()) as Json };
}

describe('on the whole pipeline', () => {
  let pipeline: TestPipeline;
  let base: string;

  beforeAll(async () => {
    pipeline = await startTestPipeline('demo_verify');
    base = pipeline.demo.web.url;
  }, 120_000);

  afterAll(async () => {
    await pipeline.stop();
  }, 60_000);

  const customers = async (): Promise<{ id: string; name: string }[]> =>
    (await call(base, 'GET', '/api/customers')).json.customers as { id: string; name: string }[];

  it('tamper answers 409 while there is no customer', async () => {
    const r = await call(base, 'POST', '/api/pipeline/tamper', {});
    expect(r.status).toBe(409);
    expect(r.json.error).toBe('nothing_to_tamper');
    expect(typeof r.json.message).toBe('string');
  });

  it('finds the tampered row, repairs it through the pipeline, then verifies clean', async () => {
    const ids: string[] = [];
    for (const n of ['Ada', 'Grace']) {
      const r = await call(base, 'POST', '/api/customers', {
        commandId: uniqueName('cmd'),
        name: n,
        email: `${n.toLowerCase()}@example.com`,
      });
      expect(r.status).toBe(202);
      ids.push(r.json.aggregateId as string);
    }
    await waitFor('both customers in MySQL', async () => (await customers()).length === 2);

    const t = await call(base, 'POST', '/api/pipeline/tamper', {});
    expect(t.status).toBe(200);
    expect(t.json.demoOnly).toBe(true);
    expect(t.json.message).toMatch(/^demo only/);
    const tampered = t.json.aggregateId as string;
    expect(ids).toContain(tampered);
    const original = t.json.before as string;

    const found = await call(base, 'POST', '/api/pipeline/verify', { repair: false });
    expect(found.status).toBe(200);
    expect(found.json.clean).toBe(false);
    expect(found.json.checked).toBe(2);
    expect(found.json.counts).toEqual({
      missing: 0,
      behind: 0,
      ahead: 0,
      deleted_present: 0,
      content: 1,
      orphan: 0,
    });
    expect(found.json.drift).toEqual([
      { type: 'Customer', id: tampered, class: 'content', columns: ['customers.name'] },
    ]);
    expect(found.json.repaired).toBe(0);
    expect(typeof found.json.durationMs).toBe('number');

    const repaired = await call(base, 'POST', '/api/pipeline/verify', { repair: true });
    expect(repaired.status).toBe(200);
    expect(repaired.json.counts).toMatchObject({ content: 1 });
    expect(repaired.json.repaired).toBe(1);

    await waitFor('the sink applied the repair', async () =>
      (await customers()).some((c) => c.id === tampered && c.name === original),
    );
    const clean = await call(base, 'POST', '/api/pipeline/verify', { repair: false });
    expect(clean.status).toBe(200);
    expect(clean.json.clean).toBe(true);
    expect(clean.json.drift).toEqual([]);
    expect(clean.json.checked).toBe(2);
  }, 120_000);

  it('refuses a body that is not { repair: boolean } (400, nothing run)', async () => {
    const r = await call(base, 'POST', '/api/pipeline/verify', { repair: 'yes' });
    expect(r.status).toBe(400);
    expect(typeof r.json.message).toBe('string');
  });
});

describe('on the app alone', () => {
  it('answers 409 to a second verify while one runs, and JSON errors', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let started!: () => void;
    const running = new Promise<void>((resolve) => {
      started = resolve;
    });
    let calls = 0;
    const report = {
      startedAt: '',
      finishedAt: '',
      clean: true,
      repair: false,
      types: [],
      totals: {
        missing: 0,
        behind: 0,
        ahead: 0,
        deleted_present: 0,
        content: 0,
        orphan: 0,
        checked: 0,
        inFlight: 0,
        repaired: 0,
      },
    } satisfies VerifyReport;
    const app = createDemoApp(
      await appOptions(new InMemoryWriteStore(), {
        pipeline: {
          status: () => Promise.reject(new Error('no pipeline in this test')),
          deadLetters: () => Promise.resolve([]),
          control: {
            redrive: () => Promise.reject(new Error('no pipeline in this test')),
            verify: async () => {
              calls++;
              if (calls > 1) throw new Error('verify failed on purpose');
              started();
              await held;
              return report;
            },
          },
        },
      }),
    );
    const url = await app.listen(0, '127.0.0.1');
    try {
      const first = call(url, 'POST', '/api/pipeline/verify', { repair: false });
      await running;
      const second = await call(url, 'POST', '/api/pipeline/verify', { repair: true });
      expect(second.status).toBe(409);
      expect(second.json.error).toBe('verify_running');
      // No tamper in this app's control: refused, as JSON.
      const tamper = await call(url, 'POST', '/api/pipeline/tamper', {});
      expect(tamper.status).toBe(409);
      expect(tamper.json.error).toBe('tamper_unavailable');
      release();
      expect((await first).status).toBe(200);
      // The guard is released after an answer; an unexpected error is a 500 with a message.
      const failed = await call(url, 'POST', '/api/pipeline/verify', { repair: false });
      expect(failed.status).toBe(500);
      expect(typeof failed.json.message).toBe('string');
      expect(JSON.stringify(failed.json)).not.toMatch(/\n\s+at |\.ts:\d+/);
    } finally {
      release();
      await app.close();
    }
  });
});
