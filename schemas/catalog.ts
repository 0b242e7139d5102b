import avro from 'avsc';
import { PipelineError } from './errors.js';

/**
 * The catalog of a user's aggregate types and their event types, with the Avro schema of every record
 * that travels. It is the one contract between write side, relay and sink.
 *
 * Records are state-carrying: each event travels with its aggregate's state after the event, as
 * `{ event, state }` (state is null after a deleting event). Topics are compacted by aggregate id, so
 * after compaction only the last record of an aggregate is left, and that record alone rebuilds its
 * read-model rows (see docs/adr/0004-state-carrying-events.md).
 */

export interface AvroField {
  readonly name: string;
  readonly type: unknown;
  readonly default?: unknown;
  readonly doc?: string;
}

export interface AvroRecordSchema {
  readonly type: 'record';
  readonly name: string;
  readonly namespace?: string;
  readonly doc?: string;
  readonly fields: readonly AvroField[];
}

export interface EventDefinition {
  /** Avro fields of the event's own payload. */
  readonly fields: readonly AvroField[];
  /** After this event the aggregate is gone: its state travels as null. */
  readonly deletes?: boolean;
}

export interface AggregateDefinition {
  /** Aggregate type, an Avro name: `Customer`. */
  readonly type: string;
  /** Avro fields of the aggregate's state. */
  readonly state: { readonly fields: readonly AvroField[] };
  /** Event types by name (Avro names, unique across the catalog): `{ CustomerRegistered: {...} }`. */
  readonly events: Readonly<Record<string, EventDefinition>>;
  /** Topic; default `<topicPrefix><aggregate-type-in-kebab-case>`. */
  readonly topic?: string;
  /** Avro namespace; default `cqrs_sync.events`. */
  readonly namespace?: string;
}

/** Declares an aggregate type; an identity function that keeps the literal types. */
export function defineAggregate<const A extends AggregateDefinition>(definition: A): A {
  return definition;
}

/** The value of every record: the event and the aggregate's state after it. */
export interface WireValue<E = Record<string, unknown>, S = Record<string, unknown>> {
  readonly event: E;
  readonly state: S | null;
}

export interface CatalogEvent {
  readonly type: string;
  readonly aggregateType: string;
  readonly topic: string;
  readonly deletes: boolean;
  /** Registry subject (topic-record-name strategy): `<topic>-<namespace>.<EventType>`. */
  readonly subject: string;
  readonly schema: AvroRecordSchema;
  readonly avroType: avro.Type;
}

export interface CatalogAggregate {
  readonly type: string;
  readonly topic: string;
  readonly namespace: string;
  readonly stateSchema: AvroRecordSchema;
  readonly events: readonly CatalogEvent[];
}

export interface Catalog {
  readonly aggregates: readonly CatalogAggregate[];
  /** Throws `event_type_unknown` (not retriable). */
  event(eventType: string): CatalogEvent;
  findEvent(eventType: string): CatalogEvent | undefined;
  /** Throws `config_invalid`. */
  aggregate(aggregateType: string): CatalogAggregate;
  findAggregate(aggregateType: string): CatalogAggregate | undefined;
  topics(): string[];
}

export interface CatalogOptions {
  /** Default `cqrs.`. */
  readonly topicPrefix?: string;
}

const AVRO_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const TOPIC_NAME = /^[a-zA-Z0-9._-]{1,249}$/;
const DEFAULT_NAMESPACE = 'cqrs_sync.events';

export function kebab(name: string): string {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
    .replace(/_/g, '-')
    .toLowerCase();
}

