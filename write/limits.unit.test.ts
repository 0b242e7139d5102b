/** The per-aggregate limits: the command-id window and the unrelayed backlog bounds. */
import { beforeEach, describe, expect, it } from '@jest/globals';
import type { EventCodec } from '../schemas/codec.js';
import { isPipelineError } from '../schemas/errors.js';
import { aggregateLimits } from './limits.js';
import { InMemoryWriteStore } from './memory-store.js';
import { profileCodec, profileCommands } from './testing.js';
import { rejection } from '../test/support/rejection.js';

let codec: EventCodec;

function doc(store: InMemoryWriteStore, aggregateId: string) {
  const d = store.documents.get(`Profile\u0000${aggregateId}`);
  if (!d) throw new Error(`no document Profile ${aggregateId}`);
  return d;
}

beforeEach(async () => {
  codec = await profileCodec();
});

describe('aggregate limits', () => {
  it('recognises a repeat among the last commandIdsKept (3) commands and runs an older one again', async () => {
    const store = new InMemoryWriteStore({ commandIdsKept: 3 });
    const cmd = profileCommands(store, codec);
    await cmd.CreateProfile({ commandId: 'k0', profileId: 'k', name: 'N0', email: 'k@x.io' });
    for (let i = 1; i <= 3; i++) {
      await cmd.RenameProfile({ commandId: `k${i}`, profileId: 'k', name: `N${i}` });
    }
    expect(doc(store, 'k').commands.map((c) => c.commandId)).toEqual(['k1', 'k2', 'k3']);
    expect(await cmd.RenameProfile({ commandId: 'k1', profileId: 'k', name: 'N1' })).toMatchObject({
      applied: false,
      reason: 'duplicate',
      version: 2,
    });
    // k0 fell out of the window: it runs again (and fails on its own rule: already exists).
    const e = await rejection(
      cmd.CreateProfile({ commandId: 'k0', profileId: 'k', name: 'N0', email: 'k@x.io' }),
    );
    expect(isPipelineError(e, 'domain_rule_violated')).toBe(true);
  });

  it('refuses with a retriable relay_behind past maxUnrelayedEntries, writes nothing, and accepts again once relayed', async () => {
    const store = new InMemoryWriteStore({ maxUnrelayedEntries: 2 });
    const cmd = profileCommands(store, codec);
    await cmd.CreateProfile({ commandId: 'b1', profileId: 'b', name: 'A', email: 'b@x.io' });
    await cmd.RenameProfile({ commandId: 'b2', profileId: 'b', name: 'B' });
    const e = await rejection(cmd.RenameProfile({ commandId: 'b3', profileId: 'b', name: 'C' }));
    expect(isPipelineError(e, 'relay_behind') && e.retriable).toBe(true);
    expect(e).toMatchObject({ context: { aggregateId: 'b', unrelayedEntries: 2 } });
    expect(doc(store, 'b')).toMatchObject({ version: 2, state: { name: 'B' } });
    expect(store.outbox).toHaveLength(2);
    store.relayAll();
    expect(doc(store, 'b')).toMatchObject({ outbox: [], relayedVersion: 2 });
    expect(await cmd.RenameProfile({ commandId: 'b3', profileId: 'b', name: 'C' })).toMatchObject({
      applied: true,
      version: 3,
    });
  });

  it('refuses past maxUnrelayedBytes too', async () => {
    const store = new InMemoryWriteStore({ maxUnrelayedBytes: 40 });
    const cmd = profileCommands(store, codec);
    const e = await rejection(
      cmd.CreateProfile({ commandId: 'y', profileId: 'y', name: 'Y'.repeat(50), email: 'y@x.io' }),
    );
    expect(isPipelineError(e, 'relay_behind')).toBe(true);
    expect(store.documents.size).toBe(0);
  });

  it('are checked at start-up: positive integers, bytes well below 16 MB', () => {
    expect(aggregateLimits()).toEqual({
      commandIdsKept: 100,
      maxUnrelayedEntries: 1_000,
      maxUnrelayedBytes: 4 * 1024 * 1024,
    });
    for (const bad of [
      { commandIdsKept: 0 },
      { maxUnrelayedEntries: 1.5 },
      { maxUnrelayedBytes: -1 },
    ]) {
      expect(() => aggregateLimits(bad)).toThrow(/must be a positive integer/);
    }
    expect(() => aggregateLimits({ maxUnrelayedBytes: 13 * 1024 * 1024 })).toThrow(/16 MB/);
  });
});
