/**
 * What an operator sees of a sink: exact counters for a scripted scenario, readiness that follows
 * MySQL, trace ids in the logs, and no password anywhere in them. On a MariaDB of its own (it is
 * stopped and started).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import {
  INVALID_SPAN_CONTEXT,
  propagation,
  trace,
  TraceFlags,
  type Context,
  type Span,
  type SpanOptions,
  type TextMapPropagator,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api';
import { pino } from 'pino';
import { type Stack } from '../infra/local/stack.js';
import { startOwnStack } from '../test/support/own-stack.js';
import { shopCommands } from '../test/support/shop.js';
import { checkEntry } from '../relay/entry.js';
import { scannedEntry } from '../relay/memory-fakes.js';
import { HEADERS } from '../schemas/envelope.js';
import { InMemoryWriteStore } from '../write/memory-store.js';
import { waitFor } from '../test/support/servers.js';
import { startSink, type SinkHandle } from './sink.js';
import { sinkTestEnv, type SinkTestEnv } from './test-harness.js';
import { ShopHistory, eventRecord, produce, testProjections } from './testing.js';

let stack: Stack;
let t: SinkTestEnv;
let sink: SinkHandle;
const logs: string[] = [];

beforeAll(async () => {
  stack = await startOwnStack(['mysql'], 'cqrs-sink-observability');
  t = await sinkTestEnv('observe', {
    partitions: 2,
    mysqlUrl: { admin: stack.env.MYSQL_URL ?? '', sink: stack.env.MYSQL_SINK_URL ?? '' },
  });
  sink = await startSink({
    catalog: t.catalog,
    projections: testProjections,
    config: t.config({
      SINK_OPS_PORT: '0',
      SINK_BATCH_SIZE: '10',
      SINK_RETRY_MAX_MS: '500',
      SINK_GAP_TIMEOUT_MS: '600000',
    }),
    logger: pino({ level: 'debug' }, { write: (line: string) => void logs.push(line) }),
  });
}, 240_000);
afterAll(async () => {
  await sink.stop();
  await t.close();
  await stack.stop();
});

function ops(): string {
  if (!sink.opsUrl) throw new Error('the sink has no operations endpoint');
  return sink.opsUrl;
}

/** `name{labels} value` lines of one metric from the endpoint, as a map. */
async function scrape(name: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${ops()}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

const outcome = async (o: string): Promise<number> =>
  (await scrape('cqrs_sync_sink_events_total')).get(
    `cqrs_sync_sink_events_total{outcome="${o}"}`,
  ) ?? 0;

it('counts a scripted scenario exactly: 20 applied, one poison, two duplicates, one stale', async () => {
  const h = new ShopHistory();
  const good = Array.from({ length: 20 }, (_, i) =>
    eventRecord(t.codec, t.catalog, h.customerRegistered(`c-${i}`, `C ${i}`, `c${i}@x.io`)),
  );
  // Too long for its column: refused by MySQL's strict mode, dead-lettered, its aggregate parked.
  const poison = eventRecord(
    t.codec,
    t.catalog,
    h.customerRegistered('c-poison', 'x'.repeat(300), 'p@x.io'),
  );
  const at = (i: number) => {
    const r = good[i];
    if (!r) throw new Error(`no record ${i}`);
    return r;
  };
  const traced = {
    ...at(0),
    headers: {
      ...at(0).headers,
      [HEADERS.traceparent]: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    },
  };
  await produce(t.producer, [traced, ...good.slice(1), poison]);
  await waitFor(
    'the first 21 settled',
    async () => (await outcome('applied')) === 20 && (await outcome('dead_lettered')) === 1,
  );

  // The same records again (same event ids), and an older version under a new event id.
  const stale = { ...at(2), headers: { ...at(2).headers, [HEADERS.eventId]: randomUUID() } };
  await produce(t.producer, [at(0), at(1), stale]);
  await waitFor(
    'duplicates and the stale one',
    async () => (await outcome('duplicate')) + (await outcome('stale')) === 3,
  );

  expect(await outcome('applied')).toBe(20);
  expect(await outcome('duplicate')).toBe(2);
  expect(await outcome('stale')).toBe(1);
  expect(await outcome('dead_lettered')).toBe(1);
  expect(
    (await scrape('cqrs_sync_sink_parked_aggregates')).get('cqrs_sync_sink_parked_aggregates'),
  ).toBe(1);
  // The same definition as status and dlq list: held rows of kind dead in MySQL.
  expect((await scrape('cqrs_sync_sink_dead_letters')).get('cqrs_sync_sink_dead_letters')).toBe(1);
  const e2e = await scrape('cqrs_sync_sink_end_to_end_seconds_count');
  expect(e2e.get('cqrs_sync_sink_end_to_end_seconds_count')).toBe(24);
  // Every partition's lag is known and zero once all is applied.
  const lag = await scrape('cqrs_sync_sink_consumer_lag');
  expect(lag.size).toBeGreaterThan(0);
  expect([...lag.values()].every((v) => v === 0)).toBe(true);
  expect((await scrape('process_cpu_seconds_total')).size).toBe(1);

  const lines = logs.filter((l) => l.includes('"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"'));
  expect(lines.length).toBeGreaterThan(0);
  expect(JSON.parse(lines[0] ?? '{}')).toMatchObject({
    component: 'sink',
    eventId: at(0).headers[HEADERS.eventId],
    aggregateId: 'c-0',
    msg: 'event committed',
  });
}, 120_000);

it('turns unready while MySQL is down and ready again when it is back; logs no password', async () => {
  expect((await fetch(`${ops()}/readyz`)).status).toBe(200);
  expect((await fetch(`${ops()}/healthz`)).status).toBe(200);
  await stack.get('mysql')?.stop();
  // An event arriving during the outage makes the sink retry (and log the failures).
  await produce(t.producer, [
    eventRecord(t.codec, t.catalog, new ShopHistory().customerRegistered('c-late', 'L', 'l@x.io')),
  ]);
  await waitFor('unready', async () => (await fetch(`${ops()}/readyz`)).status === 503, {
    timeoutMs: 30_000,
  });
  const body = (await (await fetch(`${ops()}/readyz`)).json()) as Record<string, unknown>;
  expect(JSON.stringify(body)).toContain('mysql');
  expect((await fetch(`${ops()}/healthz`)).status).toBe(200);

  await stack.get('mysql')?.start?.();
  await waitFor('ready again', async () => (await fetch(`${ops()}/readyz`)).status === 200, {
    timeoutMs: 60_000,
  });
  await waitFor('the late event applied', async () => (await outcome('applied')) === 21);

  const password = new URL(stack.env.MYSQL_SINK_URL ?? '').password;
  expect(password.length).toBeGreaterThan(0);
  expect(logs.some((l) => l.includes('retrying'))).toBe(true);
  expect(logs.filter((l) => l.includes(password))).toEqual([]);
  // One `component` per line (the kafkajs child does not repeat the sink's).
  expect(logs.filter((l) => (l.match(/"component":/g) ?? []).length > 1)).toEqual([]);
}, 180_000);

it('opens an apply span in (and linked to) the trace of the command that caused the event', async () => {
  // A recording tracer and a W3C-style propagator, as an application's OpenTelemetry SDK would
  // register them (the SDK itself is the application's choice, not a dependency of ours).
  const spans: { name: string; options: SpanOptions; parent: Context | undefined }[] = [];
  // Not `trace.getTracer(...)`: that is a proxy to the provider registered below, so its spans
  // would come back here without end (the sink then failed with a stack overflow).
  const tracer: Tracer = {
    startSpan: (name: string, options: SpanOptions = {}, parent?: Context): Span => {
      spans.push({ name, options, parent });
      return trace.wrapSpanContext(INVALID_SPAN_CONTEXT);
    },
    startActiveSpan: () => {
      throw new Error('the sink does not use startActiveSpan');
    },
  };
  const provider: TracerProvider = { getTracer: () => tracer };
  const w3c: TextMapPropagator = {
    inject: () => undefined,
    extract: (ctx: Context, carrier: unknown) => {
      const header = (carrier as Record<string, string>).traceparent ?? '';
      const [, traceId, spanId] = header.split('-');
      if (!traceId || !spanId) return ctx;
      return trace.setSpanContext(ctx, {
        traceId,
        spanId,
        traceFlags: TraceFlags.SAMPLED,
        isRemote: true,
      });
    },
    fields: () => ['traceparent'],
  };
  trace.setGlobalTracerProvider(provider);
  propagation.setGlobalPropagator(w3c);
  try {
    const rec = eventRecord(
      t.codec,
      t.catalog,
      new ShopHistory().customerRegistered('c-traced', 'T', 't@x.io'),
    );
    const traceId = 'a'.repeat(32);
    await produce(t.producer, [
      { ...rec, headers: { ...rec.headers, traceparent: `00-${traceId}-${'b'.repeat(16)}-01` } },
    ]);
    await waitFor('a linked apply span', () =>
      Promise.resolve(
        spans.some(
          (s) =>
            s.name === 'cqrs-sync sink apply' &&
            (s.options.links ?? []).some((l) => l.context.traceId === traceId) &&
            // One traced event in the batch: the apply span is a child in the command's trace.
            s.parent !== undefined &&
            trace.getSpanContext(s.parent)?.traceId === traceId,
        ),
      ),
    );
  } finally {
    trace.disable();
    propagation.disable();
  }
}, 60_000);

it("logs the command's trace id on the applied event's line: write side, relay mapping, sink", async () => {
  // The command carries a traceparent (as from an HTTP request); the write side stores it on the
  // outbox entry, the relay's entry check makes the Kafka record, and the sink logs its trace id.
  const store = new InMemoryWriteStore();
  const traceId = 'c'.repeat(32);
  await shopCommands(store, t.codec).RegisterCustomer({
    commandId: randomUUID(),
    customerId: 'c-write-traced',
    name: 'W',
    email: 'w@x.io',
    traceparent: `00-${traceId}-${'d'.repeat(16)}-01`,
  });
  const entry = store.outbox[0];
  if (!entry) throw new Error('no outbox entry');
  const checked = await checkEntry(scannedEntry(entry), t.catalog, t.codec);
  if (!checked.ok) throw new Error(checked.bad.reason);
  await produce(t.producer, [checked.entry.record]);
  await waitFor('the traced event committed', () =>
    Promise.resolve(logs.some((l) => l.includes(`"trace_id":"${traceId}"`))),
  );
  const line = logs.find((l) => l.includes(`"trace_id":"${traceId}"`)) ?? '{}';
  expect(JSON.parse(line)).toMatchObject({
    component: 'sink',
    msg: 'event committed',
    eventId: entry.eventId,
    aggregateId: 'c-write-traced',
  });
}, 60_000);
