/**
 * The demo web app's HTTP behaviour on a real socket (a real server on 127.0.0.1, Node's fetch):
 * error answers, request bodies, path encoding and the /metrics page. The write side is the demo's
 * command handlers over an in-memory store; the query side and the pipeline panel are fakes (no
 * request here reads them).
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import { pino } from 'pino';
import { Counter, Registry, collectDefaultMetrics } from 'prom-client';
import { InMemoryWriteStore } from '../../write/memory-store.js';
import { createDemoApp, type DemoApp, type DemoAppOptions } from './app.js';
import { appOptions } from './testing.js';

interface MetricFamily {
  readonly name: string;
  readonly type: string;
  readonly metrics: readonly unknown[];
}
// No ES module and no types of its own: loaded as CommonJS, with the little of its shape we use.
const parsePrometheusText = createRequire(import.meta.url)('parse-prometheus-text-format') as (
  text: string,
) => MetricFamily[];

interface Running {
  readonly url: string;
  readonly store: InMemoryWriteStore;
  readonly logs: Record<string, unknown>[];
}

const apps: DemoApp[] = [];

afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

async function start(
  overrides: Partial<DemoAppOptions> = {},
  store = new InMemoryWriteStore(),
): Promise<Running> {
  const logs: Record<string, unknown>[] = [];
  const logger = pino(
    { level: 'info' },
    { write: (line: string) => logs.push(JSON.parse(line) as Record<string, unknown>) },
  );
  const app = createDemoApp(await appOptions(store, { logger, ...overrides }));
  apps.push(app);
  return { url: await app.listen(0, '127.0.0.1'), store, logs };
}

async function call(
  base: string,
  method: string,
  path: string,
  body?: string,
): Promise<{ status: number; type: string | null; json: Record<string, unknown> }> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body }),
    signal: AbortSignal.timeout(5_000),
  });
  const type = res.headers.get('content-type');
  return { status: res.status, type, json: (await res.json()) as Record<string, unknown> };
}

/** Every error answer: JSON, a message, and never a stack trace. */
function expectJsonError(r: { type: string | null; json: Record<string, unknown> }): void {
  expect(r.type).toMatch(/^application\/json/);
  expect(typeof r.json.message).toBe('string');
  expect(JSON.stringify(r.json)).not.toMatch(/\n\s+at |\.ts:\d+/);
}

