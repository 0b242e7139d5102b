import { z } from 'zod';
import type { EventOf, StateOf } from '../schemas/avro-types.js';
import { defineAggregate } from '../schemas/catalog.js';
import { AggregateRoot } from './aggregate.js';
import { defineCommand } from './command-handler.js';

/**
 * A fixture declared the short way (types inferred from the definition, commands on the class): a
 * note with a nullable due date and a list of tags, written, tagged and deleted.
 */
export const NoteType = defineAggregate({
  type: 'Note',
  state: {
    fields: [
      { name: 'id', type: 'string' },
      { name: 'text', type: 'string' },
      { name: 'dueDay', type: ['null', 'int'], default: null },
      { name: 'tags', type: { type: 'array', items: 'string' } },
    ],
  },
  events: {
    NoteWritten: {
      fields: [
        { name: 'text', type: 'string' },
        { name: 'dueDay', type: ['null', 'int'], default: null },
      ],
    },
    NoteTagged: { fields: [{ name: 'tag', type: 'string' }] },
    NoteDeleted: { fields: [], deletes: true },
  },
});

type NoteState = StateOf<typeof NoteType>;
type NoteEvent = EventOf<typeof NoteType>;

export class Note extends AggregateRoot.of(NoteType) {
  write(text: string, dueDay: number | null): void {
    this.ensure(!this.exists, 'already written');
    this.raise({ type: 'NoteWritten', data: { text, dueDay } });
  }

  tag(tag: string): void {
    if (this.requireState().tags.includes(tag)) return;
    this.raise({ type: 'NoteTagged', data: { tag } });
  }

  delete(): void {
    this.requireState();
    this.raise({ type: 'NoteDeleted', data: {} });
  }

  protected when(state: NoteState | null, event: NoteEvent): NoteState | null {
    switch (event.type) {
      case 'NoteWritten':
        return { id: this.id, ...event.data, tags: [] };
      case 'NoteTagged':
        return state && { ...state, tags: [...state.tags, event.data.tag] };
      case 'NoteDeleted':
        return null;
    }
  }
}

const noteId = { commandId: z.string().min(1), noteId: z.string().min(1) };

export const WriteNote = defineCommand(Note, {
  name: 'WriteNote',
  schema: z.object({ ...noteId, text: z.string(), dueDay: z.number().int().nullable() }),
  aggregateId: (c) => c.noteId,
  execute: (note, c) => {
    note.write(c.text, c.dueDay);
  },
});

export const TagNote = defineCommand(Note, {
  name: 'TagNote',
  schema: z.object({ ...noteId, tag: z.string() }),
  aggregateId: (c) => c.noteId,
  execute: (note, c) => {
    note.tag(c.tag);
  },
});

export const DeleteNote = defineCommand(Note, {
  name: 'DeleteNote',
  schema: z.object(noteId),
  aggregateId: (c) => c.noteId,
  execute: (note) => {
    note.delete();
  },
});
