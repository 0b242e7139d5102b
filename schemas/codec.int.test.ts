import { describe, expect, it } from '@jest/globals';
import { testServers, uniqueName } from '../test/support/servers.js';
import { buildCatalog, defineAggregate, type AggregateDefinition } from './catalog.js';
import { EventCodec } from './codec.js';
import { isPipelineError } from './errors.js';
import { ConfluentRegistry } from './registry.js';

const { schemaRegistryUrl } = testServers();

/** A catalog with its own topic, so subjects never collide between tests. */
function widgetCatalog(extraEventFields: AggregateDefinition['state']['fields'] = []) {
  return (topic: string) =>
    buildCatalog([
      defineAggregate({
        type: 'Widget',
        topic,
        state: {
          fields: [
            { name: 'id', type: 'string' },
            { name: 'colour', type: 'string' },
          ],
        },
        events: {
          WidgetPainted: { fields: [{ name: 'colour', type: 'string' }, ...extraEventFields] },
        },
      }),
    ]);
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return isPipelineError(e) ? e.code : `not a PipelineError: ${String(e)}`;
  }
  return 'resolved';
}

describe('EventCodec with a real registry', () => {
  it('registers, encodes in the Confluent wire format and decodes', async () => {
    const topic = uniqueName('codec');
    const codec = new EventCodec(widgetCatalog()(topic), new ConfluentRegistry(schemaRegistryUrl));
    await codec.registerAll();
    await codec.registerAll(); // idempotent
    const value = { event: { colour: 'red' }, state: { id: 'w1', colour: 'red' } };
    const bytes = codec.encode('WidgetPainted', value);
    expect(bytes[0]).toBe(0);
    expect(bytes.readInt32BE(1)).toBe(codec.schemaIdOf('WidgetPainted'));
    const decoded = await codec.decode(bytes, 'WidgetPainted');
    expect(decoded).toEqual({
      schemaId: codec.schemaIdOf('WidgetPainted'),
      eventType: 'WidgetPainted',
      value,
    });
  });

  it('accepts a compatible change (new optional field), and an old consumer reads the new event', async () => {
    const topic = uniqueName('evolve');
    const registry = new ConfluentRegistry(schemaRegistryUrl);
    const v1 = new EventCodec(widgetCatalog()(topic), registry);
    await v1.registerAll();
    const v2 = new EventCodec(
      widgetCatalog([{ name: 'finish', type: ['null', 'string'], default: null }])(topic),
      new ConfluentRegistry(schemaRegistryUrl),
    );
    await v2.registerAll();
    expect(v2.schemaIdOf('WidgetPainted')).not.toBe(v1.schemaIdOf('WidgetPainted'));
    const newer = v2.encode('WidgetPainted', {
      event: { colour: 'blue', finish: 'matt' },
      state: { id: 'w2', colour: 'blue' },
    });
    // The old build resolves the writer's (newer) schema to its own and drops the field it does not know.
    expect((await v1.decode(newer)).value).toEqual({
      event: { colour: 'blue' },
      state: { id: 'w2', colour: 'blue' },
    });
  });

  it('rejects an incompatible change (a new required field) under BACKWARD', async () => {
    const topic = uniqueName('breaking');
    await new EventCodec(
      widgetCatalog()(topic),
      new ConfluentRegistry(schemaRegistryUrl),
    ).registerAll();
    const breaking = new EventCodec(
      widgetCatalog([{ name: 'gloss', type: 'int' }])(topic),
      new ConfluentRegistry(schemaRegistryUrl),
    );
    expect(await codeOf(breaking.registerAll())).toBe('schema_incompatible');
    const registry = new ConfluentRegistry(schemaRegistryUrl);
    const ev = widgetCatalog([{ name: 'gloss', type: 'int' }])(topic).event('WidgetPainted');
    expect(await registry.isCompatible(ev.subject, ev.schema)).toBe(false);
    expect(await registry.isCompatible(uniqueName('fresh-subject'), ev.schema)).toBe(true);
  });

  // Issue 12, D1: a lone surrogate was encoded as the invalid UTF-8 bytes ED A0 80, which the sink
  // read as three U+FFFD. The codec refuses it, whoever calls encode (command handler, relay snapshot).
  it('refuses to encode a string that is not well-formed Unicode (payload_invalid, naming the field)', async () => {
    const topic = uniqueName('wellformed');
    const tags = {
      name: 'tags',
      type: { type: 'map', values: { type: 'array', items: 'string' } },
    };
    const codec = new EventCodec(
      widgetCatalog([tags])(topic),
      new ConfluentRegistry(schemaRegistryUrl),
    );
    await codec.registerAll();
    const refusal = (event: Record<string, unknown>, state = { id: 'w1', colour: 'red' }) => {
      try {
        codec.encode('WidgetPainted', { event: { colour: 'red', tags: {}, ...event }, state });
      } catch (e) {
        return isPipelineError(e, 'payload_invalid') && !e.retriable ? e.message : String(e);
      }
      return 'encoded';
    };
    expect(refusal({ colour: 'lone \uD800 x' })).toMatch(
      /^WidgetPainted cannot be encoded: event\.colour is not well-formed Unicode/,
    );
    expect(refusal({ tags: { t: ['ok', '\uDC00'] } })).toMatch(/event\.tags\.t\[1\] is not/);
    expect(refusal({ tags: { ['k\uD800']: [] } })).toMatch(/event\.tags\["k\\ud800"\] is a key/);
    expect(refusal({}, { id: 'w\uDBFF', colour: 'red' })).toMatch(/state\.id is not/);
    // Pairs (emoji, other astral characters) are well-formed and round-trip unchanged.
    const astral = {
      event: { colour: '😀', tags: { ['🏷']: ['𝄞', '𠜎'] } },
      state: { id: 'w😀', colour: '😀' },
    };
    expect((await codec.decode(codec.encode('WidgetPainted', astral))).value).toEqual(astral);
  });

  it('refuses bad input with typed, non-retriable errors, and a down registry with a retriable one', async () => {
    const topic = uniqueName('bad');
    const codec = new EventCodec(widgetCatalog()(topic), new ConfluentRegistry(schemaRegistryUrl));
    await codec.registerAll();
    const good = codec.encode('WidgetPainted', { event: { colour: 'red' }, state: null });

    expect(() => codec.encode('WidgetPainted', { event: { colour: 3 }, state: null })).toThrow(
      'WidgetPainted does not match its schema at: event.colour',
    );
    expect(() => codec.encode('WidgetSold', { event: {}, state: null })).toThrow(
      'unknown event type',
    );
    expect(await codeOf(codec.decode(Buffer.from([1, 2, 3])))).toBe('payload_invalid');
    expect(await codeOf(codec.decode(Buffer.from([0, 0, 0, 0])))).toBe('payload_invalid');
    expect(await codeOf(codec.decode(good.subarray(0, good.length - 2)))).toBe('payload_invalid');
    expect(await codeOf(codec.decode(Buffer.concat([good, Buffer.from([9, 9])])))).toBe(
      'payload_invalid',
    );
    expect(await codeOf(codec.decode(good, 'SomethingElse'))).toBe('envelope_invalid');
    const unknownId = Buffer.from(good);
    unknownId.writeInt32BE(987_654_321, 1);
    expect(await codeOf(codec.decode(unknownId))).toBe('schema_unknown');

    const unregistered = new EventCodec(
      widgetCatalog()(topic),
      new ConfluentRegistry(schemaRegistryUrl),
    );
    expect(() => unregistered.schemaIdOf('WidgetPainted')).toThrow('not registered yet');

    const down = new EventCodec(
      widgetCatalog()(topic),
      new ConfluentRegistry('http://127.0.0.1:9/apis/ccompat/v7'),
    );
    let error: unknown;
    try {
      await down.registerAll();
    } catch (e) {
      error = e;
    }
    expect(isPipelineError(error, 'registry_unavailable')).toBe(true);
    expect((error as { retriable: boolean }).retriable).toBe(true);
    expect(await codeOf(down.decode(good))).toBe('registry_unavailable');
  });
});