describe('a body key that names an Object.prototype member', () => {
  // Reported: {"toString":1,...} gave 500 (`out[key].push is not a function`) and a stack trace.
  it.each(['toString', 'constructor', '__proto__', 'hasOwnProperty'])(
    'is refused as an unknown field (400, its own message): %s',
    async (key) => {
      const { url, store } = await start();
      const body = `{${JSON.stringify(key)}:1,"name":"a","email":"a@b.co"}`;
      const r = await call(url, 'POST', '/api/customers', body);
      expect(r.status).toBe(400);
      expectJsonError(r);
      const fields = r.json.fields as Record<string, unknown>;
      expect(Object.prototype.hasOwnProperty.call(fields, key)).toBe(true);
      expect(fields[key]).toEqual(['is not a known field']);
      expect(store.documents.size).toBe(0);
    },
  );

  it('does not pollute Object.prototype', async () => {
    const { url } = await start();
    const r = await call(
      url,
      'POST',
      '/api/customers',
      '{"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}},"name":"a","email":"a@b.co"}',
    );
    expect(r.status).toBe(400);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('each unknown key has its own entry', async () => {
    const { url } = await start();
    const r = await call(
      url,
      'POST',
      '/api/customers',
      '{"a":1,"b":2,"name":"a","email":"a@b.co"}',
    );
    expect(r.status).toBe(400);
    expect(r.json.fields).toEqual({ a: ['is not a known field'], b: ['is not a known field'] });
  });
});

describe('a malformed percent-encoding in the path', () => {
  // Reported: both gave 500 (URIError from decodeURIComponent).
  it.each([
    ['PATCH', '/api/customers/%E0%A4%A', '{"name":"a"}'],
    ['DELETE', '/api/orders/%', undefined],
    ['POST', '/api/orders/%ZZ/place', undefined],
    ['DELETE', '/api/orders/o-1/lines/%C0', undefined],
  ])('is a 400: %s %s', async (method, path, body) => {
    const { url, logs } = await start();
    const r = await call(url, method, path, body);
    expect(r.status).toBe(400);
    expectJsonError(r);
    expect(logs.filter((l) => l.level === 50)).toEqual([]);
  });
});

describe('a body over the limit', () => {
  // Reported: after a 413 the connection stayed open with the body unread; with Node's fetch, a
  // 2 MB body, then a 64 KiB + 1 body, then any request: the third hung ~6 s, failed with
  // ECONNRESET and its command never ran (3 of 3 tries).
  it('answers 413 and loses no later request on the same client', async () => {
    const { url, store } = await start();
    const big = JSON.stringify({ name: 'x'.repeat(2 * 1024 * 1024), email: 'a@b.co' });
    const first = await call(url, 'POST', '/api/customers', big);
    expect(first.status).toBe(413);
    expectJsonError(first);

    const justOver = `{"name":"${'y'.repeat(64 * 1024 - 10)}"}`;
    expect(Buffer.byteLength(justOver)).toBe(64 * 1024 + 1);
    const second = await call(url, 'POST', '/api/customers', justOver);
    expect(second.status).toBe(413);
    expectJsonError(second);

    const third = await call(
      url,
      'POST',
      '/api/customers',
      JSON.stringify({ customerId: 'c-after-413', name: 'After', email: 'after@b.co' }),
    );
    expect(third.status).toBe(202);
    expect(store.documents.size).toBe(1);
  }, 30_000);

  it('answers 413 to a streamed body (no Content-Length) once it passes the limit, then serves the next request', async () => {
    const { url, store } = await start();
    const chunk = new TextEncoder().encode('x'.repeat(64 * 1024));
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent === 0) controller.enqueue(new TextEncoder().encode('{"name":"'));
        if (sent >= 32) controller.close();
        else controller.enqueue(chunk);
        sent++;
      },
    });
    const res = await fetch(`${url}/api/customers`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      duplex: 'half',
      signal: AbortSignal.timeout(5_000),
    });
    expect(res.status).toBe(413);
    expect(res.headers.get('connection')).toBe('close');
    expectJsonError({
      type: res.headers.get('content-type'),
      json: (await res.json()) as Record<string, unknown>,
    });
    const next = await call(
      url,
      'POST',
      '/api/customers',
      JSON.stringify({ customerId: 'c-after-stream', name: 'After', email: 'after@b.co' }),
    );
    expect(next.status).toBe(202);
    expect(store.documents.size).toBe(1);
  }, 30_000);

  it('accepts a body of exactly the limit (it is then only invalid)', async () => {
    const { url } = await start();
    const atLimit = `{"name":"${'y'.repeat(64 * 1024 - 11)}"}`;
    expect(Buffer.byteLength(atLimit)).toBe(64 * 1024);
    const r = await call(url, 'POST', '/api/customers', atLimit);
    expect(r.status).toBe(400);
  });
});

