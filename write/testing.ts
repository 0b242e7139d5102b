import type { AvroRecordSchema } from '../schemas/catalog.js';
import { PipelineError } from '../schemas/errors.js';
import type { RegistryPort } from '../schemas/registry.js';

/** A schema registry in memory, for unit tests of code that encodes or decodes (no I/O). */
export class InMemoryRegistry implements RegistryPort {
  private readonly bySubject = new Map<string, number>();
  private readonly byId = new Map<number, AvroRecordSchema>();

  register(subject: string, schema: AvroRecordSchema): Promise<number> {
    let id = this.bySubject.get(subject);
    if (id === undefined) {
      id = this.byId.size + 1;
      this.bySubject.set(subject, id);
      this.byId.set(id, schema);
    }
    return Promise.resolve(id);
  }

  schemaById(id: number): Promise<AvroRecordSchema> {
    const schema = this.byId.get(id);
    if (!schema) {
      return Promise.reject(
        new PipelineError('schema_unknown', `no schema ${id}`, { retriable: false }),
      );
    }
    return Promise.resolve(schema);
  }

  isCompatible(): Promise<boolean> {
    return Promise.resolve(true);
  }
}