/** Validates the definitions and compiles every wire schema. Errors say what is wrong and where. */
export function buildCatalog(
  definitions: readonly AggregateDefinition[],
  options: CatalogOptions = {},
): Catalog {
  const prefix = options.topicPrefix ?? 'cqrs.';
  const problems: string[] = [];
  const aggregates: CatalogAggregate[] = [];
  const events = new Map<string, CatalogEvent>();
  const seenAggregates = new Set<string>();

  definitions.forEach((def, i) => {
    const where = `aggregates[${i}] (${def.type})`;
    if (!AVRO_NAME.test(def.type)) {
      problems.push(`${where}.type: "${def.type}" is not an Avro name (letters, digits, _)`);
      return;
    }
    if (seenAggregates.has(def.type)) problems.push(`${where}.type: declared twice`);
    seenAggregates.add(def.type);
    const namespace = def.namespace ?? DEFAULT_NAMESPACE;
    const topic = def.topic ?? `${prefix}${kebab(def.type)}`;
    if (!TOPIC_NAME.test(topic))
      problems.push(`${where}.topic: "${topic}" is not a valid topic name`);
    const stateSchema: AvroRecordSchema = {
      type: 'record',
      name: `${def.type}State`,
      namespace,
      fields: def.state.fields,
    };
    const eventNames = Object.keys(def.events);
    if (eventNames.length === 0) problems.push(`${where}.events: declare at least one event type`);
    const compiled: CatalogEvent[] = [];
    // Every aggregate type also has a snapshot event: the initial load publishes current state.
    const all: Record<string, EventDefinition> = {
      ...def.events,
      [snapshotEventType(def.type)]: { fields: [] },
    };
    for (const name of Object.keys(all)) {
      const ev = all[name];
      if (!ev) continue;
      const evWhere = `${where}.events.${name}`;
      if (!AVRO_NAME.test(name)) {
        problems.push(`${evWhere}: "${name}" is not an Avro name`);
        continue;
      }
      if (events.has(name)) {
        problems.push(`${evWhere}: event type "${name}" is declared by two aggregates`);
        continue;
      }
      const schema = wireSchema(namespace, def.type, name, ev, def.state.fields);
      let avroType: avro.Type;
      try {
        avroType = avro.Type.forSchema(schema as avro.Schema);
      } catch (e) {
        problems.push(`${evWhere}: invalid Avro schema: ${(e as Error).message}`);
        continue;
      }
      const catalogEvent: CatalogEvent = {
        type: name,
        aggregateType: def.type,
        topic,
        deletes: ev.deletes ?? false,
        subject: `${topic}-${namespace}.${name}`,
        schema,
        avroType,
      };
      events.set(name, catalogEvent);
      compiled.push(catalogEvent);
    }
    aggregates.push({ type: def.type, topic, namespace, stateSchema, events: compiled });
  });

  if (definitions.length === 0) problems.push('aggregates: declare at least one aggregate type');
  if (problems.length > 0) {
    throw new PipelineError(
      'config_invalid',
      `invalid aggregate catalog:\n  ${problems.join('\n  ')}`,
      {
        retriable: false,
      },
    );
  }

  const byType = new Map(aggregates.map((a) => [a.type, a]));
  return {
    aggregates,
    findEvent: (t) => events.get(t),
    event: (t) => {
      const e = events.get(t);
      if (!e) {
        throw new PipelineError('event_type_unknown', `unknown event type "${t}"`, {
          retriable: false,
          context: { eventType: t },
        });
      }
      return e;
    },
    findAggregate: (t) => byType.get(t),
    aggregate: (t) => {
      const a = byType.get(t);
      if (!a) {
        throw new PipelineError('config_invalid', `unknown aggregate type "${t}"`, {
          retriable: false,
          context: { aggregateType: t },
        });
      }
      return a;
    },
    topics: () => [...new Set(aggregates.map((a) => a.topic))],
  };
}

/** The event type the initial load (`cqrs-sync relay snapshot`) publishes: `<Aggregate>Snapshotted`,
 * with an empty payload and the current state. */
export function snapshotEventType(aggregateType: string): string {
  return `${aggregateType}Snapshotted`;
}

/** `{ event: <EventType>Payload, state: null | <Aggregate>State }`, named after the event type. */
function wireSchema(
  namespace: string,
  aggregateType: string,
  eventType: string,
  ev: EventDefinition,
  stateFields: readonly AvroField[],
): AvroRecordSchema {
  return {
    type: 'record',
    name: eventType,
    namespace,
    doc: `${eventType} of ${aggregateType}, with the aggregate's state after it`,
    fields: [
      { name: 'event', type: { type: 'record', name: `${eventType}Payload`, fields: ev.fields } },
      {
        name: 'state',
        type: ['null', { type: 'record', name: `${aggregateType}State`, fields: stateFields }],
        default: null,
      },
    ],
  };
}