describe('error answers', () => {
  it('an unexpected error is logged with its stack and answered 500 JSON without one', async () => {
    const { url, logs } = await start({
      readModel: {
        customers: () => Promise.resolve([]),
        orders: () => Promise.resolve([]),
        watermark: () => Promise.resolve(''),
      },
      registries: () => {
        throw new Error('boom in a collector');
      },
    });
    const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5_000) });
    const r = {
      status: res.status,
      type: res.headers.get('content-type'),
      json: (await res.json()) as Record<string, unknown>,
    };
    expect(r.status).toBe(500);
    expectJsonError(r);
    expect(JSON.stringify(r.json)).not.toContain('boom');
    const logged = logs.find((l) => l.msg === 'request failed unexpectedly');
    expect(logged).toMatchObject({
      level: 50,
      component: 'demo-web',
      method: 'GET',
      url: '/metrics',
    });
    expect((logged?.err as { stack?: string } | undefined)?.stack).toContain('boom in a collector');
  });

  it('404, 405, 415 and invalid JSON are JSON with a message', async () => {
    const { url } = await start();
    const notFound = await call(url, 'GET', '/api/nothing');
    expect(notFound.status).toBe(404);
    expectJsonError(notFound);
    const notAllowed = await call(url, 'PUT', '/api/customers', '{}');
    expect(notAllowed.status).toBe(405);
    expectJsonError(notAllowed);
    const res = await fetch(`${url}/api/customers`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: 'hello',
      signal: AbortSignal.timeout(5_000),
    });
    expect(res.status).toBe(415);
    expectJsonError({
      type: res.headers.get('content-type'),
      json: (await res.json()) as Record<string, unknown>,
    });
    const notJson = await call(url, 'POST', '/api/customers', '{"name":');
    expect(notJson.status).toBe(400);
    expectJsonError(notJson);
  });

  it('a request Node cannot parse gets a JSON 400 and a closed connection', async () => {
    const { url } = await start();
    const { port } = new URL(url);
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1', () => {
        socket.write('NOT A REQUEST\r\n\r\n');
      });
      let text = '';
      socket.setEncoding('utf8');
      socket.on('data', (d: string) => (text += d));
      socket.on('end', () => {
        resolve(text);
      });
      socket.on('error', reject);
      socket.setTimeout(5_000, () => {
        reject(new Error('no answer within 5 s'));
      });
    });
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer.toLowerCase()).toContain('connection: close');
    const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as Record<
      string,
      unknown
    >;
    expect(typeof body.message).toBe('string');
  });
});

describe('a command on an aggregate whose relay is behind', () => {
  it('is a 503 relay_behind with Retry-After that saved nothing, and runs once the relay caught up', async () => {
    // Room for one unrelayed event: the registration fills it.
    const { url, store } = await start({}, new InMemoryWriteStore({ maxUnrelayedEntries: 1 }));
    const created = await call(
      url,
      'POST',
      '/api/customers',
      JSON.stringify({ customerId: 'c-behind', name: 'Ann', email: 'ann@b.co' }),
    );
    expect(created.status).toBe(202);

    const res = await fetch(`${url}/api/customers/c-behind`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Bo' }),
      signal: AbortSignal.timeout(5_000),
    });
    const json = (await res.json()) as Record<string, unknown>;
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('1');
    expectJsonError({ type: res.headers.get('content-type'), json });
    expect(json).toMatchObject({ error: 'relay_behind', retriable: true });
    expect(store.documents.get('Customer\u0000c-behind')).toMatchObject({ version: 1 });

    store.relayAll();
    const again = await call(
      url,
      'PATCH',
      '/api/customers/c-behind',
      JSON.stringify({ name: 'Bo' }),
    );
    expect(again.status).toBe(202);
    expect(store.documents.get('Customer\u0000c-behind')).toMatchObject({
      version: 2,
      state: { name: 'Bo' },
    });
  });
});

describe('/metrics', () => {
  // Reported: the page repeated 31 families (process_*, nodejs_*), each with its own # TYPE line;
  // the exposition format allows one per name and Prometheus rejects such a scrape.
  it('lists each metric family once when several registries collect the default metrics', async () => {
    const relay = new Registry();
    const sink = new Registry();
    collectDefaultMetrics({ register: relay });
    collectDefaultMetrics({ register: sink });
    new Counter({ name: 'test_relay_things_total', help: 'relay', registers: [relay] }).inc(2);
    new Counter({ name: 'test_sink_things_total', help: 'sink', registers: [sink] }).inc(3);
    const { url } = await start({ registries: () => [relay, sink] });

    const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5_000) });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const families = parsePrometheusText(await res.text());
    const names = families.map((f) => f.name);
    const repeated = names.filter((n, i) => names.indexOf(n) !== i);
    expect(repeated).toEqual([]);
    expect(names).toEqual(
      expect.arrayContaining([
        'test_relay_things_total',
        'test_sink_things_total',
        'process_cpu_user_seconds_total',
        'nodejs_eventloop_lag_seconds',
      ]),
    );
    expect(families.find((f) => f.name === 'test_sink_things_total')?.metrics).toEqual([
      { value: '3' },
    ]);
  });

  it('serves an empty page when no registry is given', async () => {
    const { url } = await start({ registries: () => [] });
    const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5_000) });
    expect(res.status).toBe(200);
    expect(parsePrometheusText(await res.text())).toEqual([]);
  });
});
