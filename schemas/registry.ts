import { SchemaRegistry, SchemaType, COMPATIBILITY } from '@kafkajs/confluent-schema-registry';
import type { AvroRecordSchema } from './catalog.js';
import { PipelineError, isPipelineError } from './errors.js';

/** The schema-registry port: what relay, sink and write side need of a Confluent-compatible registry. */
export interface RegistryPort {
  /** Sets the subject's compatibility level and registers the schema; returns its id. */
  register(subject: string, schema: AvroRecordSchema): Promise<number>;
  /** The writer schema of an id (cached: ids are immutable). */
  schemaById(id: number): Promise<AvroRecordSchema>;
  /** Would `schema` be accepted under the subject's compatibility level? */
  isCompatible(subject: string, schema: AvroRecordSchema): Promise<boolean>;
}

export type Compatibility = 'BACKWARD' | 'BACKWARD_TRANSITIVE' | 'FULL' | 'FORWARD' | 'NONE';

/**
 * Adapter for a Confluent-compatible registry (Confluent, Redpanda, Apicurio's `/apis/ccompat/v7`).
 * The compatibility level is set on the subject before registering: registries disagree on what a
 * subject without its own level reports, and the client refuses to register on a mismatch.
 */
export class ConfluentRegistry implements RegistryPort {
  private readonly client: SchemaRegistry;
  private readonly byId = new Map<number, Promise<AvroRecordSchema>>();

  constructor(
    private readonly baseUrl: string,
    private readonly compatibility: Compatibility = 'BACKWARD',
  ) {
    this.client = new SchemaRegistry({ host: baseUrl, retry: { retries: 2 } });
  }

  async register(subject: string, schema: AvroRecordSchema): Promise<number> {
    await this.http('PUT', `/config/${encodeURIComponent(subject)}`, {
      compatibility: this.compatibility,
    });
    try {
      const { id } = await this.client.register(
        { type: SchemaType.AVRO, schema: JSON.stringify(schema) },
        { subject, compatibility: COMPATIBILITY[this.compatibility] },
      );
      return id;
    } catch (e) {
      throw classify(e, `registering ${subject}`, { subject });
    }
  }

  schemaById(id: number): Promise<AvroRecordSchema> {
    let cached = this.byId.get(id);
    if (!cached) {
      cached = this.http('GET', `/schemas/ids/${id}`).then((body) => {
        const { schema } = body as { schema?: string };
        if (typeof schema !== 'string') {
          throw new PipelineError('schema_unknown', `registry has no schema text for id ${id}`, {
            retriable: false,
            context: { schemaId: id },
          });
        }
        return JSON.parse(schema) as AvroRecordSchema;
      });
      // Only successes are cached: a failed lookup is asked again next time.
      cached.catch(() => this.byId.delete(id));
      this.byId.set(id, cached);
    }
    return cached;
  }

  async isCompatible(subject: string, schema: AvroRecordSchema): Promise<boolean> {
    try {
      const body = (await this.http(
        'POST',
        `/compatibility/subjects/${encodeURIComponent(subject)}/versions/latest`,
        { schema: JSON.stringify(schema), schemaType: 'AVRO' },
      )) as { is_compatible?: boolean };
      return body.is_compatible === true;
    } catch (e) {
      // No version yet: anything is compatible with nothing.
      if (isPipelineError(e) && e.context.status === 404) return true;
      throw e;
    }
  }

  private async http(method: string, path: string, body?: unknown): Promise<unknown> {
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl}${path}`, {
        method,
        headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(10_000),
      });
    } catch (cause) {
      throw new PipelineError(
        'registry_unavailable',
        `schema registry at ${this.baseUrl} unreachable`,
        {
          retriable: true,
          cause,
        },
      );
    }
    const text = await res.text();
    if (!res.ok) {
      throw classify({ status: res.status, message: text }, `${method} ${path}`, {
        status: res.status,
      });
    }
    return text ? (JSON.parse(text) as unknown) : undefined;
  }
}

function classify(
  e: unknown,
  what: string,
  context: Record<string, string | number>,
): PipelineError {
  const status = (e as { status?: unknown }).status;
  const message = (e as { message?: unknown }).message;
  const text = typeof message === 'string' ? message : String(e);
  if (status === 409 || /incompatible/i.test(text)) {
    return new PipelineError('schema_incompatible', `${what}: schema is incompatible: ${text}`, {
      retriable: false,
      cause: e,
      context,
    });
  }
  if (status === 404) {
    return new PipelineError('schema_unknown', `${what}: not found`, {
      retriable: false,
      cause: e,
      context,
    });
  }
  if (status === 422 || status === 400) {
    return new PipelineError('schema_invalid', `${what}: rejected: ${text}`, {
      retriable: false,
      cause: e,
      context,
    });
  }
  return new PipelineError('registry_unavailable', `${what} failed: ${text}`, {
    retriable: true,
    cause: e,
    context,
  });
}
