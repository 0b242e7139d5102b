/** planBatch: the version gate, held gaps and their release, dead letters and parking. */
import { describe, expect, it } from '@jest/globals';
import { PipelineError } from '../schemas/errors.js';
import { ev } from './fixtures/decoded.js';
import { planBatch, type Decoded } from './planner.js';
import type { AggregateRecord } from './ports.js';

const base = {
  seen: new Set<string>(),
  aggregates: new Map<string, AggregateRecord>(),
  held: new Map(),
  forcedDead: new Map(),
  now: new Date(0),
};
const stored = (
  id: string,
  version: number,
  status: AggregateRecord['status'] = 'ok',
): [string, AggregateRecord] => [
  `Customer\u0000${id}`,
  {
    aggregateType: 'Customer',
    aggregateId: id,
    version,
    deleted: false,
    status,
    statusSince: new Date(0),
    reason: null,
  },
];

describe('planBatch', () => {
  it('applies in order, drops duplicates and stale versions', () => {
    const a = ev('a', 1);
    const p = planBatch({
      ...base,
      records: [a, a, ev('a', 2), ev('b', 1)],
      aggregates: new Map([stored('b', 3)]),
    });
    expect(p.outcomes).toEqual([
      { applied: true },
      { applied: false, reason: 'duplicate' },
      { applied: true },
      { applied: false, reason: 'stale' },
    ]);
    expect(p.apply.map((e) => e.metadata.version)).toEqual([1, 2]);
    expect(p.aggregates.find((x) => x.aggregateId === 'a')?.version).toBe(2);
  });

  it('holds a gap and releases it when the missing version arrives', () => {
    const p = planBatch({
      ...base,
      records: [ev('a', 4), ev('a', 3)],
      aggregates: new Map([stored('a', 2)]),
    });
    expect(p.outcomes).toEqual([{ applied: false, reason: 'held' }, { applied: true }]);
    expect(p.apply.map((e) => e.metadata.version)).toEqual([3, 4]);
    expect(p.hold).toEqual([]);
    expect(p.aggregates[0]?.status).toBe('ok');
  });

  it('keeps a gap open when the missing version does not arrive; a snapshot is a baseline', () => {
    const p = planBatch({
      ...base,
      records: [ev('a', 5), ev('b', 9, 'CustomerSnapshotted')],
      aggregates: new Map([stored('a', 2), stored('b', 2)]),
    });
    expect(p.hold.map((h) => [h.kind, h.version])).toEqual([['gap', 5]]);
    expect(p.aggregates.find((x) => x.aggregateId === 'a')?.status).toBe('gap');
    expect(p.apply.map((e) => e.metadata.aggregateId)).toEqual(['b']);
  });

  it('releases held records from MySQL, drops stale ones', () => {
    const held = (v: number) => ({
      held: {
        id: v,
        kind: 'gap' as const,
        aggregateType: 'Customer',
        aggregateId: 'a',
        version: v,
        eventId: `h${v}`,
        eventType: 'CustomerRenamed',
        topic: 't',
        partition: 0,
        offset: String(v),
        key: null,
        value: null,
        headers: {},
        errorCode: null,
        errorMessage: null,
        attempts: 0,
        firstFailedAt: null,
        heldAt: new Date(0),
      },
      decoded: ev('a', v),
    });
    const p = planBatch({
      ...base,
      records: [ev('a', 3)],
      aggregates: new Map([stored('a', 2, 'gap')]),
      held: new Map([['Customer\u0000a', [held(2), held(4)]]]),
    });
    expect(p.apply.map((e) => e.metadata.version)).toEqual([3, 4]);
    expect(p.releaseIds.sort()).toEqual([2, 4]);
    expect(p.released).toBe(1);
  });

  it('dead-letters undecodable and forced records, parks, and holds what follows', () => {
    const bad: Decoded = {
      ok: false,
      raw: { topic: 't', partition: 0, offset: '9', key: null, value: null, headers: {} },
      key: { aggregateType: 'Customer', aggregateId: 'x' },
      eventId: 'bad',
      eventType: '?',
      version: 1,
      error: new PipelineError('payload_invalid', 'bad', { retriable: false }),
    };
    const forced = ev('y', 1);
    const p = planBatch({
      ...base,
      records: [bad, ev('x', 2), forced, ev('y', 2)],
      forcedDead: new Map([
        [
          forced.raw.offset,
          new PipelineError('constraint_violated', 'too long', { retriable: false }),
        ],
      ]),
    });
    expect(p.outcomes.map((o) => (o.applied ? 'applied' : o.reason))).toEqual([
      'dead_lettered',
      'held',
      'dead_lettered',
      'held',
    ]);
    expect(p.dead.map((d) => d.errorCode)).toEqual(['payload_invalid', 'constraint_violated']);
    expect(p.aggregates.every((a) => a.status === 'parked')).toBe(true);
    expect(p.apply).toEqual([]);
  });
});
