/**
 * Malformed input for the fuzz tests: Kafka records for the sink and outbox entries for the relay,
 * each broken in one of the ways the issue names. Deterministic for a seed.
 */
import { HEADERS } from '../../schemas/envelope.js';
import type { PlacedEntry } from '../../relay/testing.js';
import type { EventCodec } from '../../schemas/codec.js';
import { random } from './chaos.js';

/** In every string field: quotes, comments, statement ends, NUL, a very long run, non-BMP. */
export const NASTY = [
  "'; DROP TABLE customers; --",
  '" OR "1"="1',
  '`id`) VALUES (1); --',
  '\\\\\' \\"',
  '\u0000',
  '😀'.repeat(50),
  'x'.repeat(5000),
  '/* */ UNION SELECT * FROM mysql.user',
];

export interface FuzzRecord {
  readonly kind: string;
  readonly key: string | null;
  readonly value: Buffer | null;
  readonly headers: Record<string, string>;
}

/** `n` records that must all be dead-lettered; aggregate ids are unique so none waits behind another. */
export function malformedRecords(
  n: number,
  seed: number,
  codec: EventCodec,
  schemaId: number,
): FuzzRecord[] {
  const rnd = random(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
  const bytes = (len: number) =>
    Buffer.from(Array.from({ length: len }, () => Math.floor(rnd() * 256)));
  const good = codec.encode('CustomerRegistered', {
    event: { name: 'n', email: 'e@x.io' },
    state: { id: 'x', name: 'n', email: 'e@x.io' },
  });
  const out: FuzzRecord[] = [];
  for (let i = 0; i < n; i++) {
    const id = `fuzz-${seed}-${i}-${pick(NASTY).slice(0, 40)}`;
    const headers: Record<string, string> = {
      [HEADERS.eventId]: `fz-${seed}-${i}`,
      [HEADERS.eventType]: 'CustomerRegistered',
      [HEADERS.aggregateType]: 'Customer',
      [HEADERS.aggregateId]: id,
      [HEADERS.version]: '1',
      [HEADERS.schemaId]: String(schemaId),
      [HEADERS.occurredAt]: new Date().toISOString(),
    };
    const kind = pick([
      'random-bytes',
      'truncated-avro',
      'wrong-schema-id',
      'huge',
      'nasty-headers',
      'no-headers',
      'empty-value',
      'oversized-ids',
      'unknown-type',
    ]);
    switch (kind) {
      case 'random-bytes':
        out.push({ kind, key: id, value: bytes(1 + Math.floor(rnd() * 200)), headers });
        break;
      case 'truncated-avro':
        out.push({
          kind,
          key: id,
          value: good.subarray(0, Math.max(1, Math.floor(good.length * rnd()))),
          headers,
        });
        break;
      case 'wrong-schema-id': {
        const value = Buffer.from(good);
        value.writeUInt32BE(900_000 + i, 1);
        out.push({
          kind,
          key: id,
          value,
          headers: { ...headers, [HEADERS.schemaId]: String(900_000 + i) },
        });
        break;
      }
      case 'huge':
        // Not the wire format's magic byte, and large: refused before any decoding.
        out.push({
          kind,
          key: id,
          value: Buffer.concat([Buffer.from([1]), bytes(600_000)]),
          headers,
        });
        break;
      case 'nasty-headers':
        out.push({
          kind,
          key: id,
          value: bytes(30),
          headers: {
            ...headers,
            [HEADERS.eventType]: pick(NASTY),
            [HEADERS.version]: pick(NASTY),
            [HEADERS.occurredAt]: pick(NASTY),
          },
        });
        break;
      case 'no-headers':
        out.push({ kind, key: id, value: bytes(10), headers: {} });
        break;
      case 'empty-value':
        out.push({ kind, key: id, value: null, headers });
        break;
      case 'oversized-ids':
        // A valid event whose ids do not fit the sink's bookkeeping columns (191 characters).
        out.push({
          kind,
          key: id,
          value: good,
          headers: {
            ...headers,
            [HEADERS.eventId]: `fz-${seed}-${i}-${'e'.repeat(200 + Math.floor(rnd() * 5000))}`,
            [HEADERS.aggregateId]: `${id}-${'y'.repeat(200)}`,
          },
        });
        break;
      default:
        out.push({
          kind,
          key: id,
          value: good,
          headers: { ...headers, [HEADERS.eventType]: `Nope${pick(NASTY)}` },
        });
    }
  }
  return out;
}

/**
 * `n` outbox entries the relay must mark failed, never publish, each in an aggregate document of its
 * own (so none waits behind another): not even objects, fields missing or of the wrong type, an
 * unknown event type, a payload that is not its schema's or too large for a record, an entry that
 * names another aggregate than its document's. Deterministic for a seed.
 */
export function malformedEntries(
  n: number,
  seed: number,
  codec: EventCodec,
  schemaId: number,
): PlacedEntry[] {
  const rnd = random(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
  const good = codec.encode('CustomerRegistered', {
    event: { name: 'n', email: 'e@x.io' },
    state: { id: 'x', name: 'n', email: 'e@x.io' },
  });
  const out: PlacedEntry[] = [];
  for (let i = 0; i < n; i++) {
    const aggregateId = `fuzz-${seed}-${i}-${pick(NASTY).slice(0, 40)}`;
    const place = (entry: unknown): void => {
      out.push({ aggregateType: 'Customer', aggregateId, entry });
    };
    const base: Record<string, unknown> = {
      eventId: `fz-${seed}-${i}`,
      aggregateType: 'Customer',
      aggregateId,
      version: 1,
      type: 'CustomerRegistered',
      occurredAt: new Date(),
      schemaId,
      payload: good,
      commandId: null,
      traceparent: null,
      tracestate: null,
      status: 'pending',
      failure: null,
    };
    const kind = pick([
      'not-an-object',
      'no-event-id',
      'wrong-types',
      'bytes',
      'truncated',
      'schema',
      'huge',
      'type',
      'aggregate-type',
      'aggregate-id',
    ]);
    switch (kind) {
      case 'not-an-object':
        // Only a pending entry puts a document in the relay's scan: this one's marker comes after
        // it (and stays pending, held behind the failed entry).
        place(pick([null, 42, 'pending', pick(NASTY), [base], true]));
        place({ status: 'pending', version: 1 });
        continue;
      case 'no-event-id':
        delete base.eventId;
        break;
      case 'wrong-types': {
        // Each a value its field's type refuses (commandId may be null or any string).
        const wrong: Record<string, readonly unknown[]> = {
          eventId: [42, null, '', { id: 1 }, [base.eventId], true],
          version: ['1', -3, 0, 1.5, null, [1]],
          occurredAt: [pick(NASTY), '2026-01-01T00:00:00Z', 0, null],
          schemaId: [String(schemaId), -1, 1.5, null],
          payload: [good.toString('base64'), 42, null, [1, 2, 3]],
          type: [42, null, '', { name: 'CustomerRegistered' }],
          commandId: [42, { id: 'c' }, true],
        };
        const field = pick(Object.keys(wrong));
        base[field] = pick(wrong[field] ?? []);
        break;
      }
      case 'bytes':
        base.payload = Buffer.from(Array.from({ length: 40 }, () => Math.floor(rnd() * 256)));
        break;
      case 'truncated':
        base.payload = good.subarray(0, Math.max(1, Math.floor(good.length * rnd())));
        break;
      case 'schema':
        base.schemaId = 900_000 + i;
        break;
      case 'huge':
        base.payload = Buffer.concat([good, Buffer.alloc(1_100_000, 7)]);
        break;
      case 'type':
        base.type = pick(NASTY);
        break;
      case 'aggregate-type':
        base.aggregateType = 'Order';
        break;
      default:
        base.aggregateId = `${aggregateId}-elsewhere`;
    }
    place(base);
  }
  return out;
}
