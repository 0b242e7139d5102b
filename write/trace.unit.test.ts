/**
 * Trace context from a command to the Kafka headers the sink reads: the write side stores the
 * active span's W3C `traceparent`/`tracestate` on each outbox entry, the relay's entry check copies
 * them to headers, and the sink's header parser returns them. No SDK: a recording propagator stands
 * in for the one an application registers.
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import {
  ROOT_CONTEXT,
  TraceFlags,
  context,
  propagation,
  trace,
  type Context,
  type ContextManager,
  type TextMapPropagator,
} from '@opentelemetry/api';
import type { EventCodec } from '../schemas/codec.js';
import { fromHeaders } from '../schemas/envelope.js';
import { checkEntry } from '../relay/entry.js';
import { scannedEntry } from '../relay/memory-fakes.js';
import { InMemoryWriteStore } from './memory-store.js';
import { profileCodec, profileCommands } from './testing.js';

const traceId = '0af7651916cd43dd8448eb211c80319c';
const spanId = 'b7ad6b7169203331';

/** Injects W3C `traceparent` and a fixed `tracestate` for the active span, as an SDK would. */
const w3c: TextMapPropagator = {
  inject: (ctx: Context, carrier: unknown) => {
    const sc = trace.getSpanContext(ctx);
    if (!sc) return;
    const c = carrier as Record<string, string>;
    c.traceparent = `00-${sc.traceId}-${sc.spanId}-0${String(sc.traceFlags)}`;
    c.tracestate = 'vendor=1';
  },
  extract: (ctx: Context) => ctx,
  fields: () => ['traceparent', 'tracestate'],
};

/**
 * A context manager whose active context the test sets (an SDK's async-hooks manager keeps the
 * context of `context.with` across awaits; this stand-in keeps it until the test resets it).
 */
let current: Context = ROOT_CONTEXT;
const manager: ContextManager = {
  active: () => current,
  with: (ctx, fn, thisArg, ...args) => {
    const prev = current;
    current = ctx;
    try {
      return fn.call(thisArg, ...args);
    } finally {
      current = prev;
    }
  },
  bind: (_ctx, target) => target,
  enable() {
    return this;
  },
  disable() {
    current = ROOT_CONTEXT;
    return this;
  },
};

let store: InMemoryWriteStore;
let codec: EventCodec;
let cmd: ReturnType<typeof profileCommands>;

beforeEach(async () => {
  store = new InMemoryWriteStore();
  codec = await profileCodec();
  cmd = profileCommands(store, codec);
});

afterEach(() => {
  propagation.disable();
  context.disable();
});

describe('trace context', () => {
  it('goes from the command to the outbox entry and on to the Kafka headers', async () => {
    propagation.setGlobalPropagator(w3c);
    const parent = trace.setSpanContext(ROOT_CONTEXT, {
      traceId,
      spanId,
      traceFlags: TraceFlags.SAMPLED,
    });
    context.setGlobalContextManager(manager);
    current = parent;
    try {
      await cmd.CreateProfile({
        commandId: 't1',
        profileId: 'u1',
        name: 'Ann',
        email: 'a@x.io',
      });
    } finally {
      current = ROOT_CONTEXT;
    }

    const entry = store.outbox[0];
    if (!entry) throw new Error('no outbox entry');
    expect(entry).toMatchObject({
      traceparent: `00-${traceId}-${spanId}-01`,
      tracestate: 'vendor=1',
    });

    const checked = await checkEntry(scannedEntry(entry), codec.catalog, codec);
    if (!checked.ok) throw new Error(checked.bad.reason);
    expect(checked.entry.record.headers).toMatchObject({
      traceparent: `00-${traceId}-${spanId}-01`,
      tracestate: 'vendor=1',
    });
    const parsed = fromHeaders(checked.entry.record.headers);
    expect(parsed).toMatchObject({
      ok: true,
      metadata: { traceparent: `00-${traceId}-${spanId}-01`, tracestate: 'vendor=1' },
    });
  });

  it('takes the trace context from command metadata when no span is active', async () => {
    await cmd.CreateProfile({
      commandId: 't3',
      profileId: 'u3',
      name: 'Cy',
      email: 'c@x.io',
      traceparent: `00-${traceId}-${spanId}-01`,
      tracestate: 'from=http',
    });
    expect(store.outbox[0]).toMatchObject({
      traceparent: `00-${traceId}-${spanId}-01`,
      tracestate: 'from=http',
    });
  });

  it('prefers the active span to command metadata and ignores a malformed traceparent', async () => {
    propagation.setGlobalPropagator(w3c);
    context.setGlobalContextManager(manager);
    current = trace.setSpanContext(ROOT_CONTEXT, {
      traceId,
      spanId,
      traceFlags: TraceFlags.SAMPLED,
    });
    try {
      await cmd.CreateProfile({
        commandId: 't4',
        profileId: 'u4',
        name: 'Di',
        email: 'd@x.io',
        traceparent: `00-${'1'.repeat(32)}-${'2'.repeat(16)}-01`,
      });
    } finally {
      current = ROOT_CONTEXT;
    }
    await cmd.CreateProfile({
      commandId: 't5',
      profileId: 'u5',
      name: 'Ed',
      email: 'e@x.io',
      traceparent: 'not-a-traceparent',
    });
    expect(store.outbox.map((e) => e.traceparent)).toEqual([`00-${traceId}-${spanId}-01`, null]);
  });

  it('stores nulls and sends no trace headers when no span is active', async () => {
    propagation.setGlobalPropagator(w3c);
    await cmd.CreateProfile({ commandId: 't2', profileId: 'u2', name: 'Bo', email: 'b@x.io' });
    const entry = store.outbox[0];
    if (!entry) throw new Error('no outbox entry');
    expect(entry).toMatchObject({ traceparent: null, tracestate: null });
    const checked = await checkEntry(scannedEntry(entry), codec.catalog, codec);
    if (!checked.ok) throw new Error(checked.bad.reason);
    expect(Object.keys(checked.entry.record.headers)).not.toContain('traceparent');
  });
});
