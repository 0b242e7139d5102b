/** planBatch honours operators' decisions about event ids (dropped, redriven), as a replay needs. */
import { describe, expect, it } from '@jest/globals';
import { PipelineError } from '../schemas/errors.js';
import { planBatch, type Decoded, type HeldDecoded, type PlanInput } from './planner.js';
import type { AggregateRecord, AggregateStatus, Decision } from './ports.js';
import type { DeliveredEvent } from './projection.js';

const now = new Date(0);

function ev(id: string, version: number): Decoded & { ok: true } {
  const event: DeliveredEvent = {
    metadata: {
      eventId: `${id}-${version}`,
      eventType: 'CustomerRenamed',
      aggregateType: 'Customer',
      aggregateId: id,
      version,
      schemaId: 1,
      occurredAt: now,
    },
    eventType: 'CustomerRenamed',
    payload: {},
    state: { id, name: `n${version}`, email: 'e' },
    deletes: false,
    source: { topic: 't', partition: 0, offset: String(version) },
  };
  const raw = { topic: 't', partition: 0, offset: `${id}${version}`, key: null, value: null };
  return { ok: true, raw: { ...raw, headers: {} }, event };
}

function stored(id: string, version: number, status: AggregateStatus): [string, AggregateRecord] {
  const a = { aggregateType: 'Customer', aggregateId: id, version, deleted: false, status };
  return [`Customer\u0000${id}`, { ...a, statusSince: now, reason: null }];
}

function plan(
  records: readonly Decoded[],
  decisions: Record<string, Decision>,
  more: Partial<PlanInput> = {},
) {
  const p = planBatch({
    records,
    seen: new Set(),
    aggregates: new Map(),
    held: new Map(),
    forcedDead: new Map(),
    decisions: new Map(Object.entries(decisions)),
    now,
    ...more,
  });
  return {
    ...p,
    reasons: p.outcomes.map((o) => (o.applied ? 'applied' : o.reason)),
    versions: p.apply.map((e) => e.metadata.version),
    agg: (id: string) => p.aggregates.find((a) => a.aggregateId === id),
  };
}

describe('planBatch with dead-letter decisions', () => {
  it('skips a dropped event and applies its successor: no dead letter, no park, no gap', () => {
    const p = plan([ev('a', 1), ev('a', 2)], { 'a-1': 'dropped' });
    expect(p.reasons).toEqual(['dropped', 'applied']);
    expect(p.versions).toEqual([2]);
    expect(p.dead).toEqual([]);
    expect(p.hold).toEqual([]);
    expect(p.markSeen).toEqual(['a-1', 'a-2']);
    expect(p.agg('a')).toMatchObject({ version: 2, status: 'ok' });
  });

  it('skips a dropped record that cannot be decoded, or whose projection failed before', () => {
    const error = new PipelineError('payload_invalid', 'bad', { retriable: false });
    const bad: Decoded = {
      ok: false,
      raw: { topic: 't', partition: 0, offset: '9', key: null, value: null, headers: {} },
      key: { aggregateType: 'Customer', aggregateId: 'b' },
      eventId: 'bad',
      eventType: '?',
      version: 1,
      error,
    };
    const forced = ev('c', 1);
    const p = plan(
      [bad, ev('b', 2), forced],
      { bad: 'dropped', 'c-1': 'dropped' },
      {
        forcedDead: new Map([[forced.raw.offset, error]]),
      },
    );
    expect(p.reasons).toEqual(['dropped', 'applied', 'dropped']);
    expect(p.dead).toEqual([]);
    expect(p.agg('b')).toMatchObject({ version: 2, status: 'ok' });
    expect(p.agg('c')).toMatchObject({ version: 1, status: 'ok' });
  });

  it('leaves a parked aggregate parked and its version as it was', () => {
    const p = plan(
      [ev('a', 3), ev('a', 4)],
      { 'a-3': 'dropped' },
      {
        aggregates: new Map([stored('a', 1, 'parked')]),
      },
    );
    expect(p.reasons).toEqual(['dropped', 'held']);
    expect(p.hold.map((h) => [h.version, h.kind])).toEqual([[4, 'parked']]);
    expect(p.agg('a')).toBeUndefined();
  });

  it('closes a gap it was the missing version of, releasing what waited', () => {
    const next = ev('a', 3);
    const waiting: HeldDecoded = {
      held: {
        id: 7,
        kind: 'gap',
        aggregateType: 'Customer',
        aggregateId: 'a',
        version: 3,
        eventId: 'a-3',
        eventType: 'CustomerRenamed',
        ...next.raw,
        errorCode: null,
        errorMessage: null,
        attempts: 0,
        firstFailedAt: null,
        heldAt: now,
      },
      decoded: next,
    };
    const p = plan(
      [ev('a', 2)],
      { 'a-2': 'dropped' },
      {
        aggregates: new Map([stored('a', 1, 'gap')]),
        held: new Map([['Customer\u0000a', [waiting]]]),
      },
    );
    expect(p.reasons).toEqual(['dropped']);
    expect(p.versions).toEqual([3]);
    expect(p.releaseIds).toEqual([7]);
    expect(p.agg('a')).toMatchObject({ version: 3, status: 'ok' });
  });

  it('takes a dropped event seen before as a duplicate; one below the version changes nothing', () => {
    const p = plan(
      [ev('a', 1), ev('b', 1)],
      { 'a-1': 'dropped', 'b-1': 'dropped' },
      {
        seen: new Set(['a-1']),
        aggregates: new Map([stored('b', 5, 'ok')]),
      },
    );
    expect(p.reasons).toEqual(['duplicate', 'dropped']);
    expect(p.aggregates).toEqual([]);
  });

  it('applies a re-driven event across a version gap, as the re-drive did; others wait', () => {
    const aggregates = new Map([stored('a', 1, 'ok')]);
    const redriven = plan([ev('a', 3)], { 'a-3': 'redriven' }, { aggregates });
    expect(redriven.reasons).toEqual(['applied']);
    expect(redriven.agg('a')).toMatchObject({ version: 3, status: 'ok' });
    const undecided = plan([ev('a', 3)], {}, { aggregates });
    expect(undecided.reasons).toEqual(['held']);
    expect(undecided.agg('a')).toMatchObject({ version: 1, status: 'gap' });
  });
});
