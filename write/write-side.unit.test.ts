/**
 * `createWriteSide` over the in-memory store: one call from a config to commands run by definition,
 * and aggregate classes declared from their definitions (`AggregateRoot.of`, `defineCommand`). The
 * `@ts-expect-error` lines are compile-time checks (`npm run typecheck`).
 */
import { describe, expect, it } from '@jest/globals';
import { z } from 'zod';
import { defineAggregate } from '../schemas/catalog.js';
import { isPipelineError } from '../schemas/errors.js';
import { AggregateRoot } from './aggregate.js';
import { commandHandler, defineCommand } from './command-handler.js';
import { InMemoryWriteStore } from './memory-store.js';
import { DeleteNote, Note, NoteType, TagNote, WriteNote } from './testing-defined.js';
import { InMemoryRegistry } from './testing.js';
import { createWriteSide } from './write-side.js';

async function setup() {
  const store = new InMemoryWriteStore();
  const write = await createWriteSide({
    config: { aggregates: [NoteType] },
    store,
    registry: new InMemoryRegistry(),
  });
  return { store, write };
}

describe('createWriteSide', () => {
  it('runs commands by definition, once per command id, and loads typed state', async () => {
    const { store, write } = await setup();
    const first = await write.handle(WriteNote, {
      commandId: 'c-1',
      noteId: 'n-1',
      text: 'buy milk',
      dueDay: 3,
    });
    expect(first).toMatchObject({ applied: true, aggregateType: 'Note', version: 1 });
    await write.handle(TagNote, { commandId: 'c-2', noteId: 'n-1', tag: 'home' });
    const repeat = await write.handle(TagNote, { commandId: 'c-2', noteId: 'n-1', tag: 'home' });
    expect(repeat).toMatchObject({ applied: false, reason: 'duplicate', version: 2 });

    const note = await write.repository(Note).load('n-1');
    expect(note).toBeInstanceOf(Note);
    expect(note.aggregateType).toBe('Note');
    const tags: string[] | undefined = note.state?.tags;
    expect(tags).toEqual(['home']);
    expect(note.state).toEqual({ id: 'n-1', text: 'buy milk', dueDay: 3, tags: ['home'] });
    expect(store.outbox.map((e) => e.type)).toEqual(['NoteWritten', 'NoteTagged']);

    await write.handle(DeleteNote, { commandId: 'c-3', noteId: 'n-1' });
    expect((await write.repository(Note).load('n-1')).exists).toBe(false);
    await write.close();
  });

  it('keeps one repository per class, and the definitions also serve commandHandler', async () => {
    const { write } = await setup();
    expect(write.repository(Note)).toBe(write.repository(Note));
    const writeNote = commandHandler(write.repository(Note), WriteNote);
    const result = await writeNote({ commandId: 'c-1', noteId: 'n-2', text: 'x', dueDay: null });
    expect(result).toMatchObject({ applied: true, aggregateId: 'n-2' });
    expect((await write.repository(Note).load('n-2')).state?.dueDay).toBeNull();
  });

  it('validates input with the schema it inferred the type from', async () => {
    const { write } = await setup();
    const bad = { commandId: 'c-1', noteId: 'n-3', text: 'x', dueDay: 1.5 };
    const err = await write.handle(WriteNote, bad).catch((e: unknown) => e);
    expect(isPipelineError(err, 'command_invalid')).toBe(true);
  });

  it('refuses a class declared from a definition the config does not hold', async () => {
    const { write } = await setup();
    // Same type name, other fields: its types would not be the codec's.
    const Other = defineAggregate({
      type: 'Note',
      state: { fields: [{ name: 'id', type: 'string' }] },
      events: { NoteWritten: { fields: [] } },
    });
    class OtherNote extends AggregateRoot.of(Other) {
      protected when(): null {
        return null;
      }
    }
    let err: unknown;
    try {
      write.repository(OtherNote);
    } catch (e) {
      err = e;
    }
    expect(isPipelineError(err, 'config_invalid')).toBe(true);
    expect((err as Error).message).toMatch(/OtherNote .* "Note" .* not in the config/);
  });

  it('infers command input, events and state from the definitions (compile time)', async () => {
    const { write } = await setup();
    const wrong = [
      // @ts-expect-error a field the command's schema does not have
      () => write.handle(TagNote, { commandId: 'c', noteId: 'n', tag: 't', colour: 'red' }),
      // @ts-expect-error a field the schema requires
      () => write.handle(TagNote, { commandId: 'c', noteId: 'n' }),
    ];
    expect(wrong).toHaveLength(2);
    defineCommand(Note, {
      name: 'Retitle',
      schema: z.object({ commandId: z.string(), noteId: z.string() }),
      aggregateId: (c) => c.noteId,
      execute: (note, c) => {
        // @ts-expect-error the command's type is the schema's: it has no `text`
        note.write(String(c.text), null);
      },
    });
    class Bad extends AggregateRoot.of(NoteType) {
      renamed(): void {
        // @ts-expect-error an event the definition does not declare
        this.raise({ type: 'NoteRenamed', data: {} });
        // @ts-expect-error a payload field of the wrong type
        this.raise({ type: 'NoteTagged', data: { tag: 1 } });
      }
      // @ts-expect-error a state without the definition's fields
      protected when() {
        return { id: this.id };
      }
    }
    expect(Bad.definition).toBe(NoteType);
  });
});
