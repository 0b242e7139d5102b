import { describe, expect, it } from '@jest/globals';
import { buildCatalog, defineAggregate, kebab, snapshotEventType } from './catalog.js';
import { isPipelineError } from './errors.js';

const Thing = defineAggregate({
  type: 'Thing',
  state: {
    fields: [
      { name: 'id', type: 'string' },
      { name: 'size', type: 'int' },
    ],
  },
  events: {
    ThingMade: { fields: [{ name: 'size', type: 'int' }] },
    ThingBroken: { fields: [], deletes: true },
  },
});

describe('buildCatalog', () => {
  it('compiles a state-carrying wire schema per event type, plus a snapshot event', () => {
    const c = buildCatalog([Thing], { topicPrefix: 'app.' });
    expect(c.topics()).toEqual(['app.thing']);
    const made = c.event('ThingMade');
    expect(made.subject).toBe('app.thing-cqrs_sync.events.ThingMade');
    expect(made.deletes).toBe(false);
    expect(c.event('ThingBroken').deletes).toBe(true);
    expect(c.event(snapshotEventType('Thing')).aggregateType).toBe('Thing');
    expect(made.avroType.isValid({ event: { size: 2 }, state: { id: 'a', size: 2 } })).toBe(true);
    expect(made.avroType.isValid({ event: { size: 2 }, state: null })).toBe(true);
    expect(made.avroType.isValid({ event: { size: 'big' }, state: null })).toBe(false);
    expect(c.aggregate('Thing').events).toHaveLength(3);
    expect(c.findAggregate('Nope')).toBeUndefined();
    expect(c.findEvent('Nope')).toBeUndefined();
  });

  it('names unknown event and aggregate types in typed, non-retriable errors', () => {
    const c = buildCatalog([Thing]);
    expect(() => c.event('ThingSold')).toThrow('unknown event type "ThingSold"');
    try {
      c.event('ThingSold');
    } catch (e) {
      expect(isPipelineError(e, 'event_type_unknown')).toBe(true);
      expect((e as { retriable: boolean }).retriable).toBe(false);
    }
    expect(() => c.aggregate('Gizmo')).toThrow('unknown aggregate type "Gizmo"');
  });

  it('reports every problem with where it is', () => {
    const attempt = () =>
      buildCatalog([
        Thing,
        { ...Thing, type: 'Thing' },
        { type: 'bad-name', state: { fields: [] }, events: {} },
        {
          type: 'Other',
          topic: 'has spaces',
          state: { fields: [{ name: 'x', type: 'no-such-type' }] },
          events: {
            ThingMade: { fields: [] },
            'Bad-Event': { fields: [] },
            OtherDone: { fields: [] },
          },
        },
      ]);
    expect(attempt).toThrow(/invalid aggregate catalog/);
    let message = '';
    try {
      attempt();
    } catch (e) {
      message = (e as Error).message;
      expect(isPipelineError(e, 'config_invalid')).toBe(true);
    }
    expect(message).toContain('aggregates[1] (Thing).type: declared twice');
    expect(message).toContain('aggregates[2] (bad-name).type: "bad-name" is not an Avro name');
    expect(message).toContain(
      'aggregates[3] (Other).topic: "has spaces" is not a valid topic name',
    );
    expect(message).toContain(
      'aggregates[3] (Other).events.ThingMade: event type "ThingMade" is declared by two aggregates',
    );
    expect(message).toContain(
      'aggregates[3] (Other).events.Bad-Event: "Bad-Event" is not an Avro name',
    );
    expect(message).toContain('aggregates[3] (Other).events.OtherDone: invalid Avro schema');
    expect(() => buildCatalog([])).toThrow('declare at least one aggregate type');
    expect(() => buildCatalog([{ type: 'Empty', state: { fields: [] }, events: {} }])).toThrow(
      'Empty).events: declare at least one event type',
    );
  });

  it('turns type names into topic names', () => {
    expect(kebab('OrderLine')).toBe('order-line');
    expect(kebab('customer_account')).toBe('customer-account');
  });
});
