import avro from 'avsc';
import type { Catalog, CatalogEvent, WireValue } from './catalog.js';
import { PipelineError, isPipelineError } from './errors.js';
import type { RegistryPort } from './registry.js';
import { illFormedString } from './well-formed.js';

/** Records above this size are refused by the relay and dead-lettered by the sink. */
export const MAX_RECORD_BYTES = 1_000_000;

const MAGIC = 0;
const HEADER = 5;

interface Reader {
  readonly event: CatalogEvent;
  /** From the writer's schema to the catalog's; undefined when they are the same. */
  readonly resolver: avro.Resolver | undefined;
}

export interface DecodedEvent {
  readonly schemaId: number;
  readonly eventType: string;
  readonly value: WireValue;
}

/**
 * Avro in the Confluent wire format (magic byte 0, big-endian schema id, Avro body), with schemas
 * from the catalog registered once at start-up. Decoding reads with the writer's schema and resolves
 * to the catalog's, so an old consumer reads events written with a newer compatible schema.
 */
export class EventCodec {
  private readonly ids = new Map<string, number>();
  private readonly resolvers = new Map<number, Promise<Reader>>();
  /** The readers `resolvers` has resolved, for decoding without a promise per record. */
  private readonly loaded = new Map<number, Reader>();

  constructor(
    readonly catalog: Catalog,
    private readonly registry: RegistryPort,
  ) {}

  /** Registers every event schema under its subject (compatibility set first). Idempotent. */
  async registerAll(): Promise<void> {
    for (const agg of this.catalog.aggregates) {
      for (const ev of agg.events) {
        if (this.ids.has(ev.type)) continue;
        this.ids.set(ev.type, await this.registry.register(ev.subject, ev.schema));
      }
    }
  }

  schemaIdOf(eventType: string): number {
    const id = this.ids.get(eventType);
    if (id === undefined) {
      this.catalog.event(eventType); // unknown type: its own error
      throw new PipelineError('schema_unknown', `schema of ${eventType} is not registered yet`, {
        retriable: false,
        context: { eventType },
        cause: 'call registerAll() at start-up',
      });
    }
    return id;
  }

  /**
   * Validates against the event's schema and encodes. Throws `payload_invalid` naming the fields,
   * also for a string (or map key) that is not well-formed Unicode (a lone surrogate).
   */
  encode(eventType: string, value: WireValue): Buffer {
    const ev = this.catalog.event(eventType);
    const id = this.schemaIdOf(eventType);
    const bad: string[] = [];
    if (
      !ev.avroType.isValid(value, { errorHook: (path) => bad.push(path.join('.') || '(root)') })
    ) {
      throw new PipelineError(
        'payload_invalid',
        `${eventType} does not match its schema at: ${bad.join(', ')}`,
        { retriable: false, context: { eventType } },
      );
    }
    // avsc would write a lone surrogate as invalid UTF-8 (ED A0 80); refused whoever the caller is.
    const ill = illFormedString(value);
    if (ill) {
      throw new PipelineError(
        'payload_invalid',
        `${eventType} cannot be encoded: ${ill.path} ${ill.problem}`,
        { retriable: false, context: { eventType, field: ill.path } },
      );
    }
    const header = Buffer.alloc(HEADER);
    header.writeUInt8(MAGIC, 0);
    header.writeInt32BE(id, 1);
    return Buffer.concat([header, ev.avroType.toBuffer(value)]);
  }

  /** The schema id of a framed record, without decoding it. */
  static schemaIdOf(bytes: Buffer): number {
    if (bytes.length < HEADER || bytes[0] !== MAGIC) {
      throw new PipelineError(
        'payload_invalid',
        'not a Confluent-framed Avro record (bad magic byte or too short)',
        {
          retriable: false,
        },
      );
    }
    return bytes.readInt32BE(1);
  }

  /**
   * Decodes a framed record. `expectedType` (from the record's headers) must name the same event
   * type as the writer schema. Non-retriable errors: `payload_invalid`, `schema_unknown`,
   * `event_type_unknown`, `schema_incompatible`, `envelope_invalid`; retriable: `registry_unavailable`.
   */
  async decode(bytes: Buffer, expectedType?: string): Promise<DecodedEvent> {
    const schemaId = EventCodec.schemaIdOf(bytes);
    return this.decodeWith(schemaId, await this.readerFor(schemaId), bytes, expectedType);
  }

  /**
   * `decode` without a promise when the record's writer schema is loaded already (every record
   * after the first of its schema); undefined when it is not (then `decode`). Throws as `decode`.
   */
  decodeLoaded(bytes: Buffer, expectedType?: string): DecodedEvent | undefined {
    const schemaId = EventCodec.schemaIdOf(bytes);
    const reader = this.loaded.get(schemaId);
    return reader && this.decodeWith(schemaId, reader, bytes, expectedType);
  }

  private decodeWith(
    schemaId: number,
    { event, resolver }: Reader,
    bytes: Buffer,
    expectedType: string | undefined,
  ): DecodedEvent {
    if (expectedType !== undefined && expectedType !== event.type) {
      throw new PipelineError(
        'envelope_invalid',
        `header says ${expectedType} but the payload's schema ${schemaId} is ${event.type}`,
        { retriable: false, context: { eventType: expectedType, schemaId } },
      );
    }
    let value: unknown;
    try {
      value = event.avroType.fromBuffer(bytes.subarray(HEADER), resolver);
    } catch (cause) {
      throw new PipelineError(
        'payload_invalid',
        `cannot decode ${event.type} with schema ${schemaId}: ${(cause as Error).message}`,
        {
          retriable: false,
          cause,
          context: { eventType: event.type, schemaId },
        },
      );
    }
    return { schemaId, eventType: event.type, value: value as WireValue };
  }

  private readerFor(schemaId: number): Promise<Reader> {
    let r = this.resolvers.get(schemaId);
    if (!r) {
      r = (async () => {
        let writer;
        try {
          writer = await this.registry.schemaById(schemaId);
        } catch (e) {
          if (isPipelineError(e) && !e.retriable) {
            throw new PipelineError(
              'schema_unknown',
              `schema id ${schemaId} is unknown to the registry`,
              {
                retriable: false,
                cause: e,
                context: { schemaId },
              },
            );
          }
          throw e;
        }
        // Registries may return the full name (namespace.Name); the catalog is keyed by the short one.
        const event = this.catalog.event(writer.name.split('.').pop() ?? writer.name);
        const writerType = avro.Type.forSchema(writer as avro.Schema);
        if (writerType.equals(event.avroType)) return { event, resolver: undefined };
        try {
          return { event, resolver: event.avroType.createResolver(writerType) };
        } catch (cause) {
          throw new PipelineError(
            'schema_incompatible',
            `schema ${schemaId} of ${event.type} cannot be read with this build's schema`,
            { retriable: false, cause, context: { eventType: event.type, schemaId } },
          );
        }
      })();
      void r.then(
        (reader) => this.loaded.set(schemaId, reader),
        () => this.resolvers.delete(schemaId),
      );
      this.resolvers.set(schemaId, r);
    }
    return r;
  }
}
