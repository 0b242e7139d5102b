import { describe, expect, it } from '@jest/globals';
import { HEADERS, fromHeaders, toHeaders, type EventMetadata } from './envelope.js';
import { PipelineError, isPipelineError } from './errors.js';

const meta: EventMetadata = {
  eventId: '01930000-0000-7000-8000-000000000001',
  eventType: 'ThingMade',
  aggregateType: 'Thing',
  aggregateId: 'thing-1',
  version: 3,
  schemaId: 7,
  occurredAt: new Date('2026-11-23T10:00:00.000Z'),
  commandId: 'cmd-1',
  traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
};

describe('headers', () => {
  it('round-trip through Kafka header values (Buffers)', () => {
    const asBuffers = Object.fromEntries(
      Object.entries(toHeaders(meta)).map(([k, v]) => [k, Buffer.from(v)]),
    );
    expect(fromHeaders(asBuffers)).toEqual({ ok: true, metadata: meta });
  });

  it('leave optional headers out when absent', () => {
    const { commandId: _c, traceparent: _t, ...bare } = meta;
    const h = toHeaders(bare);
    expect(h[HEADERS.commandId]).toBeUndefined();
    expect(fromHeaders(h)).toEqual({ ok: true, metadata: bare });
  });

  it('list every missing or malformed header', () => {
    const r = fromHeaders({
      [HEADERS.eventId]: 'e',
      [HEADERS.version]: ['0'],
      [HEADERS.schemaId]: 'x',
      [HEADERS.occurredAt]: 'yesterday',
    });
    expect(r.ok).toBe(false);
    expect(!r.ok && r.problems).toEqual([
      { header: HEADERS.eventType, problem: 'missing' },
      { header: HEADERS.aggregateType, problem: 'missing' },
      { header: HEADERS.aggregateId, problem: 'missing' },
      { header: HEADERS.version, problem: '"0" is not a version (1, 2, …)' },
      { header: HEADERS.schemaId, problem: '"x" is not a schema id' },
      { header: HEADERS.occurredAt, problem: '"yesterday" is not a timestamp' },
    ]);
    expect(fromHeaders(undefined).ok).toBe(false);
  });
});

describe('PipelineError', () => {
  it('carries code, retriable, context and cause, and serialises for logs', () => {
    const e = new PipelineError('database_unavailable', 'MySQL down', {
      retriable: true,
      cause: new Error('ECONNREFUSED'),
      context: { topic: 't', partition: 1, offset: '42' },
    });
    expect(isPipelineError(e, 'database_unavailable')).toBe(true);
    expect(isPipelineError(e, 'version_gap')).toBe(false);
    expect(isPipelineError({ name: 'PipelineError' })).toBe(false);
    expect(e.retriable).toBe(true);
    expect(e.toJSON()).toEqual({
      name: 'PipelineError',
      code: 'database_unavailable',
      retriable: true,
      message: 'MySQL down',
      context: { topic: 't', partition: 1, offset: '42' },
      cause: 'ECONNREFUSED',
    });
    expect(new PipelineError('stopped', 'x', { retriable: false }).context).toEqual({});
  });
});
