import { expect, it } from '@jest/globals';
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import { testServers, uniqueName } from '../support/servers.js';

const { schemaRegistryUrl } = testServers();

it('registers an Avro schema, encodes in the Confluent wire format, and decodes by id', async () => {
  const registry = new SchemaRegistry({ host: schemaRegistryUrl });
  const subject = uniqueName('smoke-value');
  const schema = {
    type: 'record',
    name: 'SmokeEvent',
    namespace: 'cqrs_sync.smoke',
    fields: [
      { name: 'id', type: 'string' },
      { name: 'count', type: 'int' },
    ],
  };
  const { id } = await registry.register(
    { type: SchemaType.AVRO, schema: JSON.stringify(schema) },
    { subject },
  );
  const encoded = await registry.encode(id, { id: 'a', count: 2 });
  // Confluent wire format: magic byte 0, then the schema id as a big-endian int32.
  expect(encoded[0]).toBe(0);
  expect(encoded.readInt32BE(1)).toBe(id);

  const fresh = new SchemaRegistry({ host: schemaRegistryUrl });
  expect(await fresh.decode(encoded)).toEqual({ id: 'a', count: 2 });
  expect(JSON.parse(await fresh.getSchema(id).then((s) => JSON.stringify(s)))).toBeTruthy();
});
