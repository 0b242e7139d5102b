import { z } from 'zod';
import { buildCatalog, defineAggregate, type AvroRecordSchema } from '../schemas/catalog.js';
import { EventCodec } from '../schemas/codec.js';
import { PipelineError } from '../schemas/errors.js';
import type { RegistryPort } from '../schemas/registry.js';
import { AggregateRoot } from './aggregate.js';
import { commandHandler, type CommandHandlerOptions } from './command-handler.js';
import type { WriteStore } from './ports.js';
import { Repository } from './repository.js';

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

/**
 * The write side's own test fixture (library tests never use the demo's domain): a profile that is
 * created with a name and an email, renamed, and deleted.
 */
export const Profiles = defineAggregate({
  type: 'Profile',
  state: {
    fields: [
      { name: 'id', type: 'string' },
      { name: 'name', type: 'string' },
      { name: 'email', type: 'string' },
    ],
  },
  events: {
    ProfileCreated: {
      fields: [
        { name: 'name', type: 'string' },
        { name: 'email', type: 'string' },
      ],
    },
    ProfileRenamed: { fields: [{ name: 'name', type: 'string' }] },
    ProfileDeleted: { fields: [], deletes: true },
  },
});

export interface ProfileState {
  readonly id: string;
  readonly name: string;
  readonly email: string;
}

type ProfileEvent =
  | { readonly type: 'ProfileCreated'; readonly data: { name: string; email: string } }
  | { readonly type: 'ProfileRenamed'; readonly data: { name: string } }
  | { readonly type: 'ProfileDeleted'; readonly data: Record<string, never> };

export class Profile extends AggregateRoot<ProfileState, ProfileEvent> {
  readonly aggregateType = 'Profile';

  create(name: string, email: string): void {
    this.ensure(this.version === 0, 'already exists');
    this.raise({ type: 'ProfileCreated', data: { name, email } });
  }

  /** Renaming to the current name raises nothing. */
  rename(name: string): void {
    if (this.requireState().name === name) return;
    this.raise({ type: 'ProfileRenamed', data: { name } });
  }

  delete(): void {
    this.requireState();
    this.raise({ type: 'ProfileDeleted', data: {} });
  }

  protected when(state: ProfileState | null, event: ProfileEvent): ProfileState | null {
    switch (event.type) {
      case 'ProfileCreated':
        return { id: this.id, ...event.data };
      case 'ProfileRenamed':
        return state && { ...state, name: event.data.name };
      case 'ProfileDeleted':
        return null;
    }
  }
}

/** A codec of the profile catalog over an in-memory registry, its schemas registered. */
export async function profileCodec(): Promise<EventCodec> {
  const codec = new EventCodec(buildCatalog([Profiles]), new InMemoryRegistry());
  await codec.registerAll();
  return codec;
}

const profileId = { commandId: z.string().min(1), profileId: z.string().min(1) };

/** The profile's repository and command handlers over any store. */
export function profileCommands(
  store: WriteStore,
  codec: EventCodec,
  options: CommandHandlerOptions = {},
) {
  const repository = new Repository<ProfileState, Profile>({
    store,
    codec,
    aggregateType: 'Profile',
    create: (id, s) =>
      new Profile(id, s && { version: s.version, state: s.state as ProfileState | null }),
  });
  const aggregateId = (c: { profileId: string }) => c.profileId;
  return {
    repository,
    CreateProfile: commandHandler(
      repository,
      {
        name: 'CreateProfile',
        schema: z.object({ ...profileId, name: z.string(), email: z.string() }),
        aggregateId,
        execute: (p, c) => {
          p.create(c.name, c.email);
        },
      },
      options,
    ),
    RenameProfile: commandHandler(
      repository,
      {
        name: 'RenameProfile',
        schema: z.object({ ...profileId, name: z.string() }),
        aggregateId,
        execute: (p, c) => {
          p.rename(c.name);
        },
      },
      options,
    ),
    DeleteProfile: commandHandler(
      repository,
      {
        name: 'DeleteProfile',
        schema: z.object(profileId),
        aggregateId,
        execute: (p) => {
          p.delete();
        },
      },
      options,
    ),
  };
}
