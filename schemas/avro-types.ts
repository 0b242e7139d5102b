/**
 * The TypeScript types of the values an aggregate definition's Avro fields describe, as the codec
 * (avsc, default options) reads and writes them: the state and events are declared once, as Avro
 * fields, and these types follow from them. Types only; nothing here runs.
 *
 * Mapped exactly: primitives (`long` is a JS number, as avsc reads it), `bytes`/`fixed` (Buffer),
 * `enum` (its symbols), `array`, `map`, nested `record`, and unions that avsc leaves unwrapped (at
 * most one member per kind: `['null', 'string']`). Anything else, a named-type reference or an
 * ambiguous union avsc wraps (`['int', 'long']`), is `unknown`: never a wrong promise.
 */
import type { AggregateDefinition, AvroField } from './catalog.js';

type NumberType = 'int' | 'long' | 'float' | 'double';

/** The value of one Avro type declaration. */
export type AvroValue<T> = T extends 'null'
  ? null
  : T extends 'boolean'
    ? boolean
    : T extends NumberType
      ? number
      : T extends 'string'
        ? string
        : T extends 'bytes'
          ? Buffer
          : T extends readonly unknown[]
            ? UnionValue<T>
            : T extends { readonly type: 'array'; readonly items: infer I }
              ? AvroValue<I>[]
              : T extends { readonly type: 'map'; readonly values: infer V }
                ? Record<string, AvroValue<V>>
                : T extends { readonly type: 'record'; readonly fields: infer F }
                  ? FieldsValue<F>
                  : T extends { readonly type: 'enum'; readonly symbols: readonly (infer K)[] }
                    ? K
                    : T extends { readonly type: 'fixed' }
                      ? Buffer
                      : // `{ type: 'string' }`, and a logical type over a primitive (none is registered).
                        T extends { readonly type: infer P extends string }
                        ? P extends 'array' | 'map' | 'record' | 'enum' | 'fixed'
                          ? unknown
                          : AvroValue<P>
                        : unknown;

/** An object with one property per field. */
export type FieldsValue<F> = F extends readonly AvroField[]
  ? { -readonly [K in F[number] as K['name']]: AvroValue<K['type']> }
  : unknown;

/** What avsc groups together when it decides whether a union must be wrapped. */
type Kind<T> = T extends 'null'
  ? 'null'
  : T extends 'boolean'
    ? 'boolean'
    : T extends NumberType
      ? 'number'
      : T extends 'string' | { readonly type: 'enum' }
        ? 'string'
        : T extends 'bytes' | { readonly type: 'fixed' }
          ? 'buffer'
          : T extends { readonly type: 'array' }
            ? 'array'
            : T extends { readonly type: 'map' | 'record' }
              ? 'object'
              : T extends { readonly type: infer P }
                ? Kind<P>
                : 'unknown';

/** True when no two members share a kind (avsc's unwrapped union) and every kind is known. */
type Unambiguous<T extends readonly unknown[], Seen = never> = T extends readonly [
  infer H,
  ...infer R,
]
  ? Kind<H> extends 'unknown' | Seen
    ? false
    : Unambiguous<R, Seen | Kind<H>>
  : T extends readonly []
    ? true
    : false;

type UnionValue<T extends readonly unknown[]> =
  Unambiguous<T> extends true ? AvroValue<T[number]> : unknown;

/** No fields: an empty object, and nothing else (`{}` would accept any value). */
type Payload<F> = keyof FieldsValue<F> extends never ? Record<string, never> : FieldsValue<F>;

/** The state of an aggregate type: `StateOf<typeof TaskType>`. */
export type StateOf<D extends AggregateDefinition> = FieldsValue<D['state']['fields']>;

/** The events of an aggregate type, as the domain raises them: `{ type, data }` per event type. */
export type EventOf<D extends AggregateDefinition> = {
  [K in keyof D['events'] & string]: {
    readonly type: K;
    readonly data: Payload<D['events'][K]['fields']>;
  };
}[keyof D['events'] & string];
