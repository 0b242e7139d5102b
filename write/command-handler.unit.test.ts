/** `commandHandler` over the in-memory store, with the write side's own Profile fixture. */
import { beforeEach, describe, expect, it } from '@jest/globals';
import type { EventCodec } from '../schemas/codec.js';
import { isPipelineError } from '../schemas/errors.js';
import { InMemoryWriteStore } from './memory-store.js';
import { profileCodec, profileCommands } from './testing.js';
import { rejection } from '../test/support/rejection.js';

let store: InMemoryWriteStore;
let codec: EventCodec;
let cmd: ReturnType<typeof profileCommands>;

/** The aggregate's one document, as the store holds it. */
function doc(aggregateId: string) {
  const d = store.documents.get(`Profile\u0000${aggregateId}`);
  if (!d) throw new Error(`no document Profile ${aggregateId}`);
  return d;
}

/** Every command id any aggregate document recorded. */
function recordedCommandIds(): string[] {
  return [...store.documents.values()].flatMap((d) => d.commands.map((c) => c.commandId));
}

beforeEach(async () => {
  store = new InMemoryWriteStore();
  codec = await profileCodec();
  cmd = profileCommands(store, codec);
});

describe('command handling', () => {
  it('saves state and one outbox entry per event, versions 1, 2, 3, payload { event, state }', async () => {
    await cmd.CreateProfile({ commandId: 'c1', profileId: 'p1', name: 'Ann', email: 'a@x.io' });
    await cmd.RenameProfile({ commandId: 'c2', profileId: 'p1', name: 'Anna' });
    const r = await cmd.RenameProfile({ commandId: 'c3', profileId: 'p1', name: 'Annie' });
    expect(r).toMatchObject({ applied: true, aggregateId: 'p1', version: 3 });
    expect(store.outbox.map((e) => [e.type, e.version, e.status, e.commandId])).toEqual([
      ['ProfileCreated', 1, 'pending', 'c1'],
      ['ProfileRenamed', 2, 'pending', 'c2'],
      ['ProfileRenamed', 3, 'pending', 'c3'],
    ]);
    const last = store.outbox[2];
    expect(last?.eventId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7/);
    const decoded = await codec.decode(last?.payload ?? Buffer.alloc(0), 'ProfileRenamed');
    expect(decoded.value).toEqual({
      event: { name: 'Annie' },
      state: { id: 'p1', name: 'Annie', email: 'a@x.io' },
    });
    expect(decoded.schemaId).toBe(last?.schemaId);
    // One document holds it all: state, version, the unrelayed entries and the command ids.
    expect(doc('p1')).toMatchObject({
      _id: 'p1',
      aggregateType: 'Profile',
      version: 3,
      state: { id: 'p1', name: 'Annie', email: 'a@x.io' },
      deleted: false,
      relayedVersion: 0,
      relayFence: 0,
    });
    expect(doc('p1').outbox.map((e) => e.version)).toEqual([1, 2, 3]);
    expect(doc('p1').commands.map((c) => [c.commandId, c.version])).toEqual([
      ['c1', 1],
      ['c2', 2],
      ['c3', 3],
    ]);
  });

  it('runs a repeated commandId once and returns the first outcome', async () => {
    const input = { commandId: 'same', profileId: 'p2', name: 'Bo', email: 'bo@x.io' };
    const first = await cmd.CreateProfile(input);
    const again = await cmd.CreateProfile(input);
    expect(first.applied).toBe(true);
    expect(again).toEqual({ ...first, applied: false, reason: 'duplicate' });
    expect(store.outbox).toHaveLength(1);
  });

  it('returns the first outcome when a concurrent repeat records the command first', async () => {
    await cmd.CreateProfile({ commandId: 'r1', profileId: 'p3', name: 'C', email: 'c@x.io' });
    store.beforeCommit = (c) => {
      doc('p3').commands.push({
        commandId: c.commandId ?? '',
        version: 2,
        eventIds: ['first'],
        at: new Date(),
      });
    };
    const r = await cmd.RenameProfile({ commandId: 'r2', profileId: 'p3', name: 'D' });
    expect(r).toMatchObject({ applied: false, reason: 'duplicate', eventIds: ['first'] });
    expect(store.outbox).toHaveLength(1);
  });

  it('retries a concurrency conflict against the fresh state, then gives up with a retriable error', async () => {
    await cmd.CreateProfile({ commandId: 'o1', profileId: 'o', name: 'A', email: 'o@x.io' });
    // A competing writer saves version 2 between our load and our commit.
    store.beforeCommit = () => {
      doc('o').version = 2;
    };
    const r = await cmd.RenameProfile({ commandId: 'o2', profileId: 'o', name: 'B' });
    expect(r).toMatchObject({ applied: true, version: 3 });

    const noRetry = profileCommands(store, codec, { maxConflictRetries: 0 });
    store.beforeCommit = () => {
      doc('o').version = 9;
    };
    const e = await rejection(
      noRetry.RenameProfile({ commandId: 'o3', profileId: 'o', name: 'C' }),
    );
    expect(isPipelineError(e, 'concurrency_conflict') && e.retriable).toBe(true);
    expect(store.outbox).toHaveLength(2);
    expect(recordedCommandIds()).not.toContain('o3');
  });

  it('refuses invalid commands with command_invalid, naming the field', async () => {
    const e = await rejection(cmd.CreateProfile({ commandId: 'x', profileId: 'p' }));
    expect(isPipelineError(e, 'command_invalid')).toBe(true);
    expect((e as Error).message).toMatch(/name/);
  });

  it('refuses an aggregate id the sink could not keep apart, before anything is saved', async () => {
    for (const profileId of ['p ', 'p'.repeat(192), '']) {
      const e = await rejection(
        cmd.CreateProfile({
          commandId: `bad-${profileId.length}`,
          profileId,
          name: 'N',
          email: 'n@x.io',
        }),
      );
      expect(isPipelineError(e, 'command_invalid') && !e.retriable).toBe(true);
      // The empty one is caught by the command's own schema first.
      expect((e as Error).message).toMatch(/aggregate id .*(space|characters)|profileId/);
    }
    const fits = await cmd.CreateProfile({
      commandId: 'fits',
      profileId: '😀'.repeat(191),
      name: 'N',
      email: 'n@x.io',
    });
    expect(fits).toMatchObject({ applied: true });
    expect(recordedCommandIds()).not.toContain('bad-2');
  });

  it('returns no_events for a command that changes nothing', async () => {
    await cmd.CreateProfile({ commandId: 'n1', profileId: 'p9', name: 'N', email: 'n@x.io' });
    const r = await cmd.RenameProfile({ commandId: 'n2', profileId: 'p9', name: 'N' });
    expect(r).toMatchObject({ applied: false, reason: 'no_events', version: 1, eventIds: [] });
  });
});
